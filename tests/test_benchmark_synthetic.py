"""The synthetic-data benchmark's bookkeeping, its tables' loaders, and (marked
slow) one --quick run of it."""

import numpy as np
import pandas as pd
import pytest

from benchmarks import synthetic, tables

SMALL = tables.MixedTable(
    "toy",
    train=pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "flag": [True, False, True, False, True, False],
            "colour": ["red", "blue", "red", "blue", "red", "blue"],
            "y": ["yes", "no", "yes", "no", "yes", None],
        }
    ),
    test=pd.DataFrame(
        {
            "x": [1.5, 5.5, 2.5, 4.5],
            "flag": [True, False, True, False],
            "colour": ["red", "blue", "green", "blue"],
            "y": ["yes", "no", "yes", "no"],
        }
    ),
    target="y",
    positive="yes",
)


def test_ctgan_is_fitted_once_and_the_others_per_seed():
    jobs = synthetic.jobs(["adult"], ["skvae", "CTGAN", "TVAE"], 3)
    assert [m for m, _, _ in jobs].count("CTGAN") == 1
    assert [m for m, _, _ in jobs].count("skvae") == 3
    assert [s for m, _, s in jobs if m == "TVAE"] == [0, 1, 2]


def test_sdmetrics_metadata_types_each_column():
    meta = synthetic.sdmetrics_metadata(SMALL.train)
    assert meta["columns"] == {
        "x": {"sdtype": "numerical"},
        "flag": {"sdtype": "boolean"},
        "colour": {"sdtype": "categorical"},
        "y": {"sdtype": "categorical"},
    }


def test_the_classifier_sees_the_training_levels_only():
    X, y = tables.classifier_data(SMALL.test, SMALL)
    assert list(X["colour"].cat.categories) == ["blue", "red"]
    assert X["colour"].isna().tolist() == [False, False, True, False]  # green
    np.testing.assert_array_equal(y, [1, 0, 1, 0])
    X, y = tables.classifier_data(SMALL.train, SMALL)
    assert len(y) == 5  # the row without a target is left out


def test_a_classifier_trained_on_the_real_rows_scores_them():
    # The test rows follow the training rows' rule (x small: yes): ROC-AUC 1.
    data = tables.MixedTable(
        "toy",
        pd.DataFrame({"x": np.arange(40.0), "y": ["yes"] * 20 + ["no"] * 20}),
        pd.DataFrame({"x": [1.0, 2.0, 38.0, 39.0], "y": ["yes", "yes", "no", "no"]}),
        "y",
        "yes",
    )
    assert tables.roc_auc_on_test(data.train, data) == 1.0


def _entry(method, quality, auc, seconds):
    return {
        "data": "adult",
        "method": method,
        "quality": quality,
        "tstr_roc_auc": auc,
        "fit_seconds": seconds,
    }


def test_goals_say_met_or_by_how_much_missed():
    entries = [
        _entry("skvae", 0.93, 0.90, 100.0),
        _entry("TVAE", 0.905, 0.885, 1680.0),
        _entry("CTGAN", 0.85, 0.91, 3000.0),
    ]
    lines = synthetic.goals(entries, {"adult": 0.927})
    assert "quality 0.9300 against TVAE's + 0.02 = 0.9250 (+0.0050): met." in lines[2]
    assert "(best CTGAN 0.9100): missed" in lines[4]
    assert "within 0.03 of the real rows' 0.9270 (-0.0270): met." in lines[5]
    assert "fit 100 s against TVAE's 1680 s (0.06x): met." in lines[6]


def test_summaries_average_seeds_and_give_the_spread():
    rows = [
        {**_entry("skvae", q, a, 1.0), "seed": i}
        for i, (q, a) in enumerate([(0.90, 0.80), (0.92, 0.84)])
    ]
    (entry,) = synthetic.summarise(rows)
    assert entry["n"] == 2 and entry["quality"] == pytest.approx(0.91)
    assert entry["quality_sd"] == pytest.approx(0.01)
    assert entry["tstr_roc_auc_sd"] == pytest.approx(0.02)


def test_adult_is_read_from_a_directory_and_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.delenv(tables.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=r"adult\.data, adult\.test not found"):
        tables.load_adult(tmp_path)
    row = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, "
    row += "Not-in-family, White, Male, 2174, 0, 40, ?, <=50K"
    (tmp_path / "adult.data").write_text(row + "\n")
    (tmp_path / "adult.test").write_text("|1x3 Cross validator\n" + row + ".\n")
    monkeypatch.setenv(tables.ENV_VAR, str(tmp_path))
    data = tables.load_adult()
    assert data.train.shape == data.test.shape == (1, 15)
    assert data.test["income"].tolist() == ["<=50K"]
    assert data.train["native-country"].isna().all()
    assert data.train["age"].dtype == np.int64


@pytest.mark.slow
def test_quick_run_writes_its_report(tmp_path):
    pytest.importorskip("sdv")
    pytest.importorskip("palmerpenguins")
    if not tables.adult_directory().is_dir():
        pytest.skip("Adult's files are not here")
    synthetic.main(["--quick", "--out", str(tmp_path)])
    report = (tmp_path / "synthetic.md").read_text()
    assert "| adult | skvae | 1 |" in report and "| penguins | TVAE | 1 |" in report
    assert (tmp_path / "synthetic.png").stat().st_size > 0
