"""Plots of a fitted VAETransformer, as scikit-learn-style Display objects.

Each Display follows ``sklearn.metrics.RocCurveDisplay``: ``from_estimator``
computes what to draw from a fitted estimator's public API and calls ``plot``;
``plot`` draws onto new or given Axes and sets ``figure_`` and ``ax_``; a Display
can also be built by hand from precomputed data. matplotlib is imported only when
something is drawn (``pip install "skvae[plot]"``).
"""

from collections.abc import Sequence
from numbers import Integral, Real
from types import ModuleType
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = [
    "LatentManifoldDisplay",
    "LatentSpaceDisplay",
    "LossCurveDisplay",
    "ReconstructionDisplay",
]

# More distinct numeric values than this are drawn with a colorbar, not a legend.
_MAX_CLASSES = 20


def _pyplot(caller: str) -> ModuleType:
    """Import and return ``matplotlib.pyplot``, or say how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib, which is not installed. Install it with "
            '`pip install "skvae[plot]"`.'
        ) from exc
    return plt


def _axes_array(ax: Any, size: int, caller: str) -> np.ndarray:
    """Flatten ``ax`` to a 1-D object array of ``size`` Axes."""
    axes = np.empty(np.size(ax), dtype=object)
    axes[:] = list(np.ravel(np.asarray(ax, dtype=object)))
    if axes.size != size:
        raise ValueError(f"{caller} needs {size} Axes in `ax`; got {axes.size}.")
    return axes


def _as_list(value: Any) -> list | None:
    """``value`` as a list if it is a sequence or an array (not a string)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return None


def _check_image_shape(
    image_shape: Any, n_features: int, source: str
) -> tuple[int, int]:
    """Validate ``image_shape`` as ``(height, width)`` with ``n_features`` pixels."""
    sizes = _as_list(image_shape)
    if (
        sizes is None
        or len(sizes) != 2
        or not all(isinstance(s, Integral) and s >= 1 for s in sizes)
    ):
        raise ValueError(
            "image_shape must be a pair of positive integers (height, width); got "
            f"image_shape={image_shape!r}."
        )
    shape = (int(sizes[0]), int(sizes[1]))
    if shape[0] * shape[1] != n_features:
        raise ValueError(
            f"image_shape={shape} holds {shape[0] * shape[1]} pixels, but "
            f"{source}={n_features}."
        )
    return shape


def _check_dims(dims: Any, latent_dim: int, lengths: tuple[int, ...]) -> tuple:
    """Validate ``dims`` as distinct latent indices, as many as one of ``lengths``."""
    how_many = " or ".join(str(n) for n in lengths)
    indices = _as_list(dims)
    valid = (
        indices is not None
        and len(indices) in lengths
        and all(
            isinstance(d, Integral) and not isinstance(d, bool) and 0 <= d < latent_dim
            for d in indices
        )
        and len(set(indices)) == len(indices)
    )
    if not valid:
        raise ValueError(
            f"dims must be {how_many} distinct integers in [0, latent_dim) = "
            f"[0, {latent_dim}); got dims={dims!r}."
        )
    return tuple(int(d) for d in indices)


def _tick_indices(n: int, max_ticks: int = 5) -> np.ndarray:
    """Up to ``max_ticks`` evenly spread indices in ``range(n)``, ends included."""
    return np.unique(np.linspace(0, n - 1, min(n, max_ticks)).round().astype(int))


class LossCurveDisplay:
    """Training curves of a VAETransformer: the loss and its KL term per epoch.

    The left panel shows the training loss, its reconstruction term and, when
    available, the negative validation ELBO; the right panel shows the KL term
    alone, at its own scale (it is often much smaller than the loss). Build it with
    :meth:`from_estimator`; the constructor only stores the curves.

    Parameters
    ----------
    loss : array-like of shape (n_epochs,)
        Training loss per epoch (``loss_curve_``), in nats per row.

    reconstruction : array-like of shape (n_epochs,)
        Reconstruction term -E_q[log p(x|z)] per epoch (``reconstruction_curve_``).

    kl : array-like of shape (n_epochs,)
        KL(q(z|x) || p(z)) per epoch, before beta (``kl_curve_``).

    validation : array-like of shape (n_validation_epochs,), default=None
        Validation ELBO per epoch, higher is better (``validation_scores_``); drawn
        negated. None draws no validation curve.

    beta : float, default=1.0
        The estimator's KL weight; only changes the loss curve's label.

    Attributes
    ----------
    line_loss_ : matplotlib.lines.Line2D
        The training loss curve.

    line_reconstruction_ : matplotlib.lines.Line2D
        The reconstruction term curve.

    line_validation_ : matplotlib.lines.Line2D or None
        The negative validation ELBO curve, or None without validation scores.

    line_kl_ : matplotlib.lines.Line2D
        The KL term curve.

    ax_ : ndarray of matplotlib.axes.Axes of shape (2,)
        The loss panel and the KL panel.

    figure_ : matplotlib.figure.Figure
        The figure holding ``ax_``.

    See Also
    --------
    ReconstructionDisplay : Inputs next to their reconstructions.
    skvae.VAETransformer : The estimator whose curves are drawn.

    Examples
    --------
    >>> from skvae.plotting import LossCurveDisplay
    >>> disp = LossCurveDisplay(
    ...     loss=[30.0, 25.0, 22.0], reconstruction=[28.0, 21.0, 17.0],
    ...     kl=[2.0, 4.0, 5.0],
    ... ).plot()
    >>> disp.ax_.shape
    (2,)
    """

    def __init__(self, loss, reconstruction, kl, validation=None, beta=1.0):
        self.loss = loss
        self.reconstruction = reconstruction
        self.kl = kl
        self.validation = validation
        self.beta = beta

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the training curves of a fitted VAETransformer.

        Parameters
        ----------
        estimator : VAETransformer
            A fitted estimator; with ``early_stopping=True`` its validation ELBO is
            drawn too.

        ax : sequence of 2 matplotlib.axes.Axes, default=None
            Axes for the loss panel and the KL panel. None makes a new figure.

        Returns
        -------
        display : LossCurveDisplay
            The drawn display.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skvae import VAETransformer
        >>> from skvae.plotting import LossCurveDisplay
        >>> X = load_digits().data[:50] / 16
        >>> vae = VAETransformer(max_iter=5, random_state=0).fit(X)
        >>> disp = LossCurveDisplay.from_estimator(vae)
        >>> len(disp.line_loss_.get_xdata())
        5
        """
        check_is_fitted(estimator)
        _pyplot(f"{cls.__name__}.from_estimator")
        validation = estimator.validation_scores_
        return cls(
            loss=np.asarray(estimator.loss_curve_, dtype=float),
            reconstruction=np.asarray(estimator.reconstruction_curve_, dtype=float),
            kl=np.asarray(estimator.kl_curve_, dtype=float),
            validation=None
            if validation is None
            else np.asarray(validation, dtype=float),
            beta=estimator.beta,
        ).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the curves.

        Parameters
        ----------
        ax : sequence of 2 matplotlib.axes.Axes, default=None
            Axes for the loss panel and the KL panel. None makes a new figure.

        Returns
        -------
        self : LossCurveDisplay
            The display, with ``ax_``, ``figure_`` and the ``line_*_`` attributes.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from skvae.plotting import LossCurveDisplay
        >>> fig, axes = plt.subplots(1, 2)
        >>> disp = LossCurveDisplay([3.0, 2.0], [2.5, 1.5], [0.5, 0.5]).plot(ax=axes)
        >>> disp.figure_ is fig
        True
        """
        plt = _pyplot(f"{type(self).__name__}.plot")
        from matplotlib.ticker import MaxNLocator

        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        self.ax_ = _axes_array(ax, 2, type(self).__name__)
        self.figure_ = self.ax_[0].figure
        ax_loss, ax_kl = self.ax_

        def epochs(values):
            return np.arange(1, len(values) + 1)

        loss = np.asarray(self.loss, dtype=float)
        if self.beta == 1:
            loss_label = "training loss (-ELBO)"
        else:
            loss_label = "training loss (reconstruction + beta*KL)"
        (self.line_loss_,) = ax_loss.plot(epochs(loss), loss, label=loss_label)
        reconstruction = np.asarray(self.reconstruction, dtype=float)
        (self.line_reconstruction_,) = ax_loss.plot(
            epochs(reconstruction),
            reconstruction,
            linestyle=":",
            label="reconstruction (-E_q[log p(x|z)])",
        )
        self.line_validation_ = None
        if self.validation is not None:
            negative_elbo = -np.asarray(self.validation, dtype=float)
            (self.line_validation_,) = ax_loss.plot(
                epochs(negative_elbo),
                negative_elbo,
                linestyle="--",
                label="validation -ELBO",
            )
        kl = np.asarray(self.kl, dtype=float)
        (self.line_kl_,) = ax_kl.plot(
            epochs(kl), kl, color="C3", label="KL(q(z|x) || p(z))"
        )
        ax_loss.set_title("Loss")
        ax_kl.set_title("KL term")
        for axis in self.ax_:
            axis.set_xlabel("epoch")
            axis.set_ylabel("nats per row")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.legend()
        return self


class ReconstructionDisplay:
    """Rows of X next to the decoder's reconstructions of them.

    With an ``image_shape``, a grid of images: the inputs on the top row, their
    reconstructions below, on one grey scale (the inputs' range). Without one, one
    panel per row: the input (solid) and its reconstruction (dashed) against the
    feature index. Build it with :meth:`from_estimator`.

    Parameters
    ----------
    inputs : array-like of shape (n_examples, n_features)
        The rows to show.

    reconstructions : array-like of shape (n_examples, n_features)
        Their reconstructions, ``inverse_transform(transform(inputs))``.

    image_shape : tuple of (int, int), default=None
        ``(height, width)`` of one row seen as an image, with height * width =
        n_features. None draws line plots.

    Attributes
    ----------
    images_ : ndarray of matplotlib.image.AxesImage of shape (2, n_examples) or None
        The input images (row 0) and the reconstructions (row 1); None for line
        plots.

    lines_ : ndarray of matplotlib.lines.Line2D of shape (n_examples, 2) or None
        For each row, the input and the reconstruction curves; None for images.

    ax_ : ndarray of matplotlib.axes.Axes
        Of shape (2, n_examples) for images, (n_examples,) for line plots.

    figure_ : matplotlib.figure.Figure
        The figure holding ``ax_``.

    See Also
    --------
    LatentManifoldDisplay : Decoded images over a grid of latent points.
    skvae.VAETransformer.inverse_transform : The decoder's mean.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.plotting import ReconstructionDisplay
    >>> rng = np.random.default_rng(0)
    >>> inputs = rng.uniform(size=(3, 16))
    >>> disp = ReconstructionDisplay(inputs, inputs ** 2, image_shape=(4, 4)).plot()
    >>> disp.ax_.shape
    (2, 3)
    """

    def __init__(self, inputs, reconstructions, image_shape=None):
        self.inputs = inputs
        self.reconstructions = reconstructions
        self.image_shape = image_shape

    @classmethod
    def from_estimator(cls, estimator, X, *, n_examples=10, image_shape=None, ax=None):
        """Plot the first rows of X and their reconstructions by a VAETransformer.

        Parameters
        ----------
        estimator : VAETransformer
            A fitted estimator.

        X : array-like of shape (n_samples, ``n_features_in_``)
            Data; its first ``n_examples`` rows are shown.

        n_examples : int, default=10
            How many rows to show, at least 1 and at most n_samples.

        image_shape : tuple of (int, int), default=None
            ``(height, width)`` of one row seen as an image, e.g. ``(8, 8)`` for the
            digits; height * width must equal ``n_features_in_``. None draws line
            plots.

        ax : array-like of matplotlib.axes.Axes, default=None
            2 * n_examples Axes for images (reshaped to 2 rows), n_examples for line
            plots. None makes a new figure.

        Returns
        -------
        display : ReconstructionDisplay
            The drawn display.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skvae import VAETransformer
        >>> from skvae.plotting import ReconstructionDisplay
        >>> X = load_digits().data[:50] / 16
        >>> vae = VAETransformer(max_iter=5, random_state=0).fit(X)
        >>> disp = ReconstructionDisplay.from_estimator(
        ...     vae, X, n_examples=4, image_shape=(8, 8)
        ... )
        >>> disp.images_.shape
        (2, 4)
        """
        check_is_fitted(estimator)
        _pyplot(f"{cls.__name__}.from_estimator")
        X_array = check_array(X, dtype=[np.float64, np.float32])
        n_samples = X_array.shape[0]
        if (
            not isinstance(n_examples, Integral)
            or isinstance(n_examples, bool)
            or not 1 <= n_examples <= n_samples
        ):
            raise ValueError(
                f"n_examples must be an integer in [1, n_samples]; got "
                f"n_examples={n_examples!r} with n_samples={n_samples} rows in X."
            )
        if image_shape is not None:
            image_shape = _check_image_shape(
                image_shape, estimator.n_features_in_, "n_features_in_"
            )
        # A DataFrame goes to transform as it is, keeping its feature names.
        rows = X.iloc[:n_examples] if hasattr(X, "iloc") else X_array[:n_examples]
        reconstructions = estimator.inverse_transform(estimator.transform(rows))
        return cls(
            inputs=X_array[:n_examples],
            reconstructions=reconstructions,
            image_shape=image_shape,
        ).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the inputs and their reconstructions.

        Parameters
        ----------
        ax : array-like of matplotlib.axes.Axes, default=None
            2 * n_examples Axes for images (reshaped to 2 rows: inputs, then
            reconstructions), n_examples for line plots. None makes a new figure.

        Returns
        -------
        self : ReconstructionDisplay
            The display, with ``ax_``, ``figure_``, ``images_`` and ``lines_``.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from skvae.plotting import ReconstructionDisplay
        >>> fig, axes = plt.subplots(1, 2)
        >>> disp = ReconstructionDisplay(
        ...     [[0.0, 1.0, 2.0], [1.0, 1.0, 0.0]], [[0.1, 0.9, 1.8], [1.0, 0.8, 0.2]]
        ... ).plot(ax=axes)
        >>> disp.images_ is None
        True
        """
        plt = _pyplot(f"{type(self).__name__}.plot")
        name = type(self).__name__
        inputs = np.asarray(self.inputs, dtype=float)
        reconstructions = np.asarray(self.reconstructions, dtype=float)
        if inputs.ndim != 2 or reconstructions.shape != inputs.shape:
            raise ValueError(
                "inputs and reconstructions must be 2-D arrays of one shape; got "
                f"{inputs.shape} and {reconstructions.shape}."
            )
        n_examples, n_features = inputs.shape

        if self.image_shape is None:
            if ax is None:
                _, ax = plt.subplots(
                    1,
                    n_examples,
                    figsize=(2.2 * n_examples + 0.5, 2.5),
                    sharey=True,
                    squeeze=False,
                    layout="constrained",
                )
            self.ax_ = _axes_array(ax, n_examples, name)
            self.figure_ = self.ax_[0].figure
            self.images_ = None
            self.lines_ = np.empty((n_examples, 2), dtype=object)
            features = np.arange(n_features)
            for i, axis in enumerate(self.ax_):
                (self.lines_[i, 0],) = axis.plot(features, inputs[i], label="input")
                (self.lines_[i, 1],) = axis.plot(
                    features, reconstructions[i], linestyle="--", label="reconstruction"
                )
                axis.set_title(f"row {i}")
                axis.set_xlabel("feature")
            self.ax_[0].legend()
            return self

        height, width = _check_image_shape(
            self.image_shape, n_features, "the inputs' number of features"
        )
        if ax is None:
            _, ax = plt.subplots(
                2,
                n_examples,
                figsize=(1.1 * n_examples + 0.8, 2.6),
                squeeze=False,
                layout="constrained",
            )
        self.ax_ = _axes_array(ax, 2 * n_examples, name).reshape(2, n_examples)
        self.figure_ = self.ax_[0, 0].figure
        self.lines_ = None
        self.images_ = np.empty((2, n_examples), dtype=object)
        # One grey scale, the inputs', so that faded or saturated reconstructions
        # look faded or saturated.
        vmin, vmax = inputs.min(), inputs.max()
        for row, data in enumerate((inputs, reconstructions)):
            for i in range(n_examples):
                axis = self.ax_[row, i]
                self.images_[row, i] = axis.imshow(
                    data[i].reshape(height, width), cmap="gray", vmin=vmin, vmax=vmax
                )
                axis.set_xticks([])
                axis.set_yticks([])
        self.ax_[0, 0].set_ylabel("input")
        self.ax_[1, 0].set_ylabel("reconstruction")
        return self


class LatentManifoldDisplay:
    """Decoder means over a grid of latent points, tiled into one image.

    Two latent dimensions sweep the prior's quantiles (the others stay at the
    prior's mean, 0) and each grid point is decoded to an image, as in Figure 4 of
    Kingma & Welling (2013); or any grid of latent values you give. Up the picture
    is +z along the second dimension, right is +z along the first. Build it with
    :meth:`from_estimator`.

    Parameters
    ----------
    images : array-like of shape (n_per_side, n_per_side, height, width)
        ``images[i, j]`` is the tile in row i (from the top) and column j (from the
        left): the decoding of z with z[dims[0]] = grid[j] and
        z[dims[1]] = grid[n_per_side - 1 - i].

    grid : array-like of shape (n_per_side,)
        Increasing latent values swept along each of the two dimensions.

    dims : tuple of (int, int)
        The latent dimensions along the horizontal and vertical axes.

    Attributes
    ----------
    image_ : matplotlib.image.AxesImage
        The tiled image, of shape (n_per_side * height, n_per_side * width).

    ax_ : matplotlib.axes.Axes
        The Axes holding the image; ticks show z values at tile centres.

    figure_ : matplotlib.figure.Figure
        The figure holding ``ax_``.

    See Also
    --------
    LatentSpaceDisplay : Where the data's rows land in the latent space.
    skvae.VAETransformer.inverse_transform : The decoder's mean.

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
    arXiv:1312.6114, Figure 4.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.plotting import LatentManifoldDisplay
    >>> images = np.zeros((3, 3, 4, 4))
    >>> disp = LatentManifoldDisplay(images, grid=[-1.0, 0.0, 1.0], dims=(0, 1))
    >>> disp.plot().image_.get_array().shape
    (12, 12)
    """

    def __init__(self, images, grid, dims):
        self.images = images
        self.grid = grid
        self.dims = dims

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        image_shape,
        n_per_side=20,
        dims=(0, 1),
        quantile_range=(0.05, 0.95),
        grid=None,
        ax=None,
        **kwargs,
    ):
        """Plot the decoded images over a grid of two latent dimensions.

        Parameters
        ----------
        estimator : VAETransformer
            A fitted estimator with ``latent_dim >= 2``.

        image_shape : tuple of (int, int)
            ``(height, width)`` of one decoded row seen as an image; height * width
            must equal ``n_features_in_``.

        n_per_side : int, default=20
            Grid points along each dimension (at least 2).

        dims : tuple of (int, int), default=(0, 1)
            Two distinct latent dimensions, drawn along the horizontal and the
            vertical axis.

        quantile_range : tuple of (float, float), default=(0.05, 0.95)
            Probabilities q0 < q1 in (0, 1); the grid is the prior's quantiles
            ``scipy.stats.norm.ppf(np.linspace(q0, q1, n_per_side))``, so it covers
            the prior's mass evenly.

        grid : array-like of shape (n_grid,), default=None
            Increasing latent values to sweep along both dimensions instead of the
            quantiles, e.g. ``np.arange(-3, 3, 1 / 3)`` for a linear grid; when
            given, ``n_per_side`` and ``quantile_range`` are not used.

        ax : matplotlib.axes.Axes, default=None
            Axes to draw on. None makes a new figure.

        **kwargs : dict
            Passed to ``ax.imshow``, e.g. ``vmin=0, vmax=1`` to show the decoded
            means on the data's range (by default the grey scale spans the decoded
            images' own range, and ``cmap`` is ``"gray"``).

        Returns
        -------
        display : LatentManifoldDisplay
            The drawn display.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skvae import VAETransformer
        >>> from skvae.plotting import LatentManifoldDisplay
        >>> X = load_digits().data[:50] / 16
        >>> vae = VAETransformer(max_iter=5, random_state=0).fit(X)
        >>> disp = LatentManifoldDisplay.from_estimator(
        ...     vae, image_shape=(8, 8), n_per_side=5
        ... )
        >>> disp.images.shape
        (5, 5, 8, 8)
        """
        check_is_fitted(estimator)
        _pyplot(f"{cls.__name__}.from_estimator")
        latent_dim = estimator.latent_dim
        if latent_dim < 2:
            raise ValueError(
                f"{cls.__name__} needs latent_dim >= 2 to span a grid; the estimator "
                f"has latent_dim={latent_dim}. Use LatentSpaceDisplay instead."
            )
        dims = _check_dims(dims, latent_dim, (2,))
        height, width = _check_image_shape(
            image_shape, estimator.n_features_in_, "n_features_in_"
        )
        if grid is None:
            grid = _quantile_grid(n_per_side, quantile_range)
        else:
            grid = _check_grid(grid)
        n_per_side = len(grid)
        # Row i of the picture holds z[dims[1]] = grid[-1 - i]: up is +z.
        z_vertical, z_horizontal = np.meshgrid(grid[::-1], grid, indexing="ij")
        Z = np.zeros((n_per_side * n_per_side, latent_dim))
        Z[:, dims[0]] = z_horizontal.ravel()
        Z[:, dims[1]] = z_vertical.ravel()
        images = estimator.inverse_transform(Z).reshape(
            n_per_side, n_per_side, height, width
        )
        return cls(images=images, grid=grid, dims=dims).plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the tiled image.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on. None makes a new figure.

        **kwargs : dict
            Passed to ``ax.imshow`` (``cmap`` defaults to ``"gray"``).

        Returns
        -------
        self : LatentManifoldDisplay
            The display, with ``image_``, ``ax_`` and ``figure_``.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> import numpy as np
        >>> from skvae.plotting import LatentManifoldDisplay
        >>> fig, ax = plt.subplots()
        >>> disp = LatentManifoldDisplay(np.ones((2, 2, 3, 3)), [-1.0, 1.0], (0, 1))
        >>> disp.plot(ax=ax).ax_ is ax
        True
        """
        plt = _pyplot(f"{type(self).__name__}.plot")
        images = np.asarray(self.images, dtype=float)
        grid = np.asarray(self.grid, dtype=float)
        n = len(grid)
        if images.ndim != 4 or images.shape[:2] != (n, n):
            raise ValueError(
                "images must have shape (n_per_side, n_per_side, height, width) with "
                f"n_per_side = len(grid) = {n}; got {images.shape}."
            )
        height, width = images.shape[2:]
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6), layout="constrained")
        self.ax_ = ax
        self.figure_ = ax.figure
        tiled = images.transpose(0, 2, 1, 3).reshape(n * height, n * width)
        self.image_ = ax.imshow(tiled, **{"cmap": "gray", **kwargs})
        ticks = _tick_indices(n)
        ax.set_xticks((ticks + 0.5) * width - 0.5, [f"{grid[j]:.2f}" for j in ticks])
        ax.set_yticks(
            (ticks + 0.5) * height - 0.5, [f"{grid[n - 1 - i]:.2f}" for i in ticks]
        )
        ax.set_xlabel(f"z[{self.dims[0]}]")
        ax.set_ylabel(f"z[{self.dims[1]}]")
        return self


class LatentSpaceDisplay:
    """Latent means of the data's rows, as a scatter plot coloured by y.

    Two latent dimensions give a 2-D scatter. One dimension (``latent_dim == 1``,
    or a single entry in ``dims``) is drawn along the horizontal axis against the
    class index (discrete y), y itself (numeric y with many values) or 0 (no y).
    Discrete labels get one colour each and a legend; numeric y with more than 20
    distinct values gets a colour scale. Build it with :meth:`from_estimator`.

    Parameters
    ----------
    Z : array-like of shape (n_samples, latent_dim)
        Latent means, ``transform(X)``.

    y : array-like of shape (n_samples,), default=None
        Labels or values to colour the points by. None draws one colour.

    dims : tuple of int, default=None
        One or two distinct columns of Z to draw. None means (0, 1), or (0,) when Z
        has a single column.

    Attributes
    ----------
    scatters_ : list of matplotlib.collections.PathCollection
        One scatter per class for discrete y, else a single one.

    colorbar_ : matplotlib.colorbar.Colorbar or None
        The colour scale for numeric y with many values, else None.

    ax_ : matplotlib.axes.Axes
        The Axes holding the scatter.

    figure_ : matplotlib.figure.Figure
        The figure holding ``ax_``.

    See Also
    --------
    LatentManifoldDisplay : What the decoder draws across the latent space.
    skvae.VAETransformer.transform : The latent means.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.plotting import LatentSpaceDisplay
    >>> Z = np.random.default_rng(0).normal(size=(30, 2))
    >>> disp = LatentSpaceDisplay(Z, y=np.repeat(["a", "b", "c"], 10)).plot()
    >>> len(disp.scatters_)
    3
    """

    def __init__(self, Z, y=None, dims=None):
        self.Z = Z
        self.y = y
        self.dims = dims

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, dims=None, ax=None):
        """Plot the latent means of X, coloured by y.

        Parameters
        ----------
        estimator : VAETransformer
            A fitted estimator.

        X : array-like of shape (n_samples, ``n_features_in_``)
            Data to encode with ``estimator.transform``.

        y : array-like of shape (n_samples,), default=None
            Labels or values to colour the points by.

        dims : tuple of int, default=None
            One or two distinct latent dimensions to draw. None means the two that
            carry the most KL over X (``estimator.kl_per_dimension(X)``, the most
            active pair, in increasing order), or (0,) when ``latent_dim == 1``.

        ax : matplotlib.axes.Axes, default=None
            Axes to draw on. None makes a new figure.

        Returns
        -------
        display : LatentSpaceDisplay
            The drawn display.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skvae import VAETransformer
        >>> from skvae.plotting import LatentSpaceDisplay
        >>> X, y = load_digits(return_X_y=True)
        >>> X, y = X[:50] / 16, y[:50]
        >>> vae = VAETransformer(max_iter=5, random_state=0).fit(X)
        >>> disp = LatentSpaceDisplay.from_estimator(vae, X, y)
        >>> disp.ax_.get_xlabel(), disp.ax_.get_ylabel()
        ('z[0]', 'z[1]')
        """
        check_is_fitted(estimator)
        _pyplot(f"{cls.__name__}.from_estimator")
        if dims is None and estimator.latent_dim > 2:
            kl = estimator.kl_per_dimension(X)
            dims = tuple(sorted(int(j) for j in np.argsort(kl)[::-1][:2]))
        dims = _resolve_dims(dims, estimator.latent_dim)
        Z = estimator.transform(X)
        if y is not None:
            y = _check_labels(y, Z.shape[0])
        return cls(Z=Z, y=y, dims=dims).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the scatter plot.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on. None makes a new figure.

        Returns
        -------
        self : LatentSpaceDisplay
            The display, with ``scatters_``, ``colorbar_``, ``ax_`` and
            ``figure_``.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> import numpy as np
        >>> from skvae.plotting import LatentSpaceDisplay
        >>> fig, ax = plt.subplots()
        >>> Z = np.random.default_rng(0).normal(size=(30, 1))
        >>> disp = LatentSpaceDisplay(Z).plot(ax=ax)
        >>> disp.ax_ is ax
        True
        """
        plt = _pyplot(f"{type(self).__name__}.plot")
        from matplotlib import colormaps

        Z = np.asarray(self.Z)
        if Z.ndim != 2:
            raise ValueError(f"Z must be a 2-D array; got shape {Z.shape}.")
        dims = _resolve_dims(self.dims, Z.shape[1])
        y = None if self.y is None else _check_labels(self.y, Z.shape[0])
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 5), layout="constrained")
        self.ax_ = ax
        self.figure_ = ax.figure
        self.colorbar_ = None
        horizontal = Z[:, dims[0]]
        vertical = Z[:, dims[1]] if len(dims) == 2 else None
        style = dict(s=8, alpha=0.8)

        if y is None:
            if vertical is None:
                vertical = np.zeros_like(horizontal)
                ax.set_yticks([])
            self.scatters_ = [ax.scatter(horizontal, vertical, **style)]
        elif _is_continuous(y):
            if vertical is None:
                vertical = y
                ax.set_ylabel("y")
            scatter = ax.scatter(horizontal, vertical, c=y, cmap="viridis", **style)
            self.scatters_ = [scatter]
            self.colorbar_ = self.figure_.colorbar(scatter, ax=ax, label="y")
        else:
            classes = np.unique(y)
            cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
            self.scatters_ = []
            for k, label in enumerate(classes):
                rows = y == label
                position = (
                    np.full(rows.sum(), k) if vertical is None else vertical[rows]
                )
                self.scatters_.append(
                    ax.scatter(
                        horizontal[rows],
                        position,
                        color=cmap(k % cmap.N),
                        label=str(label),
                        **style,
                    )
                )
            if vertical is None:
                ax.set_yticks(range(len(classes)), [str(c) for c in classes])
                ax.set_ylabel("class")
            ax.legend(
                title="y", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2
            )
        ax.set_xlabel(f"z[{dims[0]}]")
        if len(dims) == 2:
            ax.set_ylabel(f"z[{dims[1]}]")
        return self


def _quantile_grid(n_per_side: Any, quantile_range: Any) -> np.ndarray:
    """The prior's quantiles at ``n_per_side`` even steps over ``quantile_range``."""
    if (
        not isinstance(n_per_side, Integral)
        or isinstance(n_per_side, bool)
        or n_per_side < 2
    ):
        raise ValueError(
            f"n_per_side must be an integer >= 2; got n_per_side={n_per_side!r}."
        )
    quantiles = _as_list(quantile_range)
    if not (
        quantiles is not None
        and len(quantiles) == 2
        and all(isinstance(q, Real) for q in quantiles)
        and 0 < quantiles[0] < quantiles[1] < 1
    ):
        raise ValueError(
            "quantile_range must be (q0, q1) with 0 < q0 < q1 < 1; got "
            f"quantile_range={quantile_range!r}."
        )
    return norm.ppf(np.linspace(*quantiles, n_per_side))


def _check_grid(grid: Any) -> np.ndarray:
    """``grid`` as a float array: at least 2 finite, strictly increasing values."""
    try:
        values = np.asarray(_as_list(grid), dtype=float)
    except (TypeError, ValueError):
        values = None
    if (
        values is None
        or values.ndim != 1
        or len(values) < 2
        or not np.isfinite(values).all()
        or np.any(np.diff(values) <= 0)
    ):
        raise ValueError(
            "grid must hold at least 2 finite, strictly increasing latent values; "
            f"got grid={grid!r}."
        )
    return values


def _resolve_dims(dims: Any, latent_dim: int) -> tuple:
    """``dims`` validated for LatentSpaceDisplay, with None's default filled in."""
    if dims is None:
        dims = (0, 1) if latent_dim >= 2 else (0,)
    return _check_dims(dims, latent_dim, (1, 2))


def _check_labels(y: Any, n_samples: int) -> np.ndarray:
    """``y`` as a 1-D array with one entry per row."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D; got shape {y.shape}.")
    if len(y) != n_samples:
        raise ValueError(
            f"y has {len(y)} entries, but X has {n_samples} rows; they must match."
        )
    return y


def _is_continuous(y: np.ndarray) -> bool:
    """Whether numeric ``y`` has too many distinct values for a legend."""
    return y.dtype.kind in "iuf" and len(np.unique(y)) > _MAX_CLASSES
