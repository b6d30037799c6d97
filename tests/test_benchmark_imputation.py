"""The imputation benchmark's bookkeeping: masks, and one report of several runs.

Nothing here fits an imputer: the rows are made up, and what is checked is how the
report combines them (the goals' medians over every data set, each run's stamp).
"""

import json

import matplotlib
import numpy as np
import pytest

from benchmarks import imputation

matplotlib.use("Agg")


def stamp(commit, seconds):
    return {
        "command": "python -m benchmarks.imputation",
        "date": "2026-12-02T00:00:00+00:00",
        "skvae": "0",
        "commit": commit,
        "torch": "2",
        "scikit-learn": "1",
        "numpy": "2",
        "python": "3",
        "cpu": "a CPU",
        "cpu_count": 2,
        "torch_threads": 2,
        "load_average_start": [1.0, 1.0, 1.0],
        "seconds": seconds,
    }


def rows(data, vae_rmse, best_rmse, patterns=imputation.PATTERNS):
    """A data set's rows: each scikit-learn imputer at ``best_rmse`` or above."""
    out = []
    for pattern in patterns:
        for method, rmse in [
            ("mean", 2 * best_rmse),
            ("KNN", best_rmse),
            ("Iterative BayesianRidge", 1.5 * best_rmse),
            ("VAEImputer", vae_rmse),
        ]:
            row = {"data": data, "pattern": pattern, "seed": 0, "method": method}
            row.update(rmse=rmse, seconds=1.0)
            if method == "VAEImputer":
                row["coverage"] = 0.9
            out.append(row)
    return out


def saved(tmp_path, name, commit, runs):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"stamp": stamp(commit, 60.0), "runs": runs}))
    return path


def test_mnar_hides_large_values_more_often():
    X = np.random.default_rng(0).standard_normal((4000, 3))
    hidden = imputation.mask(X, "MNAR", seed=0)
    large = X > np.median(X, axis=0)
    assert hidden[large].mean() == pytest.approx(0.5, abs=0.02)
    assert hidden[~large].mean() == pytest.approx(0.1, abs=0.02)
    assert imputation.mask(X, "MCAR 20%", 0).mean() == pytest.approx(0.2, abs=0.01)


def test_combined_runs_make_one_report_over_all_their_data(tmp_path):
    tables = saved(tmp_path, "tables", "aaa", rows("wine", 0.9, 1.0))
    images = saved(tmp_path, "images", "bbb", rows("MNIST", 1.2, 1.0))
    out = tmp_path / "out"
    imputation.main(["--combine", str(tables), str(images), "--out", str(out)])
    report = json.loads((out / "imputation.json").read_text())
    assert [s["commit"] for s in report["stamps"]] == ["aaa", "bbb"]
    assert {r["run"] for r in report["runs"] if r["data"] == "MNIST"} == {1}
    markdown = (out / "imputation.md").read_text()
    assert "commit aaa" in markdown and "commit bbb" in markdown
    assert "data: MNIST." in markdown and "data: wine." in markdown
    # The goals' figures are over both runs' data sets: median of 0.9x and 1.2x.
    _, goals = imputation.summarise(report["runs"])
    assert goals[0]["median_vs_best"] == pytest.approx(1.05)
    assert goals[0]["worst_data"] == "MNIST"
    # A combined report combines again, to the same rows.
    again = tmp_path / "again"
    imputation.main(["--combine", str(out / "imputation.json"), "--out", str(again)])
    assert json.loads((again / "imputation.json").read_text()) == report


def test_a_later_run_replaces_what_it_measured_again(tmp_path):
    first = saved(tmp_path, "first", "aaa", rows("wine", 0.9, 1.0))
    vae_again = [r for r in rows("wine", 0.8, 1.0) if r["method"] == "VAEImputer"]
    second = saved(tmp_path, "second", "bbb", vae_again)
    stamps, combined = imputation.load_runs([first, second])
    assert [s["commit"] for s in stamps] == ["aaa", "bbb"]
    assert len(combined) == len(rows("wine", 0.9, 1.0))
    vae = [r for r in combined if r["method"] == "VAEImputer"]
    assert {r["rmse"] for r in vae} == {0.8} and {r["run"] for r in vae} == {1}
    # A run whose every row was measured again drops out, and the rest renumber.
    third = saved(tmp_path, "third", "ccc", rows("wine", 0.7, 1.0))
    stamps, combined = imputation.load_runs([first, second, third])
    assert [s["commit"] for s in stamps] == ["ccc"]
    assert {r["run"] for r in combined} == {0}


def test_a_run_with_nothing_to_compare_keeps_its_rows(tmp_path, monkeypatch):
    vae_only = [r for r in rows("wine", 0.8, 1.0) if r["method"] == "VAEImputer"]
    monkeypatch.setattr(imputation, "run", lambda *args, **kwargs: vae_only)
    imputation.main(["--methods", "VAEImputer", "--out", str(tmp_path)])
    saved_rows = json.loads((tmp_path / "imputation.json").read_text())["runs"]
    assert [r["rmse"] for r in saved_rows] == [0.8] * len(imputation.PATTERNS)
    assert "--combine" in (tmp_path / "imputation.md").read_text()


def test_imputers_are_compared_on_the_masks_they_all_measured():
    measured = rows("MNIST", 1.2, 1.0)
    # The VAE alone on mask 1 of MCAR 20% (its peers not yet run there).
    ahead = dict(measured[3], seed=1, rmse=0.1)
    assert ahead["method"] == "VAEImputer" and ahead["pattern"] == "MCAR 20%"
    per_set, _ = imputation.summarise([*measured, ahead])
    vae = [e for e in per_set if e["method"] == "VAEImputer"]
    assert [e["n"] for e in vae] == [1, 1, 1]
    assert [e["vs_best"] for e in vae] == pytest.approx([1.2] * 3)
    # Once the peers have mask 1 too, it counts.
    peers = [dict(r, seed=1) for r in measured[:3]]
    per_set, _ = imputation.summarise([*measured, ahead, *peers])
    first = next(e for e in per_set if e["method"] == "VAEImputer")
    assert first["n"] == 2 and first["rmse"] == pytest.approx((1.2 + 0.1) / 2)


def test_patterns_and_first_mask_pick_what_is_measured(monkeypatch):
    from sklearn.impute import SimpleImputer

    X = np.random.default_rng(0).standard_normal((30, 3))
    monkeypatch.setattr(
        imputation, "data_sets", lambda names, rows: {"tiny": (X, None, False)}
    )
    monkeypatch.setattr(imputation, "imputers", lambda *args: {"mean": SimpleImputer()})
    measured = imputation.run(None, 2, 1, 30, first_mask=3, patterns=("MNAR",))
    assert [(r["pattern"], r["seed"]) for r in measured] == [("MNAR", 3), ("MNAR", 4)]
    with pytest.raises(SystemExit):
        imputation.main(["--patterns", "MCAR 30%"])


def test_a_run_of_one_pattern_reports_that_pattern(tmp_path, monkeypatch):
    # A chunk of MNIST's masks: every imputer, one pattern.
    one = rows("MNIST", 0.9, 1.0, patterns=("MCAR 50%",))
    monkeypatch.setattr(imputation, "run", lambda *args, **kwargs: one)
    imputation.main(["--patterns", "MCAR 50%", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "imputation.json").read_text())
    assert [r["rmse"] for r in report["runs"]] == [r["rmse"] for r in one]
    _, goals = imputation.summarise(report["runs"])
    assert [g["pattern"] for g in goals] == ["MCAR 50%"]
    assert goals[0]["median_vs_best"] == pytest.approx(0.9)
    assert (tmp_path / "imputation.png").exists()


def test_measurements_are_saved_before_the_summary(tmp_path, monkeypatch):
    one = rows("wine", 0.9, 1.0)
    monkeypatch.setattr(imputation, "run", lambda *args, **kwargs: one)

    def failing(*args):
        raise RuntimeError("the summary failed")

    monkeypatch.setattr(imputation, "report", failing)
    with pytest.raises(RuntimeError, match="summary failed"):
        imputation.main(["--out", str(tmp_path)])
    saved_rows = json.loads((tmp_path / "imputation.json").read_text())["runs"]
    assert [r["rmse"] for r in saved_rows] == [r["rmse"] for r in one]


def timed(data, seed, run, seconds):
    """One mask's rows of ``data``: each method with its fit + transform seconds."""
    return [
        {"data": data, "pattern": "MCAR 20%", "seed": seed, "run": run}
        | {"method": method, "rmse": 1.0, "seconds": value}
        for method, value in seconds.items()
    ]


def test_times_pair_each_mask_with_its_peer_of_the_same_run():
    wine = [
        *timed(
            "wine", 0, 0, {"KNN": 0.1, "Iterative ExtraTrees": 2.0, "VAEImputer": 1.0}
        ),
        *timed(
            "wine", 1, 0, {"KNN": 0.1, "Iterative ExtraTrees": 1.0, "VAEImputer": 3.0}
        ),
        *timed(
            "wine", 2, 0, {"KNN": 0.1, "Iterative ExtraTrees": 4.0, "VAEImputer": 2.0}
        ),
    ]
    mnist = timed("MNIST", 0, 0, {"Iterative BayesianRidge": 10.0, "VAEImputer": 40.0})
    per_set, goals = imputation.summarise(wine + mnist)
    vae = {e["data"]: e for e in per_set if e["method"] == "VAEImputer"}
    # The median of the masks' ratios (0.5, 3, 0.5), not the ratio of the means
    # (6 / 7 s); on MNIST the peer is BayesianRidge.
    assert vae["wine"]["time_vs_peer"] == pytest.approx(0.5)
    assert vae["wine"]["time_vs_peer_range"] == pytest.approx([0.5, 3.0])
    assert vae["MNIST"]["time_vs_peer"] == pytest.approx(4.0)
    assert goals[0]["max_time_vs_trees"] == pytest.approx(0.5)
    assert goals[0]["max_time_data"] == "wine"
    assert goals[0]["images_time_vs_peer"] == pytest.approx(4.0)
    # Rows of different runs (combined reports) are never paired.
    apart = [dict(r, run=1) if r["method"] == "VAEImputer" else r for r in mnist]
    per_set, goals = imputation.summarise(apart)
    assert "time_vs_peer" not in per_set[-1] and goals[0]["images_time_vs_peer"] is None


@pytest.mark.slow
def test_quick_run_pairs_the_vae_with_its_peers(tmp_path):
    imputation.main(["--quick", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "imputation.json").read_text())
    assert report["stamps"][0]["command"].startswith(
        "python -m benchmarks.imputation --quick"
    )
    runs = report["runs"]
    assert {r["data"] for r in runs} <= set(imputation.QUICK_DATA)
    assert {"wine", "diabetes"} <= {r["data"] for r in runs}
    assert {r["seed"] for r in runs} == {0}
    assert not any("coverage" in r or "accuracy" in r for r in runs)
    per_set, goals = imputation.summarise(runs)
    vae = [e for e in per_set if e["method"] == "VAEImputer"]
    assert all(e["time_vs_peer"] > 0 for e in vae)
    assert all(g["max_time_vs_trees"] > 0 for g in goals)
    markdown = (tmp_path / "imputation.md").read_text()
    assert "time / peer's, paired" in markdown and str(tmp_path) not in markdown


def test_vae_params_change_only_what_they_name():
    tables = imputation.imputers(False, {"n_mc_samples": 1})["VAEImputer"]
    assert tables.n_mc_samples == 1 and tables.hidden_layer_sizes == (128, 128)
    images = imputation.imputers(True, {"max_iter": 5})["VAEImputer"]
    assert images.max_iter == 5 and images.hidden_layer_sizes == (256, 256)
    assert imputation.imputers(True)["VAEImputer"].max_iter == 300
