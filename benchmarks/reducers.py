"""When to use a VAE: VAETransformer against PCA and UMAP as a dimensionality reducer.

    python -m benchmarks.reducers [--seeds K] [--mnist-rows N] [--out DIR]

On scikit-learn's digits (as intensities in [0, 1]), wine and breast_cancer
(standardised on the training rows) and ``--mnist-rows`` MNIST training images with
2,000 test images (pixels as they are; left out, saying so, where MNIST is missing),
each split 75/25 (stratified), it fits PCA, UMAP (where ``umap-learn`` is installed:
the ``bench`` extra) and ``VAETransformer`` with its defaults, at 2 and 10 dimensions,
over ``--seeds`` seeds, and measures on the held-out rows:

- the accuracy of a 5-nearest-neighbour classifier and of a logistic regression
  trained on the training rows' embedding (how well the embedding keeps the classes);
- the reconstruction error, root mean squared, of ``inverse_transform(transform(X))``
  (PCA and the VAE; UMAP's inverse is an interpolation, not a decoder, and is left
  out);
- the fit time.

Results go to ``reducers.md``, ``reducers.json`` and ``reducers.png`` in ``--out``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from benchmarks._report import (
    col,
    means_by,
    stamp,
    stamp_line,
    table,
    text_col,
    version,
    write_report,
)
from benchmarks.mnist_data import load_mnist, mnist_directory
from skvae import VAETransformer

DIMS = (2, 10)


def data_sets(mnist_rows: int) -> dict[str, tuple[np.ndarray, ...]]:
    """Each data set's (X_train, X_test, y_train, y_test), as a user would feed it."""
    out = {}
    X, y = datasets.load_digits(return_X_y=True)
    out["digits (8x8, / 16)"] = tuple(
        train_test_split(X / 16, y, test_size=0.25, random_state=0, stratify=y)
    )
    for name in ("wine", "breast_cancer"):
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=0, stratify=y
        )
        scaler = StandardScaler().fit(X_train)
        out[f"{name} (standardised)"] = (
            scaler.transform(X_train),
            scaler.transform(X_test),
            y_train,
            y_test,
        )
    if mnist_directory().is_dir():
        mnist = load_mnist()
        rng = np.random.default_rng(0)
        train = rng.choice(len(mnist.X_train), mnist_rows, replace=False)
        test = rng.choice(len(mnist.X_test), 2000, replace=False)
        out[f"MNIST ({mnist_rows:,} images)"] = (
            mnist.X_train[train].astype(np.float64),
            mnist.X_test[test].astype(np.float64),
            mnist.y_train[train],
            mnist.y_test[test],
        )
    else:
        print("MNIST not found: left out", file=sys.stderr)
    return out


def reducers(dim: int, seed: int) -> dict[str, object]:
    out = {
        "PCA": PCA(dim, random_state=seed),
        "VAETransformer": VAETransformer(dim, random_state=seed),
    }
    try:
        import umap
    except ImportError:
        return out
    out["UMAP"] = umap.UMAP(n_components=dim, random_state=seed, n_jobs=1)
    return out


def measure(reducer, data) -> dict:
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Z_train = reducer.fit_transform(X_train)
    row = {"fit_seconds": time.perf_counter() - start}
    Z_test = reducer.transform(X_test)
    row["knn_accuracy"] = float(
        KNeighborsClassifier(5).fit(Z_train, y_train).score(Z_test, y_test)
    )
    row["linear_accuracy"] = float(
        LogisticRegression(max_iter=5000).fit(Z_train, y_train).score(Z_test, y_test)
    )
    if not type(reducer).__module__.startswith("umap"):
        X_hat = reducer.inverse_transform(Z_test)
        row["reconstruction_rmse"] = float(np.sqrt(np.mean((X_hat - X_test) ** 2)))
    row["warnings"] = sorted(
        {w.category.__name__ for w in caught if "umap" not in w.filename.lower()}
    )
    if isinstance(reducer, VAETransformer):
        row["likelihood"] = reducer.likelihood_
        row["epochs"] = reducer.n_iter_
    return row


def run(seeds: int, mnist_rows: int) -> list[dict]:
    rows = []
    for data_name, data in data_sets(mnist_rows).items():
        for dim in DIMS:
            for seed in range(seeds):
                for name, reducer in reducers(dim, seed).items():
                    if name == "PCA" and seed > 0:
                        continue  # deterministic: one fit is the answer
                    row = {"data": data_name, "dim": dim, "seed": seed, "method": name}
                    row.update(measure(reducer, data))
                    rows.append(row)
                    print(
                        f"{data_name} dim {dim} seed {seed} {name}: kNN "
                        f"{row['knn_accuracy']:.3f}, linear "
                        f"{row['linear_accuracy']:.3f}, "
                        f"{row['fit_seconds']:.1f} s",
                        flush=True,
                    )
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Means over seeds per data set, size and reducer; the VAE with its decoder."""
    entries = means_by(
        rows,
        ("data", "dim", "method"),
        ("knn_accuracy", "linear_accuracy", "reconstruction_rmse", "fit_seconds"),
    )
    decoders = {
        (r["data"], r["dim"]): r["likelihood"] for r in rows if "likelihood" in r
    }
    for entry in entries:
        if entry["method"] == "VAETransformer":
            entry["method"] += f" ({decoders[entry['data'], entry['dim']]})"
    return entries


def figure(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(e["data"] for e in summary))
    methods = list(dict.fromkeys(e["method"].split(" (")[0] for e in summary))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2))
    axes = np.atleast_1d(axes)
    width = 0.8 / len(methods)
    for ax, name in zip(axes, names, strict=True):
        for i, method in enumerate(methods):
            values = [
                next(
                    (
                        e["knn_accuracy"]
                        for e in summary
                        if e["data"] == name
                        and e["dim"] == dim
                        and e["method"].startswith(method)
                    ),
                    np.nan,
                )
                for dim in DIMS
            ]
            ax.bar(np.arange(len(DIMS)) + i * width, values, width, label=method)
        ax.set_xticks(np.arange(len(DIMS)) + width * (len(methods) - 1) / 2)
        ax.set_xticklabels([f"{d} dims" for d in DIMS])
        ax.set_ylim(0, 1)
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel("held-out 5-NN accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(methods), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--mnist-rows", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    s = stamp("benchmarks.reducers", sys.argv[1:] if argv is None else argv)
    rows = run(args.seeds, args.mnist_rows)
    summary = summarise(rows)
    s["umap-learn"] = version("umap-learn")
    lines = ["# When to use a VAE: against PCA and UMAP", "", stamp_line(s), ""]
    lines += [f"umap-learn {s['umap-learn'] or 'not installed'}", ""]
    lines += table(
        [
            text_col("data", "data"),
            text_col("dims", "dim"),
            text_col("reducer", "method"),
            col("5-NN accuracy", "knn_accuracy", ".3f"),
            col("logistic accuracy", "linear_accuracy", ".3f"),
            col("reconstruction RMSE", "reconstruction_rmse", ".3f"),
            col("fit (s)", "fit_seconds", ".2f"),
        ],
        summary,
        f"Held-out rows (25%); means over {args.seeds} seeds (PCA: one fit). "
        "Reconstruction RMSE is in the units of X as fed (intensities in [0, 1] for "
        "the images, standard deviations for the tables). The VAE ran with its "
        "defaults; its decoder is the one likelihood='auto' chose.",
    )
    args.out.mkdir(parents=True, exist_ok=True)
    figure(summary, args.out / "reducers.png")
    lines += ["![5-NN accuracy by reducer](reducers.png)", ""]
    write_report(
        args.out, "reducers", {"stamp": s, "summary": summary, "runs": rows}, lines
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
