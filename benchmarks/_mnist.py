"""What the MNIST experiments share: scoring data, fits, scores and figures."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.mnist_data import Dataset
from skvae import VAETransformer

#: Draws per row behind ``VAETransformer.score`` (its docstring's 128), used by the
#: plain loop's ELBO so that both are scored alike.
SCORE_DRAWS = 128
#: The latent activity threshold of Burda et al. (2016): a unit is active when the
#: variance over the data of its posterior mean exceeds 0.01.
ACTIVE_UNIT_THRESHOLD = 1e-2


def binarize(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """One fixed draw of pixel ~ Bernoulli(intensity), as float32."""
    rng = np.random.default_rng(seed)
    return (rng.random(X.shape, dtype=np.float32) < X).astype(np.float32)


def scoring_data(data: Dataset, likelihood: str) -> np.ndarray:
    """The test rows a model with ``likelihood`` is scored on."""
    return binarize(data.X_test) if likelihood == "bernoulli" else data.X_test


def fit_quietly(est: VAETransformer, X: np.ndarray) -> tuple[float, list[str]]:
    """Fit ``est`` on ``X``; return the seconds it took and its warnings' texts."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X)
    return time.perf_counter() - start, [str(w.message) for w in caught]


def probe_accuracy(Z_train, y_train, Z_test, y_test) -> float:
    """Held-out accuracy of a logistic regression on standardised features."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(clf.fit(Z_train, y_train).score(Z_test, y_test))


def pca_accuracy(data: Dataset, n_components: int) -> float:
    """:func:`probe_accuracy` on PCA's components, for comparison."""
    pca = PCA(n_components=n_components, random_state=0).fit(data.X_train)
    return probe_accuracy(
        pca.transform(data.X_train),
        data.y_train,
        pca.transform(data.X_test),
        data.y_test,
    )


def active_units(est: VAETransformer, X: np.ndarray) -> int:
    """Latent dimensions whose posterior mean varies over ``X`` (Burda et al.)."""
    return int((est.transform(X).var(axis=0) > ACTIVE_UNIT_THRESHOLD).sum())


def score_test_rows(
    est: VAETransformer, X_score: np.ndarray, iwae_samples: int, iwae_rows: int
) -> dict:
    """Test ELBO on all of ``X_score``; log p(x) and the ELBO on its first rows.

    Prints what each phase costs before it starts: scores are row-independent, so
    the first rows time the rest.
    """
    start = time.perf_counter()
    print(f"  scoring: ELBO of {len(X_score):,} rows", flush=True)
    elbo = est.score_samples(X_score)
    X_iwae = X_score[:iwae_rows]
    head = min(len(X_iwae), 20)
    timer = time.perf_counter()
    first = est.log_marginal_likelihood(X_iwae[:head], n_samples=iwae_samples)
    per_row = (time.perf_counter() - timer) / head
    print(
        f"  scoring: log p(x) of {len(X_iwae):,} rows with K={iwae_samples}, about "
        f"{per_row * (len(X_iwae) - head):.0f} s left",
        flush=True,
    )
    log_px = first
    if len(X_iwae) > head:
        rest = est.log_marginal_likelihood(X_iwae[head:], n_samples=iwae_samples)
        log_px = np.concatenate([first, rest])
    return {
        "test_elbo": float(elbo.mean()),
        "test_elbo_sem": float(elbo.std() / np.sqrt(len(elbo))),
        "test_log_likelihood": float(log_px.mean()),
        "iwae_samples": iwae_samples,
        "iwae_rows": len(log_px),
        "test_elbo_iwae_rows": float(elbo[: len(log_px)].mean()),
        "score_seconds": time.perf_counter() - start,
    }


def most_active_dims(est: VAETransformer, X: np.ndarray) -> tuple[int, int]:
    """The two latent dimensions that carry the most KL over ``X``."""
    order = np.argsort(est.kl_per_dimension(X))[::-1]
    return tuple(sorted(int(i) for i in order[:2]))


def save_figures(
    est: VAETransformer,
    data: Dataset,
    out: Path,
    name: str,
    title: str,
    grids: dict[str, np.ndarray | None],
) -> dict[str, str]:
    """Loss curves, reconstructions, decoded latent grids and latent means, as PNGs.

    ``grids`` maps a panel title to the latent values its grid sweeps (None: the
    prior's quantiles, as the paper's Figure 4); each is one panel of the grid figure.
    Returns the files' names by kind.
    """
    import matplotlib.pyplot as plt

    from skvae.plotting import (
        LatentManifoldDisplay,
        LatentSpaceDisplay,
        LossCurveDisplay,
        ReconstructionDisplay,
    )

    shape = data.image_shape
    dims = most_active_dims(est, data.X_test)
    # One test image of each digit, the first of its class, in order 0-9.
    picks = [int(np.flatnonzero(data.y_test == c)[0]) for c in np.unique(data.y_test)]
    figures = {}

    def save(kind: str, figure, caption: str) -> None:
        figure.suptitle(f"{title}: {caption}")
        path = out / f"{data.prefix}_{name}_{kind}.png"
        figure.savefig(path, dpi=80, bbox_inches="tight")
        plt.close(figure)
        figures[kind] = path.name

    _, axes = plt.subplots(1, 2, figsize=(11, 4))
    disp = LossCurveDisplay.from_estimator(est, ax=axes)
    save("loss", disp.figure_, "loss per epoch")
    disp = ReconstructionDisplay.from_estimator(
        est, data.X_test[picks], n_examples=len(picks), image_shape=shape
    )
    save("reconstruction", disp.figure_, "test digits (top) and reconstructions")
    fig, axes = plt.subplots(1, len(grids), figsize=(7 * len(grids), 7.5))
    for ax, (panel, grid) in zip(np.atleast_1d(axes), grids.items(), strict=True):
        LatentManifoldDisplay.from_estimator(
            est,
            image_shape=shape,
            dims=dims,
            grid=grid,
            ax=ax,
            vmin=0.0,  # decoded means on the data's grey scale
            vmax=1.0,
        )
        ax.set_title(panel)
    save("manifold", fig, f"decoded grids over z[{dims[0]}], z[{dims[1]}]")
    _, ax = plt.subplots(figsize=(8, 7))
    disp = LatentSpaceDisplay.from_estimator(
        est, data.X_test, data.y_test, dims=dims, ax=ax
    )
    save(
        "latent", disp.figure_, f"latent means of the {len(data.X_test):,} test images"
    )
    return figures
