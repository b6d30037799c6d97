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
