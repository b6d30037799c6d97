"""The defaults' decisions, measured: stopping rule, early stopping, decoder, scale.

    python -m benchmarks.defaults stopping [--label NAME] [--tol T] [--datasets ...]
    python -m benchmarks.defaults early-stopping
    python -m benchmarks.defaults decoder
    python -m benchmarks.defaults scale

Every run fits ``VAETransformer`` with its defaults but for what the section varies,
on scikit-learn's bundled data sets (iris, wine, breast_cancer, diabetes, digits;
standardised on the training rows, 75/25 split, stratified for classes) and 5,000
MNIST training images (2,000 test images; pixels as they are), at latent sizes 2 and
10, over ``--seeds`` seeds. It records the epochs run, whether the fit converged (no
``ConvergenceWarning``), the held-out ELBO per row, and the held-out score of a
linear model on the latent means (``LogisticRegression``'s accuracy; for diabetes,
a regression, ``Ridge``'s R^2).

- ``stopping``: the default stopping rule. ``--label`` names the run (``before`` for
  the code before a change, ``after`` for the code after it; run from a checkout of
  each), so that one report holds both side by side. Only the public API is used, so
  the same script measures either code.
- ``early-stopping``: ``early_stopping=True`` against ``False`` on the bundled data
  and on subsets of the digits, by the number of validation rows.
- ``decoder``: Gaussian against Bernoulli decoders on data in [0, 1] (MNIST, the
  digits as intensities, wine and breast_cancer min-max scaled): accuracy, held-out
  reconstruction error against PCA's, and how the default choice falls.
- ``scale``: the Gaussian decoder on breast_cancer and wine as they come, and
  standardised then multiplied by 0.01 ... 1000 or shifted by 3 ... 100.

Results go to ``defaults_<section>.md`` and ``.json`` in ``--out`` (default
``benchmarks/results``); a ``stopping`` run adds its label to the rows already there.
``--report`` writes a section's Markdown again from its JSON, fitting nothing.
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
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from benchmarks._report import (
    col,
    means_by,
    stamp,
    stamp_line,
    table,
    text_col,
    write_report,
)
from benchmarks.mnist_data import load_mnist, mnist_directory
from skvae import VAETransformer

TABULAR = ("iris", "wine", "breast_cancer", "diabetes", "digits")
REGRESSION = {"diabetes"}
MNIST_ROWS = (5000, 2000)


def split(name: str) -> tuple[np.ndarray, ...]:
    """A bundled data set's 75/25 split as it comes: X and y, train and test."""
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    stratify = None if name in REGRESSION else y
    return tuple(
        train_test_split(X, y, test_size=0.25, random_state=0, stratify=stratify)
    )


def standardised(name: str) -> tuple[np.ndarray, ...]:
    X_train, X_test, y_train, y_test = split(name)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def mnist_subset() -> tuple[np.ndarray, ...]:
    """5,000 training and 2,000 test images drawn at random (seed 0), as float64."""
    data = load_mnist()
    rng = np.random.default_rng(0)
    train = rng.choice(len(data.X_train), MNIST_ROWS[0], replace=False)
    test = rng.choice(len(data.X_test), MNIST_ROWS[1], replace=False)
    return (
        data.X_train[train].astype(np.float64),
        data.X_test[test].astype(np.float64),
        data.y_train[train],
        data.y_test[test],
    )


def downstream(Z_train, Z_test, y_train, y_test, regression: bool) -> float:
    """Held-out accuracy (R^2 for a regression) of a linear model on the latents."""
    model = Ridge() if regression else LogisticRegression(max_iter=2000)
    return float(model.fit(Z_train, y_train).score(Z_test, y_test))


def fit(params: dict, X_train: np.ndarray) -> tuple[VAETransformer, dict]:
    """Fit a VAETransformer; its epochs, convergence, seconds and first loss."""
    vae = VAETransformer(**params)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae.fit(X_train)
    seconds = time.perf_counter() - start
    messages = [str(w.message) for w in caught]
    return vae, {
        "epochs": int(vae.n_iter_),
        "converged": not any(
            issubclass(w.category, ConvergenceWarning) for w in caught
        ),
        "warnings": messages,
        "fit_seconds": seconds,
        "first_loss": float(vae.loss_curve_[0]),
    }


def evaluate(vae, data, regression: bool) -> dict:
    X_train, X_test, y_train, y_test = data
    Z_train, Z_test = vae.transform(X_train), vae.transform(X_test)
    return {
        "test_elbo": float(vae.score(X_test)),
        "downstream": downstream(Z_train, Z_test, y_train, y_test, regression),
        "latent_std": float(Z_train.std(0).mean()),
    }


def cases(names: list[str]) -> list[tuple[str, str, tuple]]:
    """(data set, likelihood, data) for the names asked for; MNIST once per decoder."""
    out = []
    for name in names:
        if name == "mnist":
            if not mnist_directory().is_dir():
                print("MNIST not found: left out", file=sys.stderr)
                continue
            data = mnist_subset()
            out += [("mnist", lik, data) for lik in ("gaussian", "bernoulli")]
        else:
            out.append((name, "gaussian", standardised(name)))
    return out


# ------------------------------------------------------------------ stopping


def run_stopping(args) -> None:
    path = args.out / "defaults_stopping.json"
    previous = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    rows = []
    for name, likelihood, data in cases(args.datasets):
        n_features = data[0].shape[1]
        for latent_dim in (2, 10):
            for seed in range(args.seeds):
                params = dict(
                    latent_dim=latent_dim, likelihood=likelihood, random_state=seed
                )
                if args.tol is not None:
                    params["tol"] = args.tol
                vae, row = fit(params, data[0])
                row.update(evaluate(vae, data, name in REGRESSION))
                row.update(
                    data=name,
                    likelihood=likelihood,
                    n_features=n_features,
                    latent_dim=latent_dim,
                    seed=seed,
                )
                del row["warnings"]
                rows.append(row)
                print(
                    f"{args.label}: {name} {likelihood} latent {latent_dim} seed "
                    f"{seed}: {row['epochs']} epochs, converged {row['converged']}, "
                    f"ELBO {row['test_elbo']:.2f}, downstream {row['downstream']:.3f}, "
                    f"{row['fit_seconds']:.1f} s",
                    flush=True,
                )
    previous["runs"][args.label] = {"stamp": args.stamp, "rows": rows}
    lines = stopping_report(previous["runs"])
    write_report(args.out, "defaults_stopping", previous, lines)
    print("\n".join(lines))


def _group(rows: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["likelihood"], r["latent_dim"]), []).append(r)
    return groups


def stopping_report(runs: dict) -> list[str]:
    labels = list(runs)
    lines = ["# The stopping rule, before and after", ""]
    for label in labels:
        lines.append(f"- {label}: {stamp_line(runs[label]['stamp'])}")
    lines.append("")
    summary = []
    for label in labels:
        rows = runs[label]["rows"]
        entry = {
            "label": label,
            "converged": f"{sum(r['converged'] for r in rows)}/{len(rows)}",
            "median_epochs": float(np.median([r["epochs"] for r in rows])),
            "total_epochs": int(np.sum([r["epochs"] for r in rows])),
        }
        base = _paired(runs, labels[0], label)
        if base:
            entry["elbo_change"] = float(np.mean([b for b, _ in base]))
            entry["downstream_change"] = float(np.mean([d for _, d in base]))
            entry["worst_downstream_change"] = float(min(d for _, d in base))
        summary.append(entry)
    lines += table(
        [
            text_col("run", "label"),
            text_col("fits converged", "converged"),
            col("median epochs", "median_epochs", ".0f"),
            col(
                f"held-out ELBO per feature, change from {labels[0]}",
                "elbo_change",
                "+.4f",
            ),
            col("downstream score, mean change", "downstream_change", "+.4f"),
            col("worst change", "worst_downstream_change", "+.3f"),
            col("epochs in all", "total_epochs", ".0f"),
        ],
        summary,
        "All fits: data set x decoder x latent size x seed. Changes are means over "
        f"the same fits in the first run ({labels[0]}); the ELBO's change is divided "
        "by the number of features, so that data sets weigh alike. Epochs measure "
        "the cost (the runs' seconds are in the JSON, taken beside other work).",
    )
    detail = []
    for key in _group(runs[labels[0]]["rows"]):
        entry = {"data": key[0], "likelihood": key[1], "latent_dim": key[2]}
        for label in labels:
            sel = _group(runs[label]["rows"]).get(key, [])
            if not sel:
                continue
            entry[f"{label}_conv"] = f"{sum(r['converged'] for r in sel)}/{len(sel)}"
            entry[f"{label}_epochs"] = float(np.mean([r["epochs"] for r in sel]))
            entry[f"{label}_elbo"] = float(np.mean([r["test_elbo"] for r in sel]))
            entry[f"{label}_down"] = float(np.mean([r["downstream"] for r in sel]))
        detail.append(entry)
    columns = [
        text_col("data", "data"),
        text_col("decoder", "likelihood"),
        text_col("latent", "latent_dim"),
    ]
    for label in labels:
        columns += [
            (f"{label}: converged", lambda r, k=f"{label}_conv": r.get(k, "-")),
            col(f"{label}: epochs", f"{label}_epochs", ".0f"),
            col(f"{label}: ELBO", f"{label}_elbo", ".2f"),
            col(f"{label}: downstream", f"{label}_down", ".3f"),
        ]
    lines += table(
        columns,
        detail,
        "Per data set, decoder and latent size: means over seeds. Downstream: "
        "LogisticRegression's held-out accuracy on the latent means (Ridge's R^2 for "
        "diabetes).",
    )
    return lines


def _paired(runs: dict, base: str, label: str) -> list[tuple[float, float]]:
    """(ELBO change per feature, downstream change) of each fit also in ``base``."""
    key = ("data", "likelihood", "latent_dim", "seed")
    before = {tuple(r[k] for k in key): r for r in runs[base]["rows"]}
    out = []
    for r in runs[label]["rows"]:
        b = before.get(tuple(r[k] for k in key))
        if b is not None:
            out.append(
                (
                    (r["test_elbo"] - b["test_elbo"]) / r["n_features"],
                    r["downstream"] - b["downstream"],
                )
            )
    return out


# ------------------------------------------------------------ early stopping


def run_early_stopping(args) -> list[dict]:
    rows = []
    sets = [(name, standardised(name)) for name in TABULAR]
    digits = standardised("digits")
    rng = np.random.default_rng(0)
    for n in (100, 200, 400, 800):
        keep = rng.choice(len(digits[0]), n, replace=False)
        sets.append(
            (
                f"digits, {n} rows",
                (digits[0][keep], digits[1], digits[2][keep], digits[3]),
            )
        )
    for name, data in sets:
        regression = name in REGRESSION
        for latent_dim in (2, 10):
            for seed in range(args.seeds):
                for early in (False, True):
                    params = dict(
                        latent_dim=latent_dim, early_stopping=early, random_state=seed
                    )
                    vae, row = fit(params, data[0])
                    row.update(evaluate(vae, data, regression))
                    row.update(
                        data=name,
                        latent_dim=latent_dim,
                        seed=seed,
                        early_stopping=early,
                        n_validation=int(np.ceil(0.1 * len(data[0]))) if early else 0,
                    )
                    rows.append(row)
                    print(
                        f"{name} latent {latent_dim} seed {seed} early {early}: "
                        f"{row['epochs']} epochs, downstream {row['downstream']:.3f}",
                        flush=True,
                    )
    return rows


def report_early_stopping(args, rows: list[dict]) -> None:
    summary = means_by(
        rows,
        ("data", "latent_dim", "early_stopping", "n_validation"),
        ("epochs", "downstream", "test_elbo"),
        low=("downstream",),
    )
    lines = table(
        [
            text_col("data", "data"),
            text_col("latent", "latent_dim"),
            text_col("early_stopping", "early_stopping"),
            text_col("validation rows", "n_validation"),
            col("epochs", "epochs", ".0f"),
            col("downstream", "downstream", ".3f"),
            col("worst seed", "downstream_min", ".3f"),
            col("held-out ELBO", "test_elbo", ".2f"),
        ],
        summary,
        f"Means over {args.seeds} seeds; validation_fraction=0.1. Downstream: "
        "LogisticRegression's held-out accuracy (Ridge's R^2 for diabetes).",
    )
    write_section(
        args,
        "defaults_early_stopping",
        "Early stopping, by the number of validation rows",
        summary,
        rows,
        lines,
    )


# ------------------------------------------------------------------ decoder


def unit_interval_sets() -> list[tuple[str, tuple]]:
    """Data in [0, 1]: MNIST's pixels, the digits as intensities, min-max tables."""
    sets = []
    if mnist_directory().is_dir():
        sets.append(("mnist", mnist_subset()))
    X_train, X_test, y_train, y_test = split("digits")
    sets.append(("digits / 16", (X_train / 16, X_test / 16, y_train, y_test)))
    for name in ("wine", "breast_cancer"):
        X_train, X_test, y_train, y_test = split(name)
        scaler = MinMaxScaler().fit(X_train)
        sets.append(
            (
                f"{name}, min-max",
                (
                    scaler.transform(X_train),
                    np.clip(scaler.transform(X_test), 0, 1),
                    y_train,
                    y_test,
                ),
            )
        )
    return sets


def run_decoder(args) -> list[dict]:
    rows = []
    for name, data in unit_interval_sets():
        X_train, X_test, y_train, y_test = data
        for latent_dim in (2, 10):
            pca = PCA(latent_dim).fit(X_train)
            pca_error = rmse(pca.inverse_transform(pca.transform(X_test)), X_test)
            pca_down = downstream(
                pca.transform(X_train), pca.transform(X_test), y_train, y_test, False
            )
            for likelihood in ("gaussian", "bernoulli"):
                for seed in range(args.seeds):
                    params = dict(
                        latent_dim=latent_dim, likelihood=likelihood, random_state=seed
                    )
                    vae, row = fit(params, X_train)
                    row.update(evaluate(vae, data, False))
                    error = rmse(vae.inverse_transform(vae.transform(X_test)), X_test)
                    row.update(
                        data=name,
                        latent_dim=latent_dim,
                        likelihood=likelihood,
                        seed=seed,
                        reconstruction_vs_pca=error / pca_error,
                        pca_downstream=pca_down,
                    )
                    rows.append(row)
                    print(
                        f"{name} latent {latent_dim} {likelihood} seed {seed}: "
                        f"accuracy {row['downstream']:.3f} (PCA {pca_down:.3f}), "
                        f"reconstruction {row['reconstruction_vs_pca']:.2f}x PCA's, "
                        f"{row['fit_seconds']:.1f} s",
                        flush=True,
                    )
    return rows


def report_decoder(args, rows: list[dict]) -> None:
    summary = means_by(
        rows,
        ("data", "latent_dim", "likelihood"),
        (
            "downstream",
            "pca_downstream",
            "reconstruction_vs_pca",
            "fit_seconds",
            "epochs",
        ),
    )
    lines = table(
        [
            text_col("data", "data"),
            text_col("latent", "latent_dim"),
            text_col("decoder", "likelihood"),
            col("accuracy", "downstream", ".3f"),
            col("PCA's accuracy", "pca_downstream", ".3f"),
            col("reconstruction RMSE / PCA's", "reconstruction_vs_pca", ".2f", "x"),
            col("epochs", "epochs", ".0f"),
            col("fit (s)", "fit_seconds", ".1f"),
        ],
        summary,
        f"Means over {args.seeds} seeds. Accuracy: LogisticRegression on the latent "
        "means, held out. Reconstruction: root mean squared error of "
        "inverse_transform(transform(X_test)) against X_test, over PCA's with as many "
        "components.",
    )
    write_section(
        args, "defaults_decoder", "Decoders for data in [0, 1]", summary, rows, lines
    )


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


# -------------------------------------------------------------------- scale


def run_scale(args) -> list[dict]:
    rows = []
    for name in ("wine", "breast_cancer"):
        raw = split(name)
        std = standardised(name)
        variants = [("as they come", raw)]
        variants += [
            (f"standardised x {c:g}", (std[0] * c, std[1] * c, std[2], std[3]))
            for c in (0.01, 0.03, 0.1, 1, 3, 10, 100, 1000)
        ]
        variants += [
            (f"standardised + {c:g}", (std[0] + c, std[1] + c, std[2], std[3]))
            for c in (3, 10, 100)
        ]
        for variant, data in variants:
            for latent_dim in (2, 10):
                for seed in range(args.seeds):
                    params = dict(latent_dim=latent_dim, random_state=seed)
                    vae, row = fit(params, data[0])
                    row.update(evaluate(vae, data, False))
                    row.update(
                        data=name,
                        variant=variant,
                        latent_dim=latent_dim,
                        seed=seed,
                        max_std=float(data[0].std(0).max()),
                        max_abs_mean=float(np.abs(data[0].mean(0)).max()),
                    )
                    rows.append(row)
                    print(
                        f"{name} {variant} latent {latent_dim} seed {seed}: accuracy "
                        f"{row['downstream']:.3f}, first loss {row['first_loss']:.4g}, "
                        f"scale warning {_scale_warned(row)}",
                        flush=True,
                    )
    return rows


def report_scale(args, rows: list[dict]) -> None:
    for row in rows:
        row["scale_warned"] = _scale_warned(row)
    summary = means_by(
        rows,
        ("data", "variant", "latent_dim"),
        (
            "max_std",
            "max_abs_mean",
            "downstream",
            "first_loss",
            "latent_std",
            "scale_warned",
        ),
    )
    lines = table(
        [
            text_col("data", "data"),
            text_col("X", "variant"),
            text_col("latent", "latent_dim"),
            col("largest column std", "max_std", ".3g"),
            col("largest column |mean|", "max_abs_mean", ".3g"),
            col("accuracy", "downstream", ".3f"),
            col("first epoch's loss", "first_loss", ".4g"),
            col("latent means' std", "latent_std", ".3f"),
            col("share of fits warned of the scale", "scale_warned", ".2f"),
        ],
        summary,
        f"Means over {args.seeds} seeds; Gaussian decoder, defaults otherwise. "
        "Accuracy: LogisticRegression on the latent means, held out.",
    )
    write_section(
        args,
        "defaults_scale",
        "Feature scale and the Gaussian decoder",
        summary,
        rows,
        lines,
    )


def write_section(args, name: str, title: str, summary, rows, body: list[str]) -> None:
    """Write a section's report: its title, stamp and ``body``; JSON of its runs."""
    lines = [f"# {title}", "", stamp_line(args.stamp), "", *body]
    payload = {"stamp": args.stamp, "summary": summary, "runs": rows}
    write_report(args.out, name, payload, lines)
    print("\n".join(lines))


def _scale_warned(row: dict) -> bool:
    return any("far from unit scale" in message for message in row["warnings"])


#: Each section: what fits its runs (returning them) and what reports them;
#: ``stopping`` keeps one report of every labelled run, so it does both.
SECTIONS = {
    "stopping": (run_stopping, None),
    "early-stopping": (run_early_stopping, report_early_stopping),
    "decoder": (run_decoder, report_decoder),
    "scale": (run_scale, report_scale),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=list(SECTIONS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--label", default="after")
    parser.add_argument("--tol", type=float, default=None)
    parser.add_argument("--datasets", nargs="+", default=[*TABULAR, "mnist"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--report",
        action="store_true",
        help="only write the report again from the section's JSON in --out",
    )
    args = parser.parse_args(argv)
    args.stamp = stamp("benchmarks.defaults", sys.argv[1:] if argv is None else argv)
    run, report = SECTIONS[args.section]
    if report is None:
        run(args)
    elif args.report:
        name = "defaults_" + args.section.replace("-", "_")
        saved = json.loads((args.out / f"{name}.json").read_text())
        args.stamp = saved["stamp"]
        args.seeds = len({r["seed"] for r in saved["runs"]})
        report(args, saved["runs"])
    else:
        report(args, run(args))


if __name__ == "__main__":
    main()
