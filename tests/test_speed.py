"""The speed benchmark's bookkeeping, and one --quick run of it end to end."""

import json
import math
import statistics

import pytest

from benchmarks import speed


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


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("speed")
    speed.main(["--quick", "--out", str(out)])
    return json.loads((out / "speed.json").read_text()), (out / "speed.md").read_text()


def test_quick_run_reports_every_section(quick_report):
    report, markdown = quick_report
    assert report["stamp"]["command"].startswith("python -m benchmarks.speed --quick")
    assert set(report["sections"]) == set(speed.SECTIONS)
    for heading in ("## Targets", "## Training", "## Inference", "## Scaling"):
        assert heading in markdown


def test_quick_run_training_rows_are_consistent(quick_report):
    report, _ = quick_report
    rows = report["sections"]["training"]["rows"]
    assert [(r["likelihood"], r["latent"]) for r in rows] == [
        ("bernoulli", 2),
        ("bernoulli", 20),
        ("gaussian", 2),
        ("gaussian", 20),
    ]
    with_skorch = report["sections"]["training"]["skorch"]
    for row in rows:
        for name in speed.RUNNERS:
            epochs = row[f"{name}_epochs_s"]
            if name == "skorch" and not with_skorch:  # not installed: skipped
                assert epochs is None and row["skvae_vs_skorch"] is None
                continue
            assert len(epochs) == 2 and all(s > 0 for s in epochs)
            assert row[f"{name}_s"] == statistics.median(epochs[1:])
        assert row["floor_s"] > 0 and math.isfinite(row["floor_gflops"])
        within_round = row["skvae_epochs_s"][1] / row["plain_epochs_s"][1]
        assert row["skvae_vs_plain"] == pytest.approx(within_round)
        assert row["skvae_vs_floor"] == pytest.approx(row["skvae_s"] / row["floor_s"])


def test_quick_run_verdicts_follow_values(quick_report):
    report, _ = quick_report
    assert len(report["targets"]) >= 8
    for target in report["targets"]:
        value, limit = target["value"], target["limit"]
        if value is None:
            continue
        assert math.isfinite(value)
        assert (target["verdict"] == "met") == (value <= limit), target
