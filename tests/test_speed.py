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


def test_round_ratios_pair_each_measured_round():
    a = [9.0, 1.0, 3.0, 1.2]
    b = [1.0, 2.0, 6.0, 2.0]
    assert speed.round_ratios(a, b) == pytest.approx([0.5, 0.5, 0.6])
    assert speed.round_ratios(a, None) is None


def test_matmul_run_runs_exactly_its_matmuls(monkeypatch):
    """The floor runner calls one prepared operation per matmul, in order, and
    prepares each distinct shape once."""
    timer = speed.MatMulTimer(seconds=0.01)
    made, ran = [], []

    def fake_call(mm):
        made.append(mm)
        return lambda: ran.append(mm)

    monkeypatch.setattr(timer, "_call", fake_call)
    matmuls = speed.epoch_matmuls(250, "bernoulli", 2)  # batches of 100, 100, 50
    run = speed.MatMulRun(matmuls, timer)
    run()
    assert ran == matmuls
    assert len(made) == len(set(matmuls)) < len(matmuls)
    # Forward and backward of four layers at three batch sizes, the input's
    # gradient left out: (4 + 4 + 3) matmuls a batch.
    assert len(matmuls) == 3 * 11
    layers = speed.vae_layers(2, 1)
    per_row = 3 * sum(2 * i * o for i, o in layers) - 2 * layers[0][0] * layers[0][1]
    assert sum(mm.flops for mm in matmuls) == 250 * per_row


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
        # The floor ran in the same rounds: one ratio per measured round.
        assert len(row["floor_epochs_s"]) == 2
        assert len(row["closed_form_vs_floor_rounds"]) == 1
    assert "skvae closed form s" in markdown and "skvae autograd s" in markdown
    for row in report["sections"]["inference"]["rows"]:
        if row["vs_floor"] is not None:
            assert len(row["vs_floor_rounds"]) == len(row["repeats_s"]) - 1


@pytest.mark.slow
def test_quick_run_times_skorch_where_installed(quick_report):
    pytest.importorskip("skorch", reason="skorch (the bench extra) is not installed")
    report, markdown, _ = quick_report
    for row in report["sections"]["training"]["rows"]:
        assert len(row["skorch_epochs_s"]) == 2 and row["skorch_s"] > 0
    assert "skorch s" in markdown
