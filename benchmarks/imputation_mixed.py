"""Holes in mixed tables: VAEImputer on the frame itself against the pipelines a
scikit-learn user builds for strings, counts and numbers.

    python -m benchmarks.imputation --mixed [--quick] [--masks N] [--adult-rows N]
                                    [--data NAME ...] [--methods NAME ...]
                                    [--patterns NAME ...] [--vae-params JSON]
                                    [--data-dir DIR] [--out DIR]
    python -m benchmarks.imputation --mixed --summarise RUN.json [--out DIR]

Data (``benchmarks.tables``): UCI Adult, all 15 columns with income, and the Palmer
penguins (``palmerpenguins``, the ``bench`` extra: species, island, sex, four
measurements, the year). Adult's training rows are a random sample of
``--adult-rows`` (5,000) of ``adult.data``'s 32,561, the same for every mask: on
all of them, one-hot + ``KNNImputer`` alone takes minutes a mask here (its
pairwise distances grow with the square of the rows), and the run is three patterns
of five masks of five imputers. Integer columns are read as pandas' ``Int64``, so
that a hole leaves them integers (a numpy int column with holes becomes floats).

Each table is masked in three patterns, ``--masks`` times (seeds 0, 1, ...); only
cells that hold a value can be hidden, and the table's own holes stay (every
imputer fills them; nothing scores them):

- ``MCAR 20%`` and ``MCAR 50%``: each cell hidden with that probability;
- ``MNAR``: not at random: a numeric cell above its column's median, or a
  categorical cell holding its column's second most frequent level (Adult's income
  ">50K", sex "Female"), is hidden with probability 0.5, any other with 0.1. The
  mode is not the favoured level, so that the most frequent level cannot profit.

Imputers, in one run on the same masks (numeric columns: numbers; categorical:
text, booleans):

- ``most frequent + mean``: ``SimpleImputer(strategy="most_frequent")`` on the
  categorical columns and ``SimpleImputer()`` on the numeric ones, in a
  ``ColumnTransformer``;
- ``ordinal + BayesianRidge`` and ``ordinal + ExtraTrees``: ``OrdinalEncoder``
  codes of the categorical columns beside the numeric ones into
  ``IterativeImputer`` with ``BayesianRidge`` or ``ExtraTreesRegressor
  (n_estimators=10)`` (``max_iter=10``, as in ``benchmarks.imputation``), each code
  rounded and clipped back to a level;
- ``one-hot + KNN``: one-hot columns of the categorical ones (all of a cell's
  columns missing where it is) beside the standardised numeric ones into
  ``KNNImputer()``, each cell's arg-max level taken back;
- ``VAEImputer``: ``VAEImputer(random_state=0)`` on the frame itself, its defaults
  and its rule for column types (``column_types_``).

Measured (HI-VAE's, Nazabal et al. 2020), per mask: for categorical columns the
share of hidden cells imputed wrong, for numeric ones the RMSE over the hidden cells
divided by the column's range and by its standard deviation (each averaged over the
columns, each column counting once); fit + transform seconds on the training rows;
the ROC-AUC of ``HistGradientBoostingClassifier`` predicting the target (Adult's
income on ``adult.test``; the penguins' sex on a 30% split) when fitted on the
filled training rows, the test rows' own holes filled by the same fitted imputer
(their target hidden from it; a level the training rows lack is missing, as is, for
``VAEImputer``, a value that an integer column it reads as levels never took in
training). For ``VAEImputer``, 20 draws with ``sample_posterior=True`` (seeds
0..19): the share of hidden numeric cells inside the draws' range (a 90% prediction
interval: a 21st exchangeable draw falls inside with probability 19/21), and the
calibration of categorical draws: for each hidden cell, the draws' most frequent
level and its share of the draws, against how often the true level is among the most
frequent (perfect calibration: equal, bin by bin).

``--quick`` (the slow test marker): 1,000 of Adult's rows, one mask.
``--vae-params '{"objective": "elbo"}'`` gives ``VAEImputer`` other parameters (the
report names them). Results go to ``imputation_mixed.md``, ``.json`` and ``.png`` in
``--out`` (default ``benchmarks/results``; ``runs/`` with ``--quick``);
``--summarise RUN.json`` writes the report of a saved run again, measuring nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge

from benchmarks._report import (
    col,
    grouped_bars,
    means_by,
    stamp,
    stamp_line,
    table,
    text_col,
    write_report,
)
from benchmarks.imputation import quietly
from benchmarks.tables import MixedTable, load_adult, load_penguins, roc_auc_on_test
from skvae import VAEImputer

DATA = ("adult", "penguins")
PATTERNS = ("MCAR 20%", "MCAR 50%", "MNAR")
SKLEARN = (
    "most frequent + mean",
    "ordinal + BayesianRidge",
    "ordinal + ExtraTrees",
    "one-hot + KNN",
)
METHODS = (*SKLEARN, "VAEImputer")
ADULT_ROWS = 5_000
QUICK_ROWS = 1_000
N_DRAWS = 20
#: The bins of the draws' share behind the calibration of categorical draws.
CALIBRATION_BINS = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
#: The measurements of one mask and imputer that the report averages.
FIELDS = (
    "categorical_error",
    "rmse_range",
    "rmse_std",
    "roc_auc",
    "seconds",
    "coverage",
    "draw_share",
    "draw_hits",
)


# ------------------------------------------------------------------------ data


def load(name: str, adult_rows: int, data_dir: str | None = None) -> MixedTable:
    """The table ``name`` with its integer columns as ``Int64``; Adult's training
    rows a seeded sample of ``adult_rows``."""
    if name == "penguins":
        data = load_penguins()
    else:
        data = load_adult(data_dir)
        if adult_rows < len(data.train):
            data.train = data.train.sample(adult_rows, random_state=0)
            data.train = data.train.reset_index(drop=True)
    for part in ("train", "test"):
        frame = getattr(data, part)
        integers = [c for c in frame if pd.api.types.is_integer_dtype(frame[c])]
        setattr(data, part, frame.astype(dict.fromkeys(integers, "Int64")))
    return data


def is_categorical(column: pd.Series) -> bool:
    """Whether the benchmark scores ``column`` by levels: text, booleans and
    categories (numbers, integers too, are scored by their distance)."""
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(
        column
    )


def mask(frame: pd.DataFrame, pattern: str, seed: int) -> np.ndarray:
    """Which of ``frame``'s observed cells ``pattern`` hides (True: hidden)."""
    u = np.random.default_rng(seed).random(frame.shape)
    observed = frame.notna().to_numpy()
    if pattern.startswith("MCAR"):
        return observed & (u < float(pattern.split()[1].rstrip("%")) / 100)
    favoured = np.zeros(frame.shape, dtype=bool)
    for j, name in enumerate(frame.columns):
        column = frame[name]
        if is_categorical(column):
            counts = column.value_counts()
            if len(counts) > 1:
                favoured[:, j] = (column == counts.index[1]).fillna(False).to_numpy()
        else:
            values = column.to_numpy(dtype=float, na_value=np.nan)
            favoured[:, j] = values > np.nanmedian(values)
    return observed & (u < np.where(favoured, 0.5, 0.1))


def known_levels(frame: pd.DataFrame, training: pd.DataFrame, also=()) -> pd.DataFrame:
    """``frame`` with each cell missing whose level ``training`` lacks, in its
    categorical columns and in those ``also`` names (an imputer fitted on
    ``training`` knows no such level)."""
    out = frame.copy()
    for name in frame:
        if is_categorical(training[name]) or name in also:
            known = set(training[name].dropna())
            out[name] = frame[name].where(frame[name].isin(known))
    return out


# -------------------------------------------------------------------- imputers


def _as_numbers(frame: pd.DataFrame, numeric: list[str]) -> np.ndarray:
    return frame[numeric].to_numpy(dtype=float, na_value=np.nan)


class _Encoded:
    """A numeric imputer behind an encoding of the categorical columns, with the
    imputed numbers decoded back to levels: a frame in, a frame out."""

    def __init__(self, imputer):
        self.imputer = imputer

    def fit(self, frame: pd.DataFrame):
        self.categorical_ = [c for c in frame if is_categorical(frame[c])]
        self.numeric_ = [c for c in frame if c not in self.categorical_]
        self.levels_ = {
            c: np.array(sorted(frame[c].dropna().unique(), key=str))
            for c in self.categorical_
        }
        self._fit_encoding(frame)
        self.imputer_ = clone(self.imputer).fit(self._encode(frame))
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        filled = self.imputer_.transform(self._encode(frame))
        out = frame.copy()
        for name, values in self._decode(filled).items():
            if is_categorical(frame[name]):
                out[name] = pd.Series(values, index=frame.index, dtype=object)
            else:
                out[name] = pd.Series(values, index=frame.index, dtype=float)
        return out

    def _codes(self, frame: pd.DataFrame, name: str) -> np.ndarray:
        """The level numbers of ``frame[name]`` (NaN where missing)."""
        lookup = {level: i for i, level in enumerate(self.levels_[name])}
        return frame[name].map(lookup).to_numpy(dtype=float, na_value=np.nan)


class OrdinalImputer(_Encoded):
    """Ordinal codes beside the numbers; codes rounded and clipped to a level."""

    def _fit_encoding(self, frame):
        pass

    def _encode(self, frame):
        codes = [self._codes(frame, c) for c in self.categorical_]
        return np.column_stack([*codes, _as_numbers(frame, self.numeric_)])

    def _decode(self, filled):
        out = {}
        for j, name in enumerate(self.categorical_):
            top = len(self.levels_[name]) - 1
            codes = np.clip(np.rint(filled[:, j]), 0, top).astype(int)
            out[name] = self.levels_[name][codes].astype(object)
        for j, name in enumerate(self.numeric_, start=len(self.categorical_)):
            out[name] = filled[:, j]
        return out


class OneHotImputer(_Encoded):
    """One-hot columns (all missing where the cell is) beside the standardised
    numbers; each cell's arg-max level taken back."""

    def _fit_encoding(self, frame):
        numbers = _as_numbers(frame, self.numeric_)
        self.mean_ = np.nanmean(numbers, axis=0)
        self.scale_ = np.nanstd(numbers, axis=0)
        self.scale_[self.scale_ == 0] = 1.0

    def _encode(self, frame):
        blocks = []
        for name in self.categorical_:
            codes = self._codes(frame, name)
            onehot = np.equal.outer(codes, np.arange(len(self.levels_[name])))
            blocks.append(np.where(np.isnan(codes)[:, None], np.nan, onehot))
        numbers = (_as_numbers(frame, self.numeric_) - self.mean_) / self.scale_
        return np.column_stack([*blocks, numbers])

    def _decode(self, filled):
        out, start = {}, 0
        for name in self.categorical_:
            width = len(self.levels_[name])
            picked = np.argmax(filled[:, start : start + width], axis=1)
            out[name] = self.levels_[name][picked].astype(object)
            start += width
        numbers = filled[:, start:] * self.scale_ + self.mean_
        out.update({name: numbers[:, j] for j, name in enumerate(self.numeric_)})
        return out


class ColumnwiseImputer:
    """``SimpleImputer``: the most frequent level, or the mean, column by column,
    in a ``ColumnTransformer``."""

    def fit(self, frame: pd.DataFrame):
        categorical = [c for c in frame if is_categorical(frame[c])]
        numeric = [c for c in frame if c not in categorical]
        self.transformer_ = ColumnTransformer(
            [
                ("levels", SimpleImputer(strategy="most_frequent"), categorical),
                ("numbers", SimpleImputer(), numeric),
            ],
            verbose_feature_names_out=False,
        ).set_output(transform="pandas")
        self.transformer_.fit(_for_sklearn(frame, categorical))
        self.categorical_ = categorical
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        filled = self.transformer_.transform(_for_sklearn(frame, self.categorical_))
        return filled[list(frame.columns)].set_index(frame.index)


def _for_sklearn(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Categorical columns as objects with NaN holes, numeric ones as floats: what
    ``SimpleImputer`` takes (it refuses pandas' NA among strings)."""
    out = {}
    for name in frame:
        if name in categorical:
            values = frame[name].astype(object)
            out[name] = values.where(values.notna(), np.nan)
        else:
            out[name] = frame[name].astype(float)
    return pd.DataFrame(out, index=frame.index)


def imputers(vae_params: dict | None = None) -> dict[str, object]:
    """Name -> a fresh imputer of frames; ``vae_params`` are VAEImputer's beyond
    ``random_state=0``."""
    return {
        "most frequent + mean": ColumnwiseImputer(),
        "ordinal + BayesianRidge": OrdinalImputer(
            IterativeImputer(BayesianRidge(), max_iter=10, random_state=0)
        ),
        "ordinal + ExtraTrees": OrdinalImputer(
            IterativeImputer(
                ExtraTreesRegressor(n_estimators=10, random_state=0),
                max_iter=10,
                random_state=0,
            )
        ),
        "one-hot + KNN": OneHotImputer(KNNImputer()),
        "VAEImputer": VAEImputer(random_state=0, **(vae_params or {})),
    }


# --------------------------------------------------------------------- metrics


def errors(
    filled: pd.DataFrame, truth: pd.DataFrame, hidden: np.ndarray
) -> dict[str, dict]:
    """Per column, over its hidden cells: the share imputed wrong (categorical), or
    the RMSE divided by the column's range and standard deviation (numeric)."""
    out = {}
    for j, name in enumerate(truth.columns):
        rows = hidden[:, j]
        if not rows.any():
            continue
        if is_categorical(truth[name]):
            wrong = (
                filled[name].to_numpy(dtype=object)[rows]
                != truth[name].to_numpy(dtype=object)[rows]
            )
            out[name] = {"error": float(np.mean(wrong))}
        else:
            values = truth[name].to_numpy(dtype=float, na_value=np.nan)
            guess = filled[name].to_numpy(dtype=float, na_value=np.nan)[rows]
            rmse = float(np.sqrt(np.mean((guess - values[rows]) ** 2)))
            spread = np.nanmax(values) - np.nanmin(values)
            out[name] = {
                "rmse_range": rmse / spread,
                "rmse_std": rmse / float(np.nanstd(values)),
            }
    return out


def mean_errors(per_column: dict[str, dict]) -> dict[str, float | None]:
    """The means over columns (each counting once) of :func:`errors`."""

    def mean(key):
        values = [e[key] for e in per_column.values() if key in e]
        return float(np.mean(values)) if values else None

    return {
        "categorical_error": mean("error"),
        "rmse_range": mean("rmse_range"),
        "rmse_std": mean("rmse_std"),
    }


def draw_calibration(draws: np.ndarray, truth: np.ndarray) -> dict:
    """How well categorical draws (n_draws, n cells) know their own accuracy.

    For each cell: ``share``, the draws' most frequent level's share of the draws;
    ``hit``, whether the true level is among the most frequent (ties included).
    Returns their means and, per bin of ``share`` (:data:`CALIBRATION_BINS`), the
    cells' count, mean share and share of hits: equal for calibrated draws.
    """
    shares, hits = np.empty(draws.shape[1]), np.empty(draws.shape[1], dtype=bool)
    for i in range(draws.shape[1]):
        levels, counts = np.unique(draws[:, i].astype(str), return_counts=True)
        shares[i] = counts.max() / len(draws)
        hits[i] = str(truth[i]) in set(levels[counts == counts.max()])
    index = np.clip(np.digitize(shares, CALIBRATION_BINS[1:-1]), 0, None)
    bins = []
    for b in range(len(CALIBRATION_BINS) - 1):
        inside = index == b
        if inside.any():
            bins.append(
                {
                    "low": float(CALIBRATION_BINS[b]),
                    "count": int(inside.sum()),
                    "share": float(shares[inside].mean()),
                    "hits": float(hits[inside].mean()),
                }
            )
    return {
        "draw_share": float(shares.mean()),
        "draw_hits": float(hits.mean()),
        "calibration_bins": bins,
    }


def draws_measures(fitted, holes: pd.DataFrame, truth, hidden) -> dict:
    """Coverage of the hidden numeric cells by the range of N_DRAWS draws, and the
    calibration of the draws of the hidden categorical cells."""
    fitted.set_params(sample_posterior=True)
    try:
        draws = []
        for seed in range(N_DRAWS):
            fitted.set_params(random_state=seed)
            draws.append(quietly(fitted.transform, holes))
    finally:
        fitted.set_params(sample_posterior=False, random_state=0)
    inside, categorical_draws, categorical_truth = [], [], []
    for j, name in enumerate(truth.columns):
        rows = hidden[:, j]
        if not rows.any():
            continue
        stacked = np.stack([d[name].to_numpy(dtype=object)[rows] for d in draws])
        true = truth[name].to_numpy(dtype=object)[rows]
        if is_categorical(truth[name]):
            categorical_draws.append(stacked)
            categorical_truth.append(true)
        else:
            values, true = stacked.astype(float), true.astype(float)
            inside.append((true >= values.min(0)) & (true <= values.max(0)))
    out = {"coverage": float(np.mean(np.concatenate(inside))) if inside else None}
    if categorical_draws:
        out.update(
            draw_calibration(
                np.concatenate(categorical_draws, axis=1),
                np.concatenate(categorical_truth),
            )
        )
    return out


def downstream(fitted, holes: pd.DataFrame, filled: pd.DataFrame, data) -> float:
    """ROC-AUC on the test rows of a classifier fitted on the filled training rows;
    the test rows' holes filled by ``fitted`` (which was fitted on ``holes``),
    their target hidden from it."""
    # VAEImputer's integer columns with few values are levels too (its
    # column_types_): a value fit never saw is a hole for it, as a level is.
    levels = [
        name
        for name, kind in getattr(fitted, "column_types_", {}).items()
        if kind in ("binary", "categorical")
    ]
    test = known_levels(data.test, holes, levels)
    everywhere = np.ones(len(test), dtype=bool)
    hidden_target = test.assign(**{data.target: test[data.target].mask(everywhere)})
    test_filled = quietly(fitted.transform, hidden_target)
    test_filled[data.target] = data.test[data.target].to_numpy()
    return roc_auc_on_test(filled, data, test_filled)


# ------------------------------------------------------------------------- run


def run(
    tables: dict[str, MixedTable], patterns, masks: int, methods, vae_params=None
) -> list[dict]:
    rows = []
    for name, data in tables.items():
        truth = data.train
        for pattern in patterns:
            for seed in range(masks):
                hidden = mask(truth, pattern, seed)
                holes = truth.mask(hidden)
                for method, imputer in imputers(vae_params).items():
                    if method not in methods:
                        continue
                    start = time.perf_counter()
                    fitted = quietly(imputer.fit, holes)
                    filled = quietly(fitted.transform, holes)
                    seconds = time.perf_counter() - start
                    per_column = errors(filled, truth, hidden)
                    row = {
                        "data": name,
                        "pattern": pattern,
                        "seed": seed,
                        "method": method,
                        "rows": len(truth),
                        "hidden_share": float(hidden.mean()),
                        "seconds": seconds,
                        **mean_errors(per_column),
                        "per_column": per_column,
                        "roc_auc": downstream(fitted, holes, filled, data),
                    }
                    if method == "VAEImputer":
                        row.update(draws_measures(fitted, holes, truth, hidden))
                        row["n_iter"] = fitted.n_iter_
                    print(_progress(row), flush=True)
                    rows.append(row)
    return rows


def _progress(row: dict) -> str:
    parts = [f"{row['data']} {row['pattern']} mask {row['seed']} {row['method']}:"]
    for key, label in [
        ("categorical_error", "error"),
        ("rmse_range", "RMSE/range"),
        ("roc_auc", "ROC-AUC"),
        ("seconds", "s"),
        ("coverage", "coverage"),
        ("draw_share", "draw share"),
        ("draw_hits", "hits"),
    ]:
        if row.get(key) is not None:
            parts.append(f"{label} {row[key]:.4f}")
    return " ".join(parts)


# ------------------------------------------------------------------- reporting


def summarise(rows: list[dict]) -> list[dict]:
    """Means over masks per data set, pattern and imputer, with each measure over
    the best scikit-learn pipeline's on the same data and pattern."""
    entries = means_by(rows, ("data", "pattern", "method"), FIELDS)
    for e in entries:
        peers = [
            p
            for p in entries
            if (p["data"], p["pattern"]) == (e["data"], e["pattern"])
            and p["method"] in SKLEARN
        ]
        if not peers:
            continue
        for key in ("categorical_error", "rmse_range"):
            best = min(p[key] for p in peers)
            e[f"{key}_vs_best"] = e[key] / best
        e["roc_auc_vs_best"] = e["roc_auc"] - max(p["roc_auc"] for p in peers)
        trees = [p for p in peers if p["method"] == "ordinal + ExtraTrees"]
        e["time_vs_trees"] = e["seconds"] / trees[0]["seconds"] if trees else None
    return entries


def goals(entries: list[dict], data: str = "adult") -> list[str]:
    """The issue's goals on ``data``: met, or by how much they are missed."""
    vae = {
        e["pattern"]: e
        for e in entries
        if e["data"] == data and e["method"] == "VAEImputer"
    }
    lines = [f"Goals on {data} (VAEImputer against the best pipeline's):", ""]

    def line(text: str, met: bool) -> None:
        lines.append(f"- {text}: {'met' if met else 'missed'}.")

    for pattern, ceiling in (("MCAR 50%", 0.95), ("MCAR 20%", 1.03)):
        if pattern not in vae:
            continue
        for key, what in (
            ("categorical_error", "categorical error"),
            ("rmse_range", "numeric RMSE / range"),
        ):
            ratio = vae[pattern][f"{key}_vs_best"]
            line(
                f"{pattern}: {what} {ratio:.3f}x the best pipeline's "
                f"(goal at most {ceiling:.2f}x)",
                ratio <= ceiling,
            )
    for pattern, e in vae.items():
        line(
            f"{pattern}: ROC-AUC {e['roc_auc']:.4f}, {e['roc_auc_vs_best']:+.4f} "
            "against the best pipeline's (goal at least 0)",
            e["roc_auc_vs_best"] >= 0,
        )
    for pattern, e in vae.items():
        if e["time_vs_trees"] is not None:
            line(
                f"{pattern}: fit + transform {e['seconds']:.1f} s, "
                f"{e['time_vs_trees']:.2f}x ordinal + ExtraTrees' (goal at most 1x)",
                e["time_vs_trees"] <= 1.0,
            )
    return [*lines, ""]


def patterns_in(entries: list[dict]) -> tuple[str, ...]:
    return tuple(p for p in PATTERNS if any(e["pattern"] == p for e in entries))


def figure(entries: list[dict], rows: list[dict], path: Path) -> None:
    """Categorical error and numeric RMSE / range per pattern, data set and
    imputer; and the calibration of VAEImputer's categorical draws."""
    import matplotlib.pyplot as plt

    patterns = patterns_in(entries)
    fig, axes = plt.subplots(
        2, len(patterns) + 1, figsize=(4.2 * (len(patterns) + 1), 7.5), squeeze=False
    )
    for r, (key, label) in enumerate(
        (
            ("categorical_error", "categorical cells wrong"),
            ("rmse_range", "numeric RMSE / range"),
        )
    ):
        grouped_bars(entries, "pattern", patterns, key, axes=axes[r, :-1])
        axes[r, 0].set_ylabel(label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[1, -1].axis("off")
    axes[1, -1].legend(handles, labels, loc="center", fontsize=9)
    ax = axes[0, -1]
    for name in dict.fromkeys(r["data"] for r in rows):
        bins = _pooled_bins(
            [r for r in rows if r["data"] == name and "calibration_bins" in r]
        )
        if bins:
            ax.plot(
                [b["share"] for b in bins],
                [b["hits"] for b in bins],
                "o-",
                label=name,
            )
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="calibrated")
    ax.set_xlabel(f"share of the {N_DRAWS} draws at their most frequent level")
    ax.set_ylabel("share with the true level the most frequent")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02))
    ax.set_title("VAEImputer's categorical draws")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pooled_bins(rows: list[dict]) -> list[dict]:
    """The calibration bins of ``rows`` pooled, weighted by their counts."""
    pooled: dict[float, list] = {}
    for r in rows:
        for b in r["calibration_bins"]:
            pooled.setdefault(b["low"], []).append(b)
    out = []
    for low in sorted(pooled):
        parts = pooled[low]
        count = sum(b["count"] for b in parts)
        out.append(
            {
                "low": low,
                "count": count,
                "share": sum(b["share"] * b["count"] for b in parts) / count,
                "hits": sum(b["hits"] * b["count"] for b in parts) / count,
            }
        )
    return out


def report(s: dict, rows: list[dict], out: Path) -> list[str]:
    """Write the report of ``rows``, measured by the run ``s`` stamps."""
    entries = summarise(rows)
    lines = ["# Holes in mixed tables: VAEImputer against scikit-learn pipelines", ""]
    lines += [stamp_line(s), "", f"{s['seconds'] / 60:.0f} minutes.", ""]
    vae = ", ".join(f"{k}={v!r}" for k, v in (s.get("vae_params") or {}).items())
    lines += [f"VAEImputer: `VAEImputer(random_state=0{', ' * bool(vae)}{vae})`.", ""]
    sizes = {r["data"]: r["rows"] for r in rows}
    lines += [
        "Training rows: "
        + ", ".join(f"{name} {n:,}" for name, n in sizes.items())
        + ".",
        "",
    ]
    for name in sizes:
        lines += goals(entries, name) if name == "adult" else []
    lines += [
        "Where a goal is missed, what was tried: benchmarks/README.md, "
        '"Holes in mixed tables".',
        "",
    ]
    lines += table(
        [
            text_col("data", "data"),
            text_col("pattern", "pattern"),
            text_col("imputer", "method"),
            col("masks", "n", "d"),
            col("categorical wrong", "categorical_error", ".4f"),
            col("/ best", "categorical_error_vs_best", ".3f", "x"),
            col("numeric RMSE / range", "rmse_range", ".4f"),
            col("/ best", "rmse_range_vs_best", ".3f", "x"),
            col("RMSE / sd", "rmse_std", ".4f"),
            col("ROC-AUC", "roc_auc", ".4f"),
            col("fit + transform s", "seconds", ".1f"),
            col("/ ExtraTrees'", "time_vs_trees", ".2f", "x"),
        ],
        entries,
        'Means over masks; each error a mean over the columns. "/ best": over the '
        "best of the four scikit-learn pipelines on that data and pattern. ROC-AUC: "
        "HistGradientBoostingClassifier fitted on the filled training rows, tested "
        "on the test rows (Adult: adult.test) filled by the same imputer.",
    )
    lines += table(
        [
            text_col("data", "data"),
            text_col("pattern", "pattern"),
            col("numeric 90% coverage (range of 20)", "coverage", ".3f"),
            col("draws' most frequent level: share", "draw_share", ".3f"),
            col("true level among them", "draw_hits", ".3f"),
        ],
        [e for e in entries if e["method"] == "VAEImputer"],
        f"VAEImputer's {N_DRAWS} draws (sample_posterior=True, seeds 0..19): "
        "coverage of the hidden numeric cells by their range (a 90% prediction "
        "interval, 19/21); for categorical cells, the mean share of the draws that "
        "their most frequent level has, against how often the true level is among "
        "the most frequent (equal when calibrated; by bin in the figure).",
    )
    out.mkdir(parents=True, exist_ok=True)
    figure(entries, rows, out / "imputation_mixed.png")
    lines += ["![Errors per imputer, and calibration](imputation_mixed.png)", ""]
    payload = {"stamp": s, "per_data_set": entries, "runs": rows}
    write_report(out, "imputation_mixed", payload, lines)
    return lines


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--masks", type=int, default=5)
    parser.add_argument("--adult-rows", type=int, default=ADULT_ROWS)
    parser.add_argument("--data", nargs="+", choices=DATA, default=list(DATA))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--patterns", nargs="+", choices=PATTERNS, default=PATTERNS)
    parser.add_argument("--vae-params", type=json.loads, default=None)
    parser.add_argument("--summarise", type=Path, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.summarise:
        saved = json.loads(args.summarise.read_text())
        out = args.out or args.summarise.parent
        print("\n".join(report(saved["stamp"], saved["runs"], out)))
        return
    if args.quick:
        args.masks, args.adult_rows = 1, QUICK_ROWS
    out = args.out or Path("runs/imputation" if args.quick else "benchmarks/results")
    # Adult's files are looked for first: a missing one stops the run at once,
    # saying where it goes.
    tables = {name: load(name, args.adult_rows, args.data_dir) for name in args.data}
    s = stamp("benchmarks.imputation", ["--mixed", *argv])
    s["vae_params"] = args.vae_params
    started = time.perf_counter()
    rows = run(tables, args.patterns, args.masks, args.methods, args.vae_params)
    s["seconds"] = time.perf_counter() - started
    # The measurements are saved before anything summarises them, so that a
    # failing summary never loses an hour of runs (the report overwrites this).
    unsummarised = ["# Holes in mixed tables: rows not yet summarised", ""]
    write_report(out, "imputation_mixed", {"stamp": s, "runs": rows}, unsummarised)
    print("\n".join(report(s, rows, out)))
