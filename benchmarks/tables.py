"""Mixed tables for the benchmarks: UCI Adult from a directory, the Palmer penguins
from their package.

Adult's directory comes from ``data_dir``, else the ``SKVAE_ADULT_DIR`` environment
variable, else ``../shared/data/adult`` beside the repository; it must hold
``adult.data`` and ``adult.test`` (the UCI files; nothing is downloaded). The
penguins come with the ``palmerpenguins`` package (the ``bench`` extra).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

ENV_VAR = "SKVAE_ADULT_DIR"
DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adult"
ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]


@dataclass
class MixedTable:
    """A table's training and test rows, and the column a classifier predicts."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    target: str
    #: The target's value that counts as the positive class.
    positive: object


def adult_directory(data_dir: str | os.PathLike | None = None) -> Path:
    """Where Adult's files are looked for: ``data_dir``, else ``$SKVAE_ADULT_DIR``,
    else ``../shared/data/adult`` beside the repository."""
    return Path(data_dir or os.environ.get(ENV_VAR) or DEFAULT_DIR)


def load_adult(data_dir: str | os.PathLike | None = None) -> MixedTable:
    """UCI Adult: 32,561 training and 16,281 test rows of 15 columns, "?" missing.

    Read as the files are: integers as int64, text as pandas' strings; the test
    labels' trailing "." is removed, so that both files say ">50K" and "<=50K".
    """
    directory = adult_directory(data_dir)
    paths = [directory / "adult.data", directory / "adult.test"]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Adult's {', '.join(missing)} not found in {directory}. Put the UCI files "
            "adult.data and adult.test there (https://archive.ics.uci.edu/dataset/2/"
            f"adult), or name their directory with --data-dir or ${ENV_VAR}."
        )
    options = dict(
        header=None,
        names=ADULT_COLUMNS,
        skipinitialspace=True,
        na_values="?",
        comment="|",
    )
    train, test = (pd.read_csv(p, **options) for p in paths)
    test["income"] = test["income"].str.rstrip(".")
    return MixedTable("adult", train, test, "income", ">50K")


def load_penguins(test_size: float = 0.3, seed: int = 0) -> MixedTable:
    """The Palmer penguins (344 rows: species, island and sex, four measurements,
    the year; a few holes), split at random into training and test rows."""
    try:
        from palmerpenguins import load_penguins as load
    except ImportError as error:
        raise ImportError(
            "The penguins come with palmerpenguins: pip install -e '.[bench]'."
        ) from error
    frame = load()
    test = np.random.default_rng(seed).random(len(frame)) < test_size
    return MixedTable(
        "penguins",
        frame[~test].reset_index(drop=True),
        frame[test].reset_index(drop=True),
        "sex",
        "male",
    )


def classifier_data(frame: pd.DataFrame, data: MixedTable):
    """X and y for the classifier: rows with the target, categorical columns with
    the training rows' levels (a value outside them is missing)."""
    frame = frame[frame[data.target].notna()]
    X = frame.drop(columns=[data.target]).copy()
    for name in X.columns:
        reference = data.train[name]
        if not pd.api.types.is_numeric_dtype(reference) or pd.api.types.is_bool_dtype(
            reference
        ):
            levels = sorted(reference.dropna().astype(str).unique())
            X[name] = pd.Categorical(
                X[name].astype(object).where(X[name].notna(), None), categories=levels
            )
        else:
            X[name] = pd.to_numeric(X[name], errors="coerce").astype(float)
    y = (frame[data.target].astype(object) == data.positive).astype(int)
    return X, y.to_numpy()


def roc_auc_on_test(
    training: pd.DataFrame, data: MixedTable, test: pd.DataFrame | None = None
) -> float:
    """ROC-AUC on ``test`` (default: the real test rows) of a
    ``HistGradientBoostingClassifier`` fitted on ``training`` to predict the target."""
    X, y = classifier_data(training, data)
    if len(np.unique(y)) < 2:
        return float("nan")
    classifier = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=0
    ).fit(X, y)
    X_test, y_test = classifier_data(data.test if test is None else test, data)
    return float(roc_auc_score(y_test, classifier.predict_proba(X_test)[:, 1]))
