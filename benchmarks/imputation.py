"""Missing values: VAEImputer against scikit-learn's imputers.

    python -m benchmarks.imputation [--masks N] [--mnist-masks N] [--mnist-rows N]
                                    [--data NAME ...] [--methods NAME ...]
                                    [--patterns NAME ...] [--first-mask K]
                                    [--vae-params JSON] [--quick] [--out DIR]

Data: breast_cancer, wine, diabetes and digits, standardised, and 10,000 MNIST
training images as they are ([0, 1]; the Bernoulli decoder). Each data set is
masked in three patterns, ``--masks`` times each (seeds 0, 1, ...; ``--mnist-masks``
for MNIST):

- ``MCAR 20%`` and ``MCAR 50%``: each entry missing with that probability;
- ``MNAR``: missing not at random, large values more often: an entry above its
  column's median is missing with probability 0.5, one at or below it with 0.1
  (30% in all).

Imputers, in one run on the same masks: ``SimpleImputer(mean)``, ``KNNImputer()``,
``IterativeImputer`` with ``BayesianRidge`` and with ``ExtraTreesRegressor(
n_estimators=10)`` (scikit-learn's own example's choice; ``max_iter=10``), and
``VAEImputer`` at its defaults. On MNIST the iterative imputers use
``n_nearest_features=50`` and ``max_iter=3``, and the ExtraTrees one is left out:
7,840 forest fits on 10,000 rows would take hours here. VAEImputer gets two hidden
layers of 256 and 300 epochs (``tol=0``) there: its defaults, sized for tables,
stop after about 100 epochs of a network too small for images (RMSE 0.130 against
0.110 on MCAR 20%, mask 0). ``--methods`` and ``--patterns`` run only the
imputers and patterns they name, and ``--first-mask K`` starts the masks' seeds at
K, so that a long run can be split over several and combined (below): here one
MNIST mask of one pattern with every imputer took 35 minutes, so MNIST's five masks
of three patterns take about 9 hours.

Measured: RMSE over the hidden entries (on the standardised scale; pixels for
MNIST), fit + transform seconds, and where the data have classes the test accuracy
of a ``LogisticRegression`` trained on the imputed training rows (a stratified
70/30 split, the imputer fitted on the training rows). For
``VAEImputer(sample_posterior=True)`` and ``IterativeImputer(BayesianRidge,
sample_posterior=True)``: the coverage of the hidden entries by 90% intervals
from 20 imputations with seeds 0..19: their range, a 90% prediction interval (a
21st exchangeable draw falls inside it with probability 19/21), and, for
comparison, their 5th to 95th percentiles (about 81% for a perfect model, the
interpolated percentiles of 20 draws being narrower). Results go
to ``imputation.md``, ``imputation.json`` and ``imputation.png`` in ``--out``
(default ``benchmarks/results``).

    python -m benchmarks.imputation --quick [--out DIR]

is a smoke test of the speed goals' timings that a change can run before it lands
(a few minutes): one mask of each pattern on wine and diabetes (the tables on
which VAEImputer was slowest against ExtraTrees) and on 500 MNIST images, every
imputer, without the coverage and accuracy runs; written to a new temporary folder
unless ``--out`` is given.

Times: every imputer is fitted on a mask right after the others, so the report
pairs VAEImputer's fit + transform seconds with its peer's on the same mask
(ExtraTrees' on the tables, BayesianRidge's on MNIST, the speed goals' peers) and
gives the median of those ratios over a data set's masks, with the lowest and
highest; rows of different runs (``--combine``) are never paired.

``--vae-params '{"n_mc_samples": 1}'`` gives VAEImputer other parameters (over
the image settings above, on MNIST), to compare settings on the same masks.

    python -m benchmarks.imputation --combine RUN.json [RUN.json ...] [--out DIR]

writes the one report of several runs' JSON files (say, the tables in one session
and MNIST in another) without measuring anything: their rows together, each
run's stamp named. Where two runs measured the same imputer on the same data set,
pattern and mask, the later file's row replaces the earlier one's (a rerun of one
imputer with ``--methods``). A data set and pattern are summarised over the masks
that every imputer there has measured (the tables' ``masks`` column), so that a
partly measured mask compares no imputer on masks its peers did not see.

    python -m benchmarks.imputation --mixed [--quick] [...]

runs the mixed tables instead (Adult, the penguins: text, integers and numbers with
holes, against the pipelines users build for them); ``benchmarks.imputation_mixed``
says what it measures, and writes ``imputation_mixed.*``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from benchmarks._report import (
    col,
    grouped_bars,
    means_by,
    paired_ratios,
    ratio_cell,
    resolve_quick,
    stamp,
    stamp_line,
    table,
    text_col,
    write_report,
)
from benchmarks.mnist_data import load_mnist, mnist_directory
from skvae import VAEImputer

PATTERNS = ("MCAR 20%", "MCAR 50%", "MNAR")
#: The data sets ``--quick`` runs: the two tables on which VAEImputer was furthest
#: from ExtraTrees' time, and MNIST (500 images) where it is present.
QUICK_DATA = ("wine", "diabetes", "MNIST")
SKLEARN = ("mean", "KNN", "Iterative BayesianRidge", "Iterative ExtraTrees")
N_DRAWS = 20


def data_sets(names: list[str] | None, mnist_rows: int) -> dict[str, tuple]:
    """Name -> (X, y or None, is_images)."""
    out = {}
    for name, loader in [
        ("breast_cancer", datasets.load_breast_cancer),
        ("wine", datasets.load_wine),
        ("diabetes", datasets.load_diabetes),
        ("digits", datasets.load_digits),
    ]:
        X, y = loader(return_X_y=True)
        out[name] = (
            StandardScaler().fit_transform(X),
            None if name == "diabetes" else y,
            False,
        )
    if mnist_directory().is_dir():
        mnist = load_mnist()
        out["MNIST"] = (
            mnist.X_train[:mnist_rows].astype(np.float64),
            mnist.y_train[:mnist_rows],
            True,
        )
    return {k: v for k, v in out.items() if names is None or k in names}


def mask(X: np.ndarray, pattern: str, seed: int) -> np.ndarray:
    """Where ``pattern`` hides entries of X (True: missing)."""
    rng = np.random.default_rng(seed)
    u = rng.random(X.shape)
    if pattern == "MCAR 20%":
        return u < 0.2
    if pattern == "MCAR 50%":
        return u < 0.5
    large = X > np.median(X, axis=0)
    return u < np.where(large, 0.5, 0.1)


def imputers(images: bool, vae_params: dict | None = None) -> dict[str, object]:
    """Name -> a fresh imputer; ``vae_params`` are VAEImputer's beyond those
    below (``--vae-params``)."""
    limits = dict(n_nearest_features=50, max_iter=3) if images else dict(max_iter=10)
    out = {
        "mean": SimpleImputer(),
        "KNN": KNNImputer(),
        "Iterative BayesianRidge": IterativeImputer(
            BayesianRidge(), random_state=0, **limits
        ),
    }
    if not images:
        out["Iterative ExtraTrees"] = IterativeImputer(
            ExtraTreesRegressor(n_estimators=10, random_state=0),
            random_state=0,
            **limits,
        )
    settings = (
        dict(hidden_layer_sizes=(256, 256), max_iter=300, tol=0.0) if images else {}
    )
    out["VAEImputer"] = VAEImputer(random_state=0, **(settings | (vae_params or {})))
    return out


def quietly(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args)


def interval_coverage(draws: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Shares of ``truth`` inside the 90% intervals that ``draws`` (N_DRAWS, n)
    give: their range, and their 5th to 95th percentiles.

    The range of 20 exchangeable draws is a 90% prediction interval: a 21st draw
    falls inside it with probability 19/21 = 0.905. The interpolated percentiles
    are narrower: a perfect model's coverage by them is about 17.1/21 = 0.81.
    """
    inside_range = (truth >= draws.min(0)) & (truth <= draws.max(0))
    low, high = np.percentile(draws, [5, 95], axis=0)
    inside_pct = (truth >= low) & (truth <= high)
    return float(np.mean(inside_range)), float(np.mean(inside_pct))


def coverage(fitted, X_missing, X, hidden) -> tuple[float, float]:
    """:func:`interval_coverage` of N_DRAWS imputations with seeds 0, 1, ..."""
    fitted.set_params(sample_posterior=True)
    draws = []
    for seed in range(N_DRAWS):
        fitted.set_params(random_state=seed)
        draws.append(quietly(fitted.transform, X_missing)[hidden])
    return interval_coverage(np.stack(draws), X[hidden])


def iterative_coverage(X_missing, X, hidden, images) -> tuple[float, float]:
    """The same for IterativeImputer(BayesianRidge, sample_posterior=True)."""
    limits = dict(n_nearest_features=50, max_iter=3) if images else dict(max_iter=10)
    draws = []
    for seed in range(N_DRAWS):
        est = IterativeImputer(
            BayesianRidge(), sample_posterior=True, random_state=seed, **limits
        )
        draws.append(quietly(est.fit_transform, X_missing)[hidden])
    return interval_coverage(np.stack(draws), X[hidden])


def accuracy(imputer, X_missing, y, seed) -> float:
    """Test accuracy of a LogisticRegression after ``imputer`` (fitted on train)."""
    train, test = train_test_split(
        np.arange(len(y)), test_size=0.3, stratify=y, random_state=seed
    )
    est = quietly(imputer.fit, X_missing[train])
    clf = LogisticRegression(max_iter=1000)
    quietly(clf.fit, est.transform(X_missing[train]), y[train])
    return float(clf.score(est.transform(X_missing[test]), y[test]))


def run(
    names,
    masks: int,
    mnist_masks: int,
    mnist_rows: int,
    methods=None,
    first_mask: int = 0,
    patterns=PATTERNS,
    extras: bool = True,
    vae_params: dict | None = None,
) -> list[dict]:
    """Every imputer on every mask: RMSE and seconds, and with ``extras`` the
    coverage of sampled imputations and a classifier's accuracy after each."""
    rows = []
    for name, (X, y, images) in data_sets(names, mnist_rows).items():
        for pattern in patterns:
            count = mnist_masks if images else masks
            for seed in range(first_mask, first_mask + count):
                hidden = mask(X, pattern, seed)
                X_missing = np.where(hidden, np.nan, X)
                for method, imputer in imputers(images, vae_params).items():
                    if methods is not None and method not in methods:
                        continue
                    start = time.perf_counter()
                    fitted = quietly(imputer.fit, X_missing)
                    X_filled = fitted.transform(X_missing)
                    seconds = time.perf_counter() - start
                    row = {
                        "data": name,
                        "pattern": pattern,
                        "seed": seed,
                        "method": method,
                        "missing_share": float(hidden.mean()),
                        "rmse": float(np.sqrt(np.mean((X_filled - X)[hidden] ** 2))),
                        "seconds": seconds,
                    }
                    if method == "VAEImputer" and extras:
                        row["coverage"], row["coverage_pct"] = coverage(
                            fitted, X_missing, X, hidden
                        )
                    if method == "VAEImputer":
                        row["n_iter"] = fitted.n_iter_
                    if (
                        method == "Iterative BayesianRidge"
                        and seed == 0
                        and not images
                        and extras
                    ):
                        row["coverage"], row["coverage_pct"] = iterative_coverage(
                            X_missing, X, hidden, images
                        )
                    if y is not None and extras:
                        fresh = imputers(images, vae_params)[method]
                        row["accuracy"] = accuracy(fresh, X_missing, y, seed)
                    print(
                        f"{name} {pattern} mask {seed} {method}: RMSE "
                        f"{row['rmse']:.4f}, {seconds:.1f} s"
                        + (
                            f", coverage {row['coverage']:.3f}"
                            if "coverage" in row
                            else ""
                        )
                        + (
                            f", accuracy {row['accuracy']:.3f}"
                            if "accuracy" in row
                            else ""
                        ),
                        flush=True,
                    )
                    rows.append(row)
    return rows


def common_masks(rows: list[dict]) -> list[dict]:
    """The rows of the masks that every imputer measured on their data set and
    pattern (all of them, where each imputer ran on the same masks)."""
    seeds: dict[tuple, dict[str, set]] = {}
    for r in rows:
        by_method = seeds.setdefault((r["data"], r["pattern"]), {})
        by_method.setdefault(r["method"], set()).add(r["seed"])
    common = {key: set.intersection(*m.values()) for key, m in seeds.items()}
    return [r for r in rows if r["seed"] in common[r["data"], r["pattern"]]]


#: Image data sets: their time peer is IterativeImputer(BayesianRidge), the
#: ExtraTrees one being left out (see the module's docstring).
IMAGES = ("MNIST",)


def time_peer(row: dict) -> str:
    """The imputer whose fit + transform time a row's is paired with: the speed
    goals' peers, ExtraTrees on the tables and BayesianRidge on images."""
    if row["data"] in IMAGES:
        return "Iterative BayesianRidge"
    return "Iterative ExtraTrees"


def summarise(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per data set, pattern and method: means over the masks all imputers there
    measured, with the VAE's RMSE against the best scikit-learn imputer's; and the
    goals' figures per pattern."""
    rows = common_masks([{"run": 0, **r} for r in rows])
    per_set = means_by(
        rows,
        ("data", "pattern", "method"),
        ("rmse", "seconds", "accuracy", "coverage", "coverage_pct"),
    )
    times = paired_ratios(
        rows,
        ("run", "data", "pattern", "seed"),
        ("data", "pattern", "method"),
        "seconds",
        time_peer,
    )
    for e in per_set:
        peers = [
            p
            for p in per_set
            if (p["data"], p["pattern"]) == (e["data"], e["pattern"])
            and p["method"] in SKLEARN
        ]
        best = min(peers, key=lambda p: p["rmse"])
        e["vs_best"] = e["rmse"] / best["rmse"]
        e["best"] = best["method"]
        paired = times.get((e["data"], e["pattern"], e["method"]))
        if paired and e["method"] == "VAEImputer":
            e["time_vs_peer"] = float(np.median(paired))
            e["time_vs_peer_range"] = [min(paired), max(paired)]
    goals = []
    for pattern in measured_patterns(per_set):
        vae = [
            e
            for e in per_set
            if e["pattern"] == pattern and e["method"] == "VAEImputer"
        ]
        ratios = [e["vs_best"] for e in vae]
        tables = [e for e in vae if e["data"] not in IMAGES and e.get("time_vs_peer")]
        images = [e for e in vae if e["data"] in IMAGES and e.get("time_vs_peer")]
        goals.append(
            {
                "pattern": pattern,
                "median_vs_best": float(np.median(ratios)),
                "worst_vs_best": float(np.max(ratios)),
                "worst_data": vae[int(np.argmax(ratios))]["data"],
                "median_coverage": (
                    float(np.median([e["coverage"] for e in vae]))
                    if all("coverage" in e for e in vae)
                    else None
                ),
                "max_time_vs_trees": (
                    max(e["time_vs_peer"] for e in tables) if tables else None
                ),
                "max_time_data": (
                    max(tables, key=lambda e: e["time_vs_peer"])["data"]
                    if tables
                    else "-"
                ),
                "images_time_vs_peer": (
                    max(e["time_vs_peer"] for e in images) if images else None
                ),
            }
        )
    return per_set, goals


def measured_patterns(per_set: list[dict]) -> tuple[str, ...]:
    """The patterns ``per_set`` holds, in the order of ``PATTERNS``."""
    return tuple(p for p in PATTERNS if any(e["pattern"] == p for e in per_set))


def figure(per_set: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = grouped_bars(per_set, "pattern", measured_patterns(per_set), "vs_best")
    for ax in axes:
        ax.axhline(1.0, color="k", lw=0.8)
    axes[0].set_ylabel("RMSE / best scikit-learn imputer's")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=5, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(stamps: list[dict], rows: list[dict], out: Path) -> list[str]:
    """Write the report of ``rows``, measured by the runs ``stamps`` name."""
    per_set, goals = summarise(rows)
    lines = ["# Missing values: VAEImputer against scikit-learn's imputers", ""]
    for s in stamps:
        done = sorted({r["data"] for r in rows if r.get("run", 0) == s["run"]})
        lines += [
            stamp_line(s),
            f"{s['seconds'] / 60:.0f} minutes; data: {', '.join(done)}.",
            "",
        ]
    lines += table(
        [
            text_col("pattern", "pattern"),
            col("VAE RMSE / best, median data set", "median_vs_best", ".3f", "x"),
            col("worst", "worst_vs_best", ".3f", "x"),
            text_col("worst on", "worst_data"),
            col("90% interval coverage, median", "median_coverage", ".3f"),
            col("time / ExtraTrees', worst table", "max_time_vs_trees", ".2f", "x"),
            text_col("on", "max_time_data"),
            col("time / BayesianRidge's, MNIST", "images_time_vs_peer", ".2f", "x"),
        ],
        goals,
        "VAEImputer's RMSE over the best of the four scikit-learn imputers', per data "
        "set (means over masks); coverage of the hidden entries by the range of "
        f"{N_DRAWS} draws with sample_posterior=True, a 90% prediction interval "
        "(19/21). Times: fit + transform over the peer's on the same mask, fitted "
        "one after the other in one run; the median over the masks of a data set, "
        "its worst data set (- where no peer ran beside the VAE).",
    )
    lines += table(
        [
            text_col("data", "data"),
            text_col("pattern", "pattern"),
            text_col("imputer", "method"),
            col("masks", "n", "d"),
            col("RMSE", "rmse", ".4f"),
            col("/ best scikit-learn", "vs_best", ".3f", "x"),
            col("fit + transform s", "seconds", ".2f"),
            (
                "time / peer's, paired",
                lambda r: ratio_cell(
                    r.get("time_vs_peer"), r.get("time_vs_peer_range")
                ),
            ),
            col("accuracy", "accuracy", ".3f"),
            col("90% coverage (range)", "coverage", ".3f"),
            col("(5-95th pct)", "coverage_pct", ".3f"),
        ],
        per_set,
        "Means over the masks every imputer measured. Time / peer's: VAEImputer's "
        "fit + transform seconds over ExtraTrees' (BayesianRidge's on MNIST) on the "
        "same mask in the same run, median over the masks (lowest-highest). "
        "Accuracy: LogisticRegression "
        "after the imputer, on a 30% test split; coverage for "
        "IterativeImputer(BayesianRidge) is of mask 0.",
    )
    out.mkdir(parents=True, exist_ok=True)
    figure(per_set, out / "imputation.png")
    lines += ["![RMSE relative to the best scikit-learn imputer](imputation.png)", ""]
    write_report(out, "imputation", {"stamps": stamps, "runs": rows}, lines)
    return lines


def load_runs(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """The stamps and rows of saved reports, each run numbered in order; a later
    row replaces an earlier one of the same data, pattern, mask and imputer, and a
    run none of whose rows are left is dropped."""
    stamps, rows = [], []
    for path in paths:
        saved = json.loads(path.read_text())
        # A report of one run holds its "stamp"; a combined one, its "stamps".
        saved_stamps = saved.get("stamps", [saved.get("stamp")])
        for old, s in enumerate(saved_stamps):
            number = len(stamps)
            stamps.append({**s, "run": number})
            rows += [
                {**r, "run": number} for r in saved["runs"] if r.get("run", 0) == old
            ]
    latest = {(r["data"], r["pattern"], r["seed"], r["method"]): r for r in rows}
    rows = [
        r for r in rows if latest[r["data"], r["pattern"], r["seed"], r["method"]] is r
    ]
    kept = [s for s in stamps if any(r["run"] == s["run"] for r in rows)]
    renumber = {s["run"]: number for number, s in enumerate(kept)}
    stamps = [{**s, "run": renumber[s["run"]]} for s in kept]
    rows = [{**r, "run": renumber[r["run"]]} for r in rows]
    return stamps, rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--mixed" in argv:
        from benchmarks import imputation_mixed

        imputation_mixed.main([a for a in argv if a != "--mixed"])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=None, help="default 5 (quick 1)")
    parser.add_argument("--mnist-masks", type=int, default=1)
    parser.add_argument(
        "--mnist-rows", type=int, default=None, help="default 10000 (quick 500)"
    )
    parser.add_argument("--data", nargs="*", default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke test of timing")
    parser.add_argument("--vae-params", type=json.loads, default=None, metavar="JSON")
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--first-mask", type=int, default=0)
    parser.add_argument("--patterns", nargs="+", choices=PATTERNS, default=PATTERNS)
    parser.add_argument("--combine", nargs="+", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    resolve_quick(
        args,
        "imputation",
        masks=(5, 1),
        mnist_rows=(10_000, 500),
        data=(None, list(QUICK_DATA)),
    )
    if args.combine:
        stamps, rows = load_runs(args.combine)
    else:
        s = stamp("benchmarks.imputation", argv)
        started = time.perf_counter()
        rows = run(
            args.data,
            args.masks,
            args.mnist_masks,
            args.mnist_rows,
            args.methods,
            args.first_mask,
            args.patterns,
            extras=not args.quick,
            vae_params=args.vae_params,
        )
        s["seconds"] = time.perf_counter() - started
        stamps = [{**s, "run": 0}]
        rows = [{**r, "run": 0} for r in rows]
        # The measurements are saved before anything summarises them, so that a
        # failing summary never loses hours of runs (the report overwrites this).
        unsummarised = ["# Missing values: rows not yet summarised", ""]
        write_report(
            args.out, "imputation", {"stamps": stamps, "runs": rows}, unsummarised
        )
    compared = {(r["data"], r["pattern"]) for r in rows if r["method"] in SKLEARN}
    if {(r["data"], r["pattern"]) for r in rows} <= compared:
        print("\n".join(report(stamps, rows, args.out)))
        return
    # A run of the VAE alone (--methods) has nothing to compare with: its rows are
    # kept, for --combine with a run of the scikit-learn imputers.
    lines = ["# Missing values: rows to combine", "", stamp_line(stamps[0]), ""]
    lines += ["No scikit-learn imputer ran beside these rows: `--combine` them.", ""]
    write_report(args.out, "imputation", {"stamps": stamps, "runs": rows}, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
