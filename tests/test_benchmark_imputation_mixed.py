"""The mixed-table imputation benchmark: its masks, the scikit-learn pipelines it
builds, its measures on cases worked by hand, its goals, and (marked slow) one
--quick run of it."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer

from benchmarks import imputation
from benchmarks import imputation_mixed as mixed

matplotlib.use("Agg")

RNG = np.random.default_rng(0)
N = 4000
FRAME = pd.DataFrame(
    {
        "x": RNG.normal(size=N),
        "count": pd.array(RNG.integers(0, 50, N), dtype="Int64"),
        # "b" is the second most frequent level.
        "level": RNG.choice(
            np.array(["a", "b", "c"], dtype=object), N, p=[0.5, 0.3, 0.2]
        ),
        "flag": RNG.random(N) < 0.3,
    }
)


def test_mcar_hides_its_share_of_the_observed_cells_only():
    frame = FRAME.assign(x=FRAME["x"].mask(np.arange(N) < 1000))
    hidden = mixed.mask(frame, "MCAR 50%", seed=0)
    assert not hidden[:1000, 0].any()  # a hole is never "hidden"
    assert hidden[1000:, 0].mean() == pytest.approx(0.5, abs=0.03)
    assert mixed.mask(frame, "MCAR 20%", 0)[:, 1:].mean() == pytest.approx(
        0.2, abs=0.01
    )


def test_mnar_hides_large_numbers_and_the_second_level_more_often():
    hidden = mixed.mask(FRAME, "MNAR", seed=0)
    large = FRAME["x"] > FRAME["x"].median()
    assert hidden[large, 0].mean() == pytest.approx(0.5, abs=0.03)
    assert hidden[~large, 0].mean() == pytest.approx(0.1, abs=0.03)
    second = (FRAME["level"] == "b").to_numpy()
    assert hidden[second, 2].mean() == pytest.approx(0.5, abs=0.04)
    assert hidden[~second, 2].mean() == pytest.approx(0.1, abs=0.03)
    # Booleans are levels: True (30%) is the second most frequent.
    assert hidden[FRAME["flag"].to_numpy(), 3].mean() == pytest.approx(0.5, abs=0.04)


def test_integers_stay_integers_with_holes():
    holes = FRAME.mask(mixed.mask(FRAME, "MCAR 20%", 0))
    assert holes["count"].dtype == "Int64"
    assert not mixed.is_categorical(holes["count"])
    assert mixed.is_categorical(holes["level"]) and mixed.is_categorical(holes["flag"])


def test_ordinal_codes_are_rounded_and_clipped_back_to_levels():
    frame = pd.DataFrame({"level": ["a", "b", "c", None], "x": [1.0, 2.0, 3.0, None]})
    for fill, level in [(-3.0, "a"), (1.4, "b"), (1.6, "c"), (10.0, "c")]:
        imputer = mixed.OrdinalImputer(
            SimpleImputer(strategy="constant", fill_value=fill)
        )
        out = imputer.fit(frame).transform(frame)
        assert out["level"].tolist() == ["a", "b", "c", level]
        assert out["x"].tolist()[:3] == [1.0, 2.0, 3.0]
        assert out["x"].iloc[3] == fill


def test_one_hot_cells_are_all_missing_in_a_hole_and_come_back_by_arg_max():
    frame = pd.DataFrame(
        {"level": ["a", "b", "c", None], "x": [0.0, 10.0, 20.0, np.nan]}
    )
    imputer = mixed.OneHotImputer(SimpleImputer()).fit(frame)
    encoded = imputer._encode(frame)
    np.testing.assert_array_equal(encoded[:3, :3], np.eye(3))
    assert np.isnan(encoded[3]).all()
    out = imputer.transform(frame)
    # The column means: (1/3, 1/3, 1/3) ties to the first level; x's mean is 10.
    assert out["level"].tolist() == ["a", "b", "c", "a"]
    assert out["x"].tolist() == pytest.approx([0.0, 10.0, 20.0, 10.0])


def test_the_columnwise_imputer_takes_the_mode_and_the_mean():
    frame = pd.DataFrame(
        {
            "level": pd.array(["a", "b", "b", None], dtype="string"),
            "n": pd.array([1, 2, 6, None], dtype="Int64"),
        }
    )
    out = mixed.ColumnwiseImputer().fit(frame).transform(frame)
    assert out["level"].tolist() == ["a", "b", "b", "b"]
    assert out["n"].tolist() == [1.0, 2.0, 6.0, 3.0]
    assert list(out.columns) == ["level", "n"]


def test_errors_by_hand():
    truth = pd.DataFrame({"level": ["a", "b", "a", "b"], "x": [0.0, 4.0, 2.0, 10.0]})
    filled = pd.DataFrame({"level": ["a", "a", "a", "b"], "x": [3.0, 0.0, 2.0, 10.0]})
    hidden = np.array([[True, True], [True, True], [False, False], [False, False]])
    per_column = mixed.errors(filled, truth, hidden)
    assert per_column["level"] == {"error": 0.5}
    rmse = np.sqrt((9.0 + 16.0) / 2)  # over the two hidden cells
    assert per_column["x"]["rmse_range"] == pytest.approx(rmse / 10.0)
    assert per_column["x"]["rmse_std"] == pytest.approx(rmse / np.std(truth["x"]))
    means = mixed.mean_errors(per_column)
    assert means["categorical_error"] == 0.5
    assert means["rmse_range"] == pytest.approx(rmse / 10.0)


def test_calibration_of_draws_by_hand():
    # Cell 0: "a" in 16 of 20 draws, truth "a". Cell 1: "a" 16 of 20, truth "b".
    # Cell 2: a tie of "a" and "b" (10 each), truth "b": among the most frequent.
    draws = np.array(
        [["a", "a", "a"]] * 10 + [["a", "a", "b"]] * 6 + [["b", "b", "b"]] * 4,
        dtype=object,
    )
    out = mixed.draw_calibration(draws, np.array(["a", "b", "b"], dtype=object))
    assert out["draw_share"] == pytest.approx((0.8 + 0.8 + 0.5) / 3)
    assert out["draw_hits"] == pytest.approx(2 / 3)
    assert out["calibration_bins"] == [
        {"low": 0.4, "count": 1, "share": 0.5, "hits": 1.0},
        {"low": 0.8, "count": 2, "share": 0.8, "hits": 0.5},
    ]


def test_test_rows_lose_levels_the_training_rows_lack():
    training = pd.DataFrame({"level": ["a", "b", None], "x": [1.0, 2.0, 3.0]})
    test = pd.DataFrame({"level": ["a", "z", None], "x": [5.0, 6.0, 7.0]})
    out = mixed.known_levels(test, training)
    assert out["level"].isna().tolist() == [False, True, True]
    assert out["x"].tolist() == [5.0, 6.0, 7.0]


def _row(method, error, rmse, auc, seconds, pattern="MCAR 50%"):
    return {
        "data": "adult",
        "pattern": pattern,
        "seed": 0,
        "method": method,
        "rows": 100,
        "categorical_error": error,
        "rmse_range": rmse,
        "roc_auc": auc,
        "seconds": seconds,
    }


def test_goals_compare_with_the_best_pipeline_on_each_measure():
    rows = [
        _row("most frequent + mean", 0.40, 0.20, 0.85, 0.1),
        _row("ordinal + BayesianRidge", 0.50, 0.10, 0.86, 0.2),
        _row("ordinal + ExtraTrees", 0.45, 0.15, 0.88, 10.0),
        _row("one-hot + KNN", 0.42, 0.12, 0.87, 5.0),
        _row("VAEImputer", 0.30, 0.098, 0.87, 20.0),
    ]
    entries = mixed.summarise(rows)
    vae = entries[-1]
    assert vae["categorical_error_vs_best"] == pytest.approx(0.75)  # 0.30 / 0.40
    assert vae["rmse_range_vs_best"] == pytest.approx(0.98)  # 0.098 / 0.10
    assert vae["roc_auc_vs_best"] == pytest.approx(-0.01)
    assert vae["time_vs_trees"] == pytest.approx(2.0)
    lines = mixed.goals(entries)
    assert (
        "categorical error 0.750x the best pipeline's (goal at most 0.95x): met."
        in (lines[2])
    )
    assert "numeric RMSE / range 0.980x" in lines[3] and lines[3].endswith("missed.")
    assert "-0.0100 against the best pipeline's (goal at least 0): missed." in lines[4]
    assert "2.00x ordinal + ExtraTrees' (goal at most 1x): missed." in lines[5]


def test_a_saved_run_is_reported_again_without_measuring(tmp_path, monkeypatch):
    rows = [
        _row(method, 0.4, 0.1, 0.9, 1.0, pattern)
        for pattern in mixed.PATTERNS
        for method in mixed.METHODS
    ]
    stamp = {"command": "python -m benchmarks.imputation --mixed", "date": "d"}
    stamp.update(skvae="0", commit="abc", torch="2", numpy="2", python="3")
    stamp.update({"scikit-learn": "1", "cpu": "a CPU", "cpu_count": 2})
    stamp.update(torch_threads=2, load_average_start=[1.0, 1.0, 1.0], seconds=60.0)
    stamp["vae_params"] = {"objective": "elbo"}
    saved = tmp_path / "imputation_mixed.json"
    saved.write_text(json.dumps({"stamp": stamp, "runs": rows}))
    monkeypatch.setattr(mixed, "run", None)  # measuring would fail
    mixed.main(["--summarise", str(saved)])
    markdown = (tmp_path / "imputation_mixed.md").read_text()
    assert "commit abc" in markdown
    assert "`VAEImputer(random_state=0, objective='elbo')`" in markdown
    assert (tmp_path / "imputation_mixed.png").stat().st_size > 0


def test_the_numeric_benchmark_hands_mixed_over(monkeypatch):
    seen = []
    monkeypatch.setattr(mixed, "main", seen.append)
    imputation.main(["--mixed", "--quick", "--data", "penguins"])
    assert seen == [["--quick", "--data", "penguins"]]


@pytest.mark.slow
def test_quick_run_writes_its_report(tmp_path):
    mixed.main(["--quick", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "imputation_mixed.json").read_text())
    runs = report["runs"]
    assert {r["data"] for r in runs} == {"adult", "penguins"}
    assert {r["method"] for r in runs} == set(mixed.METHODS)
    assert len(runs) == 2 * len(mixed.PATTERNS) * len(mixed.METHODS)
    for r in runs:
        assert 0 <= r["categorical_error"] <= 1 and r["rmse_range"] > 0
        assert 0.5 < r["roc_auc"] <= 1
    vae = [r for r in runs if r["method"] == "VAEImputer"]
    assert all(0 <= r["coverage"] <= 1 and r["calibration_bins"] for r in vae)
    markdown = (tmp_path / "imputation_mixed.md").read_text()
    assert "Goals on adult" in markdown and "--mixed --quick" in markdown
    assert (tmp_path / "imputation_mixed.png").stat().st_size > 0
