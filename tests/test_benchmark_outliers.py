"""The outliers benchmark's bookkeeping, and (marked slow) its --quick run.

The pairing of fit times is worked by hand; the quick run checks the code path and
the report's form, not speed (one seed on small data says nothing about it).
"""

import json

import pytest

from benchmarks import outliers


def _row(data, setting, seed, method, fit_seconds):
    return {
        "data": data,
        "setting": setting,
        "seed": seed,
        "method": method,
        "fit_seconds": fit_seconds,
        "roc_auc": 0.9,
        "average_precision": 0.5,
        "score_seconds": 0.0,
        "repeat_difference": 0.0,
    }


def test_fit_ratios_pair_each_draw_with_the_peers():
    rows = [
        _row("a", "novelty", 0, "pyod VAE", 2.0),
        _row("a", "novelty", 0, "VAEOutlierDetector", 3.0),
        _row("a", "novelty", 1, "pyod VAE", 4.0),  # a slow spell: both slower
        _row("a", "novelty", 1, "VAEOutlierDetector", 6.0),
        _row("b", "novelty", 0, "pyod VAE", 1.0),
        _row("b", "novelty", 0, "VAEOutlierDetector", 0.5),
        _row("b", "unsupervised", 0, "VAEOutlierDetector", 9.0),  # no peer: unpaired
    ]
    ratios = outliers.fit_ratios(rows)
    assert ratios == {("novelty", "VAEOutlierDetector"): [1.5, 1.5, 0.5]}
    _, medians = outliers.summarise(rows)
    vae = next(
        m
        for m in medians
        if (m["setting"], m["method"]) == ("novelty", "VAEOutlierDetector")
    )
    assert vae["fit_vs_peer"] == 1.5 and vae["fit_vs_peer_range"] == [0.5, 1.5]
    assert outliers.peer_cell(vae) == "**1.50x** (0.50-1.50)"
    peer = next(m for m in medians if m["method"] == "pyod VAE")
    assert "fit_vs_peer" not in peer and outliers.peer_cell(peer) == "-"


def test_unknown_detector_names_are_refused(capsys):
    with pytest.raises(SystemExit):
        outliers.main(["--detectors", "VAEOutlierDetector", "NoSuchDetector"])
    assert "NoSuchDetector" in capsys.readouterr().err


def test_settings_tried_run_only_when_named(monkeypatch):
    import numpy as np

    inliers = np.random.default_rng(0).standard_normal((40, 3))
    monkeypatch.setattr(
        outliers, "data_sets", lambda n: {"tiny": (inliers, inliers + 6.0)}
    )
    fitted = []

    class Fake:
        def __init__(self, name):
            self.name = name

        def run(self, X_fit, X_score, setting, seed):
            fitted.append(self.name)
            return None, X_score, np.arange(len(X_score), dtype=float), 0.1, 0.0

        def score(self, model, X, setting):
            return np.arange(len(X), dtype=float)

    monkeypatch.setattr(
        outliers,
        "detectors",
        lambda images: {n: Fake(n) for n in ["pyod VAE", outliers.WARM_SECOND_FIT]},
    )
    outliers.run(1, 0)
    assert set(fitted) == {"pyod VAE"}
    fitted.clear()
    outliers.run(1, 0, [outliers.WARM_SECOND_FIT])
    assert set(fitted) == {outliers.WARM_SECOND_FIT}


def test_the_warm_setting_trains_on_the_support_after_all_rows():
    import numpy as np

    X = np.random.default_rng(0).standard_normal((60, 3))
    model = outliers.WarmSecondFit(0)
    model.detector.set_params(max_iter=3)
    with pytest.warns(Warning):
        model.fit(X)
    detector = model.detector
    # Two trainings of 3 epochs, the second on the 54 most likely rows.
    assert detector.n_iter_ == 6 and detector.support_.sum() == 54
    assert detector.warm_start and detector.support_fraction == 0.9
    assert np.array_equal(model.score_samples(X), detector.score_samples(X))


@pytest.mark.slow
def test_quick_run_pairs_the_vae_with_pyod(tmp_path):
    pytest.importorskip("pyod", reason="pyod (the bench extra) is not installed")
    outliers.main(["--quick", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "outliers.json").read_text())
    command = report["stamp"]["command"]
    assert command.startswith("python -m benchmarks.outliers --quick")
    methods = {r["method"] for r in report["runs"]}
    assert set(outliers.QUICK_DETECTORS) <= methods
    assert {r["seed"] for r in report["runs"]} == {0}
    paired = [m for m in report["medians"] if "fit_vs_peer" in m]
    assert {m["method"] for m in paired} >= {"VAEOutlierDetector"}
    assert {m["setting"] for m in paired} == set(outliers.SETTINGS)
    markdown = (tmp_path / "outliers.md").read_text()
    assert "fit / pyod VAE's, paired" in markdown and str(tmp_path) not in markdown


def test_quick_runs_fill_their_own_defaults_and_never_write_the_results():
    from argparse import Namespace
    from pathlib import Path

    from benchmarks._report import resolve_quick

    full = Namespace(quick=False, seeds=None, mnist_inliers=7, out=None)
    resolve_quick(full, "outliers", seeds=(5, 1), mnist_inliers=(3000, 300))
    assert (full.seeds, full.mnist_inliers) == (5, 7)  # what was given stays
    assert full.out == Path(outliers.__file__).resolve().parent / "results"
    quick = Namespace(quick=True, seeds=None, mnist_inliers=None, out=None)
    resolve_quick(quick, "outliers", seeds=(5, 1), mnist_inliers=(3000, 300))
    assert (quick.seeds, quick.mnist_inliers) == (1, 300)
    assert quick.out.is_dir() and quick.out.name.startswith("skvae-outliers-")
    quick.out.rmdir()
