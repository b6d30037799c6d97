"""Outlier detection: VAEOutlierDetector against the detectors users reach for.

    python -m benchmarks.outliers [--seeds K] [--mnist-inliers N] [--out DIR]
                                  [--detectors NAME ...] [--quick]
    python -m benchmarks.outliers --threshold [--seeds K] [--out DIR]

The standard setting of the outlier-detection literature, on data available
offline, each with anomalies at 5% of the rows:

- ``breast_cancer``: benign tumours as inliers, malignant ones as anomalies;
- ``wine``: classes 1 and 2 as inliers, class 0 as anomalies;
- ``digits``: every digit but 0 as inliers, 0 as anomalies;
- ``mnist``: ``--mnist-inliers`` images of every digit but 0 as inliers, 0 as
  anomalies (pixels as they are, so the VAE takes its Bernoulli decoder; left out,
  saying so, where MNIST is missing);
- ``manifold``: inliers near a curve in 8 dimensions, anomalies scattered
  uniformly around it;
- ``mixture``: inliers from a mixture of 5 Gaussians in 10 dimensions, anomalies
  uniform over their range.

Two settings: ``unsupervised`` fits each detector on all rows, anomalies included,
and scores the same rows; ``novelty`` fits on 70% of the inliers and scores the
other 30% with the anomalies. Each seed draws the anomalies, the split and the
detectors' seeds anew. The tables are standardised on the rows a detector is fitted
on. Detectors: ``IsolationForest``, ``LocalOutlierFactor`` (``novelty=True`` in the
novelty setting), ``OneClassSVM``, ``EllipticEnvelope``, ``GaussianMixture(5)``'s
``score_samples``, PCA's reconstruction error (as many components as explain 90% of
the variance), pyod's ``VAE`` at its defaults (where pyod is installed: the
``bench`` extra), and ``VAEOutlierDetector`` with its defaults, with
``score_method="elbo"`` (its own fit: the score method ranks the rows of the
support too, and a fitted detector keeps the one it was fitted with), fitted once
on all rows
(``support_fraction=1.0``), and with the transformer's ``latent_dim=2``.
Measured: ROC-AUC and average precision with the anomalies as the positive class,
their medians over the data sets, fit and score seconds, and the largest
difference between two calls scoring the same rows. Every detector is fitted on the
same draw one after the other, so each draw pairs their fit times: the report gives
each VAEOutlierDetector's fit time over pyod's VAE's as the median over all draws
of a setting, with the lowest and highest. Results go to ``outliers.md``, ``.json``
and ``.png`` in ``--out`` (default ``benchmarks/results``).

``--detectors`` runs only the detectors named, and alone runs
``VAEOutlierDetector(second training warm)``, a setting tried for speed: the
trimmed fit's second training continuing the first instead of starting afresh;
``--quick`` is a smoke test of the timing that a change can run before it lands
(one seed, 300 MNIST inliers, pyod's VAE and VAEOutlierDetector fitted twice and
once; a couple of minutes), written to
a new temporary folder unless ``--out`` is given.

``--threshold`` measures what ROC-AUC does not see: the share of inliers and of
anomalies that ``predict`` flags at ``contamination="auto"``, fitted once on all rows
(``support_fraction=1.0``) and at the default 0.9, on the data sets but MNIST; into
``outliers_threshold.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.covariance import EllipticEnvelope
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

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
    version,
    write_report,
)
from benchmarks.mnist_data import load_mnist, mnist_directory
from skvae import VAEOutlierDetector

ANOMALY_SHARE = 0.05
SETTINGS = ("unsupervised", "novelty")


# ---------------------------------------------------------------------- data


def bundled(name: str, anomaly_classes: set) -> tuple[np.ndarray, np.ndarray]:
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return X[~np.isin(y, list(anomaly_classes))], X[np.isin(y, list(anomaly_classes))]


def manifold(rng) -> tuple[np.ndarray, np.ndarray]:
    t = rng.uniform(-2, 2, size=1000)
    curve = np.column_stack(
        [t, t**2 - 1, np.sin(2 * t), np.cos(3 * t), -t, t**3 / 4, np.tanh(t), t / 2]
    )
    inliers = curve + 0.05 * rng.standard_normal(curve.shape)
    low, high = inliers.min(0), inliers.max(0)
    return inliers, rng.uniform(low, high, size=(200, curve.shape[1]))


def mixture(rng) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.uniform(-5, 5, size=(5, 10))
    inliers = centres[rng.integers(5, size=1000)] + rng.standard_normal((1000, 10))
    low, high = inliers.min(0), inliers.max(0)
    return inliers, rng.uniform(low, high, size=(200, 10))


def data_sets(mnist_inliers: int) -> dict[str, object]:
    """Each data set's (inliers, anomaly pool), or a function of a generator."""
    out = {
        "breast_cancer": bundled("breast_cancer", {0}),  # 0 is malignant
        "wine": bundled("wine", {0}),
        "digits": bundled("digits", {0}),
    }
    if mnist_directory().is_dir():
        mnist = load_mnist()
        X, y = mnist.X_train.astype(np.float64), mnist.y_train
        pick = np.random.default_rng(0)
        inliers = X[y != 0][pick.choice((y != 0).sum(), mnist_inliers, replace=False)]
        out["mnist"] = (inliers, X[y == 0])
    else:
        print("MNIST not found: left out", file=sys.stderr)
    out["manifold"] = manifold
    out["mixture"] = mixture
    return out


def draw(source, setting: str, rng) -> tuple[np.ndarray, ...]:
    """(X_fit, X_score, y_score) with y = 1 for anomalies, for one seed."""
    inliers, pool = source(rng) if callable(source) else source
    inliers = inliers[rng.permutation(len(inliers))]
    if setting == "novelty":
        n_fit = int(0.7 * len(inliers))
        fit_rows, test_inliers = inliers[:n_fit], inliers[n_fit:]
    else:
        fit_rows = test_inliers = inliers
    n_anomalies = max(1, round(ANOMALY_SHARE * len(test_inliers) / (1 - ANOMALY_SHARE)))
    anomalies = pool[rng.choice(len(pool), n_anomalies, replace=False)]
    X_score = np.vstack([test_inliers, anomalies])
    y_score = np.r_[np.zeros(len(test_inliers)), np.ones(n_anomalies)]
    X_fit = X_score if setting == "unsupervised" else fit_rows
    return X_fit, X_score, y_score


# ----------------------------------------------------------------- detectors


class Detector:
    """A detector's fit and anomaly score (higher: more anomalous)."""

    def __init__(self, make, score, *, scale=True):
        self.make, self.score, self.scale = make, score, scale

    def run(self, X_fit, X_score, setting, seed):
        """The fitted model, the rows it scored (scaled) and their scores, timed."""
        if self.scale:
            scaler = StandardScaler().fit(X_fit)
            X_fit, X_score = scaler.transform(X_fit), scaler.transform(X_score)
        model = self.make(seed, setting)
        start = time.perf_counter()
        model.fit(X_fit)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = self.score(model, X_score, setting)
        score_seconds = time.perf_counter() - start
        return model, X_score, scores, fit_seconds, score_seconds


def pca_error(model, X, setting):
    return np.square(model.inverse_transform(model.transform(X)) - X).sum(1)


def lof_score(model, X, setting):
    if setting == "unsupervised":  # fit on these rows: their own factors
        return -model.negative_outlier_factor_
    return -model.score_samples(X)


class WarmSecondFit:
    """The trimmed fit with its second training continuing the first, not started
    afresh: a fit once on all rows, then a fit with ``warm_start=True`` and the
    default ``support_fraction`` (the documented warm path, which scores the rows
    with the current VAE and continues training it on the most likely ones). A
    setting tried for speed; opt-in (``--detectors``)."""

    def __init__(self, random_state: int) -> None:
        self.detector = VAEOutlierDetector(
            support_fraction=1.0, random_state=random_state
        )

    def fit(self, X: np.ndarray) -> WarmSecondFit:
        support = VAEOutlierDetector().support_fraction
        self.detector.fit(X)
        self.detector.set_params(support_fraction=support, warm_start=True).fit(X)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.detector.score_samples(X)


def detectors(images: bool) -> dict[str, Detector]:
    """The detectors, fitted on standardised tables or on raw images."""
    scale = not images
    out = {
        "IsolationForest": Detector(
            lambda s, _: IsolationForest(random_state=s),
            lambda m, X, _: -m.score_samples(X),
            scale=scale,
        ),
        "LocalOutlierFactor": Detector(
            lambda s, setting: LocalOutlierFactor(novelty=setting == "novelty"),
            lof_score,
            scale=scale,
        ),
        "OneClassSVM": Detector(
            lambda s, _: OneClassSVM(), lambda m, X, _: -m.score_samples(X), scale=scale
        ),
        "GaussianMixture(5)": Detector(
            lambda s, _: GaussianMixture(5, random_state=s),
            lambda m, X, _: -m.score_samples(X),
            scale=scale,
        ),
        "PCA reconstruction": Detector(
            lambda s, _: PCA(0.9, random_state=s), pca_error, scale=scale
        ),
    }
    if not images:  # MinCovDet in 784 dimensions: hours, and singular
        out["EllipticEnvelope"] = Detector(
            lambda s, _: EllipticEnvelope(random_state=s),
            lambda m, X, _: -m.score_samples(X),
        )
    try:
        from pyod.models.vae import VAE
    except ImportError:
        print("pyod not installed: its VAE left out", file=sys.stderr)
    else:
        # pyod standardises inside (preprocessing=True); verbose only prints.
        out["pyod VAE"] = Detector(
            lambda s, _: VAE(random_state=s, verbose=0),
            lambda m, X, _: m.decision_function(X),
            scale=False,
        )
    # The images go to the VAE as they are (likelihood="auto": Bernoulli).
    out["VAEOutlierDetector"] = Detector(
        lambda s, _: VAEOutlierDetector(random_state=s),
        lambda m, X, _: -m.score_samples(X),
        scale=scale,
    )
    out["VAEOutlierDetector(score_method='elbo')"] = Detector(
        lambda s, _: VAEOutlierDetector(score_method="elbo", random_state=s),
        lambda m, X, _: -m.score_samples(X),
        scale=scale,
    )
    out["VAEOutlierDetector(support_fraction=1.0)"] = Detector(
        lambda s, _: VAEOutlierDetector(support_fraction=1.0, random_state=s),
        lambda m, X, _: -m.score_samples(X),
        scale=scale,
    )
    out["VAEOutlierDetector(latent_dim=2)"] = Detector(
        lambda s, _: VAEOutlierDetector(latent_dim=2, random_state=s),
        lambda m, X, _: -m.score_samples(X),
        scale=scale,
    )
    out[WARM_SECOND_FIT] = Detector(
        lambda s, _: WarmSecondFit(s),
        lambda m, X, _: -m.score_samples(X),
        scale=scale,
    )
    return out


# --------------------------------------------------------------------- run


#: Settings tried, run only when ``--detectors`` names them.
WARM_SECOND_FIT = "VAEOutlierDetector(second training warm)"
OPT_IN = (WARM_SECOND_FIT,)
#: The detectors ``--quick`` runs: the fit times the speed goal reads.
QUICK_DETECTORS = (
    "pyod VAE",
    "VAEOutlierDetector",
    "VAEOutlierDetector(support_fraction=1.0)",
)
#: The detector whose fit time each VAEOutlierDetector's is paired with.
PEER = "pyod VAE"


def run(seeds: int, mnist_inliers: int, only: list[str] | None = None) -> list[dict]:
    rows = []
    for index, (data_name, source) in enumerate(data_sets(mnist_inliers).items()):
        for setting in SETTINGS:
            for seed in range(seeds):
                rng = np.random.default_rng([seed, index])
                X_fit, X_score, y_score = draw(source, setting, rng)
                chosen = detectors(data_name == "mnist")
                chosen = {
                    k: v
                    for k, v in chosen.items()
                    if (k in only if only is not None else k not in OPT_IN)
                }
                for name, detector in chosen.items():
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model, X_scored, scores, fit_s, score_s = detector.run(
                            X_fit, X_score, setting, seed
                        )
                    again = detector.score(model, X_scored, setting)
                    rows.append(
                        {
                            "data": data_name,
                            "setting": setting,
                            "seed": seed,
                            "method": name,
                            "roc_auc": float(roc_auc_score(y_score, scores)),
                            "average_precision": float(
                                average_precision_score(y_score, scores)
                            ),
                            "fit_seconds": fit_s,
                            "score_seconds": score_s,
                            "repeat_difference": float(np.max(np.abs(again - scores))),
                            "n_fit": len(X_fit),
                            "n_anomalies": int(y_score.sum()),
                        }
                    )
                    print(
                        f"{data_name} {setting} seed {seed} {name}: ROC-AUC "
                        f"{rows[-1]['roc_auc']:.3f}, "
                        f"AP {rows[-1]['average_precision']:.3f}, {fit_s:.1f} s",
                        flush=True,
                    )
    return rows


def threshold(seeds: int) -> list[dict]:
    """The shares of inliers and anomalies flagged by ``predict`` ("auto")."""
    rows = []
    for index, (data_name, source) in enumerate(data_sets(0).items()):
        if data_name == "mnist":
            continue
        for setting in SETTINGS:
            for seed in range(seeds):
                rng = np.random.default_rng([seed, index])  # the draws of run()
                X_fit, X_score, y_score = draw(source, setting, rng)
                scaler = StandardScaler().fit(X_fit)
                X_fit, X_score = scaler.transform(X_fit), scaler.transform(X_score)
                for fraction in (1.0, 0.9):
                    model = VAEOutlierDetector(
                        support_fraction=fraction, random_state=seed
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        flagged = model.fit(X_fit).predict(X_score) == -1
                    rows.append(
                        {
                            "data": data_name,
                            "setting": setting,
                            "seed": seed,
                            "support_fraction": fraction,
                            "inliers_flagged": float(flagged[y_score == 0].mean()),
                            "anomalies_flagged": float(flagged[y_score == 1].mean()),
                        }
                    )
                    print(rows[-1], flush=True)
    return rows


def threshold_report(args, s) -> None:
    rows = threshold(args.seeds)
    means = means_by(
        rows,
        ("setting", "data", "support_fraction"),
        ("inliers_flagged", "anomalies_flagged"),
    )
    lines = ["# Outlier detection: what contamination='auto' flags", ""]
    lines += [stamp_line(s), ""]
    lines += table(
        [
            text_col("setting", "setting"),
            text_col("data", "data"),
            col("support_fraction", "support_fraction", ".1f"),
            col("inliers flagged", "inliers_flagged", ".3f"),
            col("anomalies flagged", "anomalies_flagged", ".3f"),
        ],
        means,
        f"Shares of the scored rows that predict flags, means over {args.seeds} seeds "
        "(the draws of the main run; anomalies are 5% of the scored rows).",
    )
    write_report(args.out, "outliers_threshold", {"stamp": s, "runs": rows}, lines)
    print("\n".join(lines))


def fit_ratios(rows: list[dict], peer: str = PEER) -> dict[tuple[str, str], list]:
    """Each method's fit seconds over ``peer``'s on the same draw (data set,
    setting, seed), per (setting, method): the two were fitted one after the other,
    so a slow spell of the machine falls on both."""
    return paired_ratios(
        rows,
        ("data", "setting", "seed"),
        ("setting", "method"),
        "fit_seconds",
        lambda r: peer,
    )


def summarise(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per data set, setting and method: means over seeds; and the medians of
    those over the data sets, per setting and method, with the median over the
    draws of the fit time paired with pyod's VAE's (and its lowest and highest)."""
    per_set = means_by(
        rows,
        ("setting", "data", "method"),
        ("roc_auc", "average_precision", "fit_seconds", "score_seconds"),
    )
    repeat = {}
    for r in rows:
        key = (r["setting"], r["method"])
        repeat[key] = max(repeat.get(key, 0.0), r["repeat_difference"])
    ratios = fit_ratios(rows)
    medians = []
    for setting in SETTINGS:
        methods = dict.fromkeys(e["method"] for e in per_set if e["setting"] == setting)
        for method in methods:
            sel = [
                e for e in per_set if (e["setting"], e["method"]) == (setting, method)
            ]
            medians.append(
                {
                    "setting": setting,
                    "method": method,
                    "n_sets": len(sel),
                    "median_roc_auc": float(np.median([e["roc_auc"] for e in sel])),
                    "median_average_precision": float(
                        np.median([e["average_precision"] for e in sel])
                    ),
                    "total_fit_seconds": float(sum(e["fit_seconds"] for e in sel)),
                    "repeat_difference": repeat[setting, method],
                }
            )
            paired = ratios.get((setting, method))
            if paired and method.startswith("VAEOutlierDetector"):
                medians[-1]["fit_vs_peer"] = float(np.median(paired))
                medians[-1]["fit_vs_peer_range"] = [min(paired), max(paired)]
    return per_set, medians


def figure(per_set: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    # tab20: one colour per method, none repeated.
    fig, axes = grouped_bars(per_set, "setting", SETTINGS, "roc_auc", "tab20")
    for ax in axes:
        ax.set_ylim(0.3, 1.0)
    axes[0].set_ylabel("ROC-AUC (mean over seeds)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=5, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def peer_cell(r: dict) -> str:
    """A VAE's fit time over pyod's, median over draws (lowest-highest)."""
    return ratio_cell(r.get("fit_vs_peer"), r.get("fit_vs_peer_range"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="default 5 (quick 1)")
    parser.add_argument(
        "--mnist-inliers", type=int, default=None, help="default 3000 (quick 300)"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--detectors", nargs="+", default=None, metavar="NAME")
    parser.add_argument("--quick", action="store_true", help="a smoke test of timing")
    parser.add_argument(
        "--threshold",
        action="store_true",
        help="measure the shares predict flags at contamination='auto'",
    )
    args = parser.parse_args(argv)
    resolve_quick(
        args,
        "outliers",
        seeds=(5, 1),
        mnist_inliers=(3000, 300),
        detectors=(None, list(QUICK_DETECTORS)),
    )
    known = set(detectors(images=False)) | set(detectors(images=True))
    unknown = sorted(set(args.detectors or ()) - known)
    if unknown:
        parser.error(f"unknown detectors {unknown}; known: {sorted(known)}")
    s = stamp("benchmarks.outliers", sys.argv[1:] if argv is None else argv)
    if args.threshold:
        threshold_report(args, s)
        return
    s["pyod"] = version("pyod")
    rows = run(args.seeds, args.mnist_inliers, args.detectors)
    per_set, medians = summarise(rows)
    lines = ["# Outlier detection: VAEOutlierDetector against the usual detectors", ""]
    lines += [stamp_line(s), "", f"pyod {s['pyod'] or 'not installed'}", ""]
    lines += table(
        [
            text_col("setting", "setting"),
            text_col("detector", "method"),
            text_col("data sets", "n_sets"),
            col("median ROC-AUC", "median_roc_auc", ".3f"),
            col("median average precision", "median_average_precision", ".3f"),
            col("fit (s), all data sets", "total_fit_seconds", ".1f"),
            ("fit / pyod VAE's, paired", peer_cell),
            col("largest change between two calls", "repeat_difference", ".2g"),
        ],
        medians,
        f"Medians over the data sets of the mean over {args.seeds} seeds; anomalies "
        f"are {ANOMALY_SHARE:.0%} of the scored rows and the positive class. "
        "Fit / pyod VAE's: each VAEOutlierDetector's fit seconds over pyod's VAE's "
        "on the same draw (fitted one after the other), the median over every "
        "draw of the setting (lowest and highest in brackets).",
    )
    lines += table(
        [
            text_col("setting", "setting"),
            text_col("data", "data"),
            text_col("detector", "method"),
            col("ROC-AUC", "roc_auc", ".3f"),
            col("average precision", "average_precision", ".3f"),
            col("fit (s)", "fit_seconds", ".2f"),
            col("score (s)", "score_seconds", ".2f"),
        ],
        per_set,
        f"Per data set: means over {args.seeds} seeds.",
    )
    args.out.mkdir(parents=True, exist_ok=True)
    figure(per_set, args.out / "outliers.png")
    lines += ["![ROC-AUC per data set and detector](outliers.png)", ""]
    payload = {"stamp": s, "per_data_set": per_set, "medians": medians, "runs": rows}
    write_report(args.out, "outliers", payload, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
