"""The Display objects of skvae.plotting: what they draw, and their errors."""

import importlib.util
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skvae.plotting
from skvae import VAETransformer
from skvae.plotting import (
    LatentManifoldDisplay,
    LatentSpaceDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")

DIGITS = load_digits()
X = DIGITS.data[:300] / 16.0  # intensities in [0, 1]
Y = DIGITS.target[:300]
FAST = dict(hidden_layer_sizes=(32,), max_iter=3, random_state=0)


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


@pytest.fixture(scope="module")
def vae():
    return fit_quietly(VAETransformer(latent_dim=2, **FAST), X)


@pytest.fixture(scope="module")
def vae3():
    """latent_dim=3, a validation curve, and beta != 1."""
    return fit_quietly(
        VAETransformer(latent_dim=3, early_stopping=True, beta=0.5, **FAST), X
    )


@pytest.fixture(scope="module")
def vae1():
    return fit_quietly(VAETransformer(latent_dim=1, **FAST), X)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def n_images(figure):
    return sum(len(axis.images) for axis in figure.axes)


def legend_texts(axis):
    return [text.get_text() for text in axis.get_legend().get_texts()]


# ------------------------------------------------------------------- loss curves


def test_loss_curve_lines_are_the_estimator_curves(vae):
    disp = LossCurveDisplay.from_estimator(vae)

    assert isinstance(disp.ax_, np.ndarray) and disp.ax_.shape == (2,)
    assert disp.figure_ is disp.ax_[0].figure
    assert len(disp.figure_.axes) == 2
    ax_loss, ax_kl = disp.ax_
    assert_array_equal(disp.line_loss_.get_xdata(), [1, 2, 3])
    assert_allclose(disp.line_loss_.get_ydata(), vae.loss_curve_)
    assert_allclose(disp.line_reconstruction_.get_ydata(), vae.reconstruction_curve_)
    assert_allclose(disp.line_kl_.get_ydata(), vae.kl_curve_)
    assert disp.line_validation_ is None
    # KL alone on the right, at its own scale.
    assert ax_kl.get_lines() == [disp.line_kl_]
    assert disp.line_loss_ in ax_loss.get_lines()
    assert legend_texts(ax_loss) == [
        "training loss (-ELBO)",
        "reconstruction (-E_q[log p(x|z)])",
    ]
    for axis in disp.ax_:
        assert axis.get_xlabel() == "epoch"
        assert axis.get_ylabel() == "nats per row"


def test_loss_curve_validation_and_beta_label(vae3):
    disp = LossCurveDisplay.from_estimator(vae3)

    assert_allclose(
        disp.line_validation_.get_ydata(), -np.asarray(vae3.validation_scores_)
    )
    assert_array_equal(
        disp.line_validation_.get_xdata(), np.arange(1, vae3.n_iter_ + 1)
    )
    assert legend_texts(disp.ax_[0]) == [
        "training loss (reconstruction + beta*KL)",
        "reconstruction (-E_q[log p(x|z)])",
        "validation -ELBO",
    ]


def test_loss_curve_draws_on_given_axes(vae):
    fig, axes = plt.subplots(1, 2)
    disp = LossCurveDisplay.from_estimator(vae, ax=axes)

    assert disp.figure_ is fig
    assert disp.ax_[0] is axes[0] and disp.ax_[1] is axes[1]
    assert len(fig.axes) == 2
    assert disp.line_kl_ in axes[1].get_lines()


def test_loss_curve_wrong_number_of_axes(vae):
    _, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="needs 2 Axes in `ax`; got 3"):
        LossCurveDisplay.from_estimator(vae, ax=axes)


# --------------------------------------------------------------- reconstructions


def test_reconstruction_images(vae):
    inputs = X[:4] * 0.5 + 0.1  # a range other than [0, 1]
    disp = ReconstructionDisplay.from_estimator(
        vae, inputs, n_examples=4, image_shape=(8, 8)
    )
    expected = vae.inverse_transform(vae.transform(inputs))

    assert disp.ax_.shape == (2, 4)
    assert disp.figure_ is disp.ax_[0, 0].figure
    assert len(disp.figure_.axes) == 8
    assert n_images(disp.figure_) == 8
    assert disp.images_.shape == (2, 4) and disp.lines_ is None
    for i in range(4):
        assert disp.images_[0, i] in disp.ax_[0, i].images
        assert_allclose(disp.images_[0, i].get_array(), inputs[i].reshape(8, 8))
        assert_allclose(disp.images_[1, i].get_array(), expected[i].reshape(8, 8))
        for row in range(2):
            # Reconstructions on the inputs' grey scale.
            assert_allclose(
                disp.images_[row, i].get_clim(), (inputs.min(), inputs.max())
            )
            assert disp.images_[row, i].get_cmap().name == "gray"
            assert disp.ax_[row, i].get_xticks().size == 0
            assert disp.ax_[row, i].get_yticks().size == 0
    assert disp.ax_[0, 0].get_ylabel() == "input"
    assert disp.ax_[1, 0].get_ylabel() == "reconstruction"


def test_reconstruction_lines(vae):
    disp = ReconstructionDisplay.from_estimator(vae, X, n_examples=3)
    expected = vae.inverse_transform(vae.transform(X[:3]))

    assert disp.ax_.shape == (3,)
    assert disp.images_ is None and n_images(disp.figure_) == 0
    assert disp.lines_.shape == (3, 2)
    for i, axis in enumerate(disp.ax_):
        line_input, line_reconstruction = axis.get_lines()
        assert_array_equal(line_input.get_xdata(), np.arange(64))
        assert_allclose(line_input.get_ydata(), X[i])
        assert_allclose(line_reconstruction.get_ydata(), expected[i])
        assert line_input.get_linestyle() == "-"
        assert line_reconstruction.get_linestyle() == "--"
    legends = [axis.get_legend() for axis in disp.figure_.axes]
    assert sum(legend is not None for legend in legends) == 1
    assert legend_texts(disp.ax_[0]) == ["input", "reconstruction"]


def test_reconstruction_draws_on_given_axes(vae):
    fig, axes = plt.subplots(2, 3)
    disp = ReconstructionDisplay.from_estimator(
        vae, X, n_examples=3, image_shape=(8, 8), ax=axes
    )

    assert disp.figure_ is fig
    assert disp.ax_[1, 2] is axes[1, 2]
    assert all(len(axis.images) == 1 for axis in axes.ravel())


def test_reconstruction_keeps_dataframe_feature_names():
    columns = [f"pixel{i}" for i in range(64)]
    df = pd.DataFrame(X, columns=columns)
    vae_df = fit_quietly(VAETransformer(**FAST), df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        disp = ReconstructionDisplay.from_estimator(vae_df, df, n_examples=2)
    assert_allclose(disp.inputs, X[:2])


@pytest.mark.parametrize(
    "image_shape, message",
    [
        ((8, 7), r"image_shape=\(8, 7\) holds 56 pixels, but n_features_in_=64"),
        ((64,), "pair of positive integers"),
        ((0, 64), "pair of positive integers"),
    ],
)
def test_reconstruction_bad_image_shape(vae, image_shape, message):
    with pytest.raises(ValueError, match=message):
        ReconstructionDisplay.from_estimator(vae, X, image_shape=image_shape)


@pytest.mark.parametrize("n_examples", [0, 301])
def test_reconstruction_bad_n_examples(vae, n_examples):
    with pytest.raises(ValueError, match=f"n_examples={n_examples} .*300 rows"):
        ReconstructionDisplay.from_estimator(vae, X, n_examples=n_examples)


# ---------------------------------------------------------------- latent manifold


def test_manifold_tiles_are_decoded_grid_points(vae3):
    n = 5
    disp = LatentManifoldDisplay.from_estimator(
        vae3, image_shape=(8, 8), n_per_side=n, dims=(2, 0)
    )
    grid = norm.ppf(np.linspace(0.05, 0.95, n))

    assert_allclose(disp.grid, grid)
    assert disp.images.shape == (n, n, 8, 8)
    assert disp.figure_ is disp.ax_.figure and len(disp.figure_.axes) == 1
    assert n_images(disp.figure_) == 1
    tiled = disp.image_.get_array()
    assert tiled.shape == (n * 8, n * 8)
    # Tile (row i from the top, column j): z[2] = grid[j], z[0] = grid[n - 1 - i],
    # z[1] at the prior's mean; up is +z[0].
    for i, j in [(0, 1), (3, 4), (4, 0)]:
        z = np.zeros((1, 3))
        z[0, 2], z[0, 0] = grid[j], grid[n - 1 - i]
        decoded = vae3.inverse_transform(z).reshape(8, 8)
        assert_allclose(tiled[8 * i : 8 * (i + 1), 8 * j : 8 * (j + 1)], decoded)
        assert_allclose(disp.images[i, j], decoded)
    assert disp.ax_.get_xlabel() == "z[2]"
    assert disp.ax_.get_ylabel() == "z[0]"
    xticks = [t.get_text() for t in disp.ax_.get_xticklabels()]
    yticks = [t.get_text() for t in disp.ax_.get_yticklabels()]
    assert xticks[0] == f"{grid[0]:.2f}" and xticks[-1] == f"{grid[-1]:.2f}"
    assert yticks[0] == f"{grid[-1]:.2f}"  # the top row holds the largest z[0]


def test_manifold_on_a_given_grid(vae3):
    # The seed's grid: linear from -3 to 3 - 1/3 in steps of 1/3, 18 values.
    grid = np.arange(-3, 3, 1 / 3)
    disp = LatentManifoldDisplay.from_estimator(
        vae3, image_shape=(8, 8), grid=grid, n_per_side=4, quantile_range=(0.1, 0.2)
    )
    assert_allclose(disp.grid, grid)
    assert disp.images.shape == (18, 18, 8, 8)
    # Bottom-left tile: z[0] = grid[0] (right), z[1] = grid[0] (up).
    decoded = vae3.inverse_transform(np.array([[grid[0], grid[0], 0.0]]))
    assert_allclose(disp.images[17, 0], decoded.reshape(8, 8))
    xticks = [t.get_text() for t in disp.ax_.get_xticklabels()]
    assert xticks[0] == "-3.00"


@pytest.mark.parametrize(
    "grid", [[0.0], [1.0, 0.0], [0.0, np.nan], [[0.0, 1.0]], "abc", 3.0, ["a", "b"]]
)
def test_manifold_bad_grid(vae, grid):
    with pytest.raises(ValueError, match="grid must hold at least 2 finite"):
        LatentManifoldDisplay.from_estimator(vae, image_shape=(8, 8), grid=grid)


def test_manifold_draws_on_given_axes(vae):
    fig, ax = plt.subplots()
    disp = LatentManifoldDisplay.from_estimator(
        vae, image_shape=(8, 8), n_per_side=3, ax=ax
    )
    assert disp.ax_ is ax and disp.figure_ is fig
    assert len(ax.images) == 1


def test_manifold_passes_keywords_to_imshow(vae):
    default = LatentManifoldDisplay.from_estimator(
        vae, image_shape=(8, 8), n_per_side=3
    )
    low, high = default.images.min(), default.images.max()
    assert default.image_.get_clim() == pytest.approx((low, high))
    assert default.image_.get_cmap().name == "gray"
    disp = LatentManifoldDisplay.from_estimator(
        vae, image_shape=(8, 8), n_per_side=3, vmin=-1, vmax=2, cmap="viridis"
    )
    assert disp.image_.get_clim() == (-1, 2)
    assert disp.image_.get_cmap().name == "viridis"


def test_manifold_needs_two_latent_dimensions(vae1):
    with pytest.raises(ValueError, match=r"latent_dim >= 2.*latent_dim=1"):
        LatentManifoldDisplay.from_estimator(vae1, image_shape=(8, 8))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"dims": (0, 0)}, "dims must be 2 distinct integers"),
        ({"dims": (0, 2)}, r"\[0, 2\); got dims=\(0, 2\)"),
        ({"dims": (0,)}, "dims must be 2 distinct"),
        ({"dims": (0.0, 1.0)}, "dims must be 2 distinct"),
        ({"image_shape": (4, 4)}, r"holds 16 pixels, but n_features_in_=64"),
        ({"quantile_range": (0.0, 0.9)}, "0 < q0 < q1 < 1"),
        ({"quantile_range": (0.9, 0.1)}, "0 < q0 < q1 < 1"),
        ({"n_per_side": 1}, "n_per_side must be an integer >= 2"),
    ],
)
def test_manifold_bad_parameters(vae, params, message):
    params = {"image_shape": (8, 8), **params}
    with pytest.raises(ValueError, match=message):
        LatentManifoldDisplay.from_estimator(vae, **params)


# ------------------------------------------------------------------ latent space


def test_latent_space_one_scatter_per_class(vae):
    disp = LatentSpaceDisplay.from_estimator(vae, X, Y)
    Z = vae.transform(X)

    assert disp.figure_ is disp.ax_.figure and len(disp.figure_.axes) == 1
    assert disp.colorbar_ is None
    assert len(disp.scatters_) == 10
    for label, scatter in zip(range(10), disp.scatters_, strict=True):
        assert_allclose(scatter.get_offsets(), Z[Y == label])
    colors = {tuple(s.get_facecolor()[0][:3]) for s in disp.scatters_}
    assert len(colors) == 10
    assert legend_texts(disp.ax_) == [str(c) for c in range(10)]
    assert disp.ax_.get_xlabel() == "z[0]" and disp.ax_.get_ylabel() == "z[1]"


def test_latent_space_chosen_dims(vae3):
    disp = LatentSpaceDisplay.from_estimator(vae3, X, dims=(2, 1))
    (scatter,) = disp.scatters_
    assert_allclose(scatter.get_offsets(), vae3.transform(X)[:, [2, 1]])
    assert disp.ax_.get_xlabel() == "z[2]" and disp.ax_.get_ylabel() == "z[1]"
    assert disp.ax_.get_legend() is None


def test_latent_space_defaults_to_the_most_active_pair(vae3):
    kl = vae3.kl_per_dimension(X)
    disp = LatentSpaceDisplay.from_estimator(vae3, X, Y)
    assert disp.dims == tuple(sorted(np.argsort(kl)[-2:]))
    assert min(kl[list(disp.dims)]) >= max(np.delete(kl, list(disp.dims)))


def test_latent_space_many_numeric_values_get_a_colorbar(vae):
    values = np.linspace(0.0, 1.0, len(X))
    disp = LatentSpaceDisplay.from_estimator(vae, X, values)

    (scatter,) = disp.scatters_
    assert disp.colorbar_ is not None
    assert len(disp.figure_.axes) == 2  # the plot and the colorbar
    assert_allclose(scatter.get_array(), values)
    assert disp.ax_.get_legend() is None


def test_latent_space_one_latent_dimension(vae1):
    Z = vae1.transform(X)
    disp = LatentSpaceDisplay.from_estimator(vae1, X, Y)
    for k, scatter in enumerate(disp.scatters_):
        offsets = scatter.get_offsets()
        assert_allclose(offsets[:, 0], Z[Y == k, 0])
        assert_array_equal(offsets[:, 1], k)  # the class index
    assert disp.ax_.get_xlabel() == "z[0]"
    assert [t.get_text() for t in disp.ax_.get_yticklabels()] == [
        str(c) for c in range(10)
    ]

    disp = LatentSpaceDisplay.from_estimator(vae1, X)
    (scatter,) = disp.scatters_
    assert_array_equal(scatter.get_offsets()[:, 1], 0.0)


def test_latent_space_by_hand_on_given_axes():
    _, ax = plt.subplots()
    Z = np.arange(12.0).reshape(4, 3)
    disp = LatentSpaceDisplay(Z, y=["a", "b", "a", "b"], dims=(1, 2)).plot(ax=ax)
    assert disp.ax_ is ax
    assert_allclose(disp.scatters_[0].get_offsets(), Z[[0, 2]][:, [1, 2]])
    assert legend_texts(ax) == ["a", "b"]


def test_latent_space_y_of_wrong_length(vae):
    with pytest.raises(ValueError, match="y has 299 entries, but X has 300 rows"):
        LatentSpaceDisplay.from_estimator(vae, X, Y[:-1])


@pytest.mark.parametrize("dims", [(0, 2), (1, 1), (0, 1, 0), "01", 0])
def test_latent_space_bad_dims(vae, dims):
    with pytest.raises(ValueError, match="dims must be 1 or 2 distinct integers"):
        LatentSpaceDisplay.from_estimator(vae, X, dims=dims)


# ------------------------------------------------------------------- all displays

FROM_ESTIMATOR = {
    "loss": lambda est: LossCurveDisplay.from_estimator(est),
    "reconstruction": lambda est: ReconstructionDisplay.from_estimator(est, X),
    "manifold": lambda est: LatentManifoldDisplay.from_estimator(
        est, image_shape=(8, 8)
    ),
    "space": lambda est: LatentSpaceDisplay.from_estimator(est, X),
}


@pytest.mark.parametrize("name", FROM_ESTIMATOR)
def test_unfitted_estimator(name):
    with pytest.raises(NotFittedError):
        FROM_ESTIMATOR[name](VAETransformer())


@pytest.mark.parametrize("name", FROM_ESTIMATOR)
def test_missing_matplotlib(vae, monkeypatch, name):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "skvae\[plot\]"'):
        FROM_ESTIMATOR[name](vae)


def test_module_imports_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    spec = importlib.util.spec_from_file_location(
        "skvae_plotting_copy", skvae.plotting.__file__
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ImportError, match="skvae"):
        module.LossCurveDisplay([1.0], [1.0], [0.0]).plot()
