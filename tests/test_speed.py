"""The speed benchmark's bookkeeping, and (marked slow) one --quick run of it.

The quick run checks the benchmark's code path, not speed: its numbers on a few
thousand rows say nothing, so no test reads them as speed. skorch's rows are
checked only where skorch (the ``bench`` extra) is installed.
"""

import json

import pytest

from benchmarks import _report, speed


def test_paired_ratio_divides_within_rounds():
    # Round 0 is the warm-up; a slow spell (round 2) slows both alike.
    a = [9.0, 1.0, 3.0, 1.2]
    b = [1.0, 2.0, 6.0, 2.0]
    assert speed.paired_ratio(a, b) == pytest.approx(0.5)
    assert speed.paired_ratio(None, b) is None


def test_interleaved_epochs_rotates_the_order():
    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    seconds = speed.interleaved_epochs(runners, epochs=2)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {k: len(v) for k, v in seconds.items()} == {"a": 3, "b": 3, "c": 3}


def test_public_argv_names_no_machine_path():
    inside = str(speed.REPO_ROOT / "benchmarks" / "results")
    public_argv = _report.public_argv
    argv = ["--quick", "--out", "/somewhere/else", f"--data-dir={inside}", "--epochs"]
    assert public_argv(argv) == [
        "--quick",
        "--out",
        "<path>",
        "--data-dir=benchmarks/results",
        "--epochs",
    ]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("speed")
    speed.main(["--quick", "--out", str(out)])
    report = json.loads((out / "speed.json").read_text())
    return report, (out / "speed.md").read_text(), out


@pytest.mark.slow
def test_quick_run_reports_every_section(quick_report):
    report, markdown, out = quick_report
    assert report["stamp"]["command"].startswith("python -m benchmarks.speed --quick")
    assert set(report["sections"]) == set(speed.SECTIONS)
    for heading in ("## Training", "## Inference", "## Scaling", "## Memory"):
        assert heading in markdown
    # Measured numbers only: no targets, and no path of the machine.
    assert "target" not in markdown.lower() and "targets" not in report
    text = markdown + json.dumps(report)
    assert str(out) not in text and str(speed.REPO_ROOT) not in text


@pytest.mark.slow
def test_quick_run_times_both_gradient_paths(quick_report):
    report, markdown, _ = quick_report
    for row in report["sections"]["training"]["rows"]:
        for path in ("closed_form", "autograd"):
            assert len(row[f"{path}_epochs_s"]) == 2 and row[f"{path}_s"] > 0
            assert row[f"{path}_gradient_"] == path
        assert row["closed_form_vs_autograd"] > 0
    assert "skvae closed form s" in markdown and "skvae autograd s" in markdown


@pytest.mark.slow
def test_quick_run_times_skorch_where_installed(quick_report):
    pytest.importorskip("skorch", reason="skorch (the bench extra) is not installed")
    report, markdown, _ = quick_report
    for row in report["sections"]["training"]["rows"]:
        assert len(row["skorch_epochs_s"]) == 2 and row["skorch_s"] > 0
    assert "skorch s" in markdown
