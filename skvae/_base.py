"""What every skvae estimator shares: parameters, fitting, encoding and scoring.

``BaseVAE`` holds the model's parameters and their constraints, ``fit`` and
``partial_fit``, the fitted state, ``transform`` (latent means) and the likelihood
scores; each member of the family (``VAETransformer``, ...) adds only its own face.
It is the only place that turns numpy into tensors and back.
"""

import contextlib
import functools
import math
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
)
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from skvae._gradients import unsupported_reason
from skvae._likelihoods import (
    GAUSSIAN_MIN_VARIANCE,
    LIKELIHOODS,
    SUPPORT_TOLERANCE,
    Mixed,
)
from skvae._model import ACTIVATIONS, VAEConfig, build_vae
from skvae._objectives import (
    OBJECTIVES,
    elbo,
    encode_observed,
    gaussian_kl_per_dimension,
    importance_log_likelihood,
)
from skvae._table import Table, uses_table
from skvae._torch_utils import (
    as_rows,
    batched,
    make_generator,
    module_for_inference,
    resolve_device,
    standard_normal_chunks,
    standard_normal_draws,
    to_numpy,
)
from skvae._training import (
    GRADIENTS,
    OPTIMIZERS,
    History,
    StopRule,
    choose_gradient,
    choose_threads,
    make_optimizer,
    make_step,
    move_optimizer_state,
    set_hyperparameters,
    train,
)
from skvae._warnings import emit

#: Rows of the training set on which convergence is judged when early_stopping=False.
_MAX_MONITOR_ROWS = 5000
#: Quasi-random draws per row behind score_samples (a power of two, for Sobol points).
_N_SCORE_DRAWS = 128
#: Seed of the fixed draws shared by every row in score_samples and
#: log_marginal_likelihood; fixed so that scores are deterministic and row-independent.
_SCORE_SEED = 0
#: Upper bound on the values (draws x rows x features) decoded at once by the
#: deterministic estimates (score_samples, log_marginal_likelihood, VAEImputer's
#: conditional means). 2**19 float32 values (2 MiB) stay in the cores' caches
#: between the decoder's matmul and the likelihood's elementwise passes:
#: score_samples of 2,000 MNIST rows (784-500-2) took 1.57 s against 2.58 s at
#: 2**22 (AMD EPYC, 2 threads, interleaved runs).
_SCORE_CHUNK = 2**19
#: The same bound for random draws (conditional sampling, VAEImputer's
#: sample_posterior): kept at its first value, because the chunks set the order in
#: which draws are taken from the generator, and so which draws a seed gives.
_DRAW_CHUNK = 2**22
#: Values per block when checks scan X: bounds their temporaries to 2 MiB in float64
#: (X can be a memory map larger than memory).
_SCAN_CHUNK = 2**18
#: likelihood="auto" takes the Bernoulli decoder for X in [0, 1] with at least this
#: share of its entries at 0 or 1 (binary data; images on a blank background: 82% of
#: MNIST's pixels, 58% of the digits' / 16), the Gaussian one otherwise (min-max
#: scaled tables hold about 1%): ``benchmarks/defaults.py decoder`` measured the
#: Bernoulli decoder ahead on MNIST and far behind on min-max scaled wine.
_AUTO_BERNOULLI_AT_ENDS = 0.5
#: Fewer validation rows than this make early_stopping warn: with 12 and 14 (iris,
#: wine) it cost up to 0.11 of held-out accuracy; with 34 and 43 (diabetes,
#: breast_cancer) nothing (``benchmarks/defaults.py early-stopping``).
_MIN_VALIDATION_ROWS = 30
#: fit warns when, with a Gaussian decoder, a column's mean or standard deviation
#: exceeds this in absolute value, or a non-constant column's standard deviation is
#: below the floor's. ``benchmarks/defaults.py scale``: standardised wine and
#: breast_cancer fit well scaled by 0.1 to 3 or shifted by 3; scaled by 10 (wine)
#: or shifted by 10, worse; scaled by 100 or 0.01, or as they come, badly.
_MAX_GAUSSIAN_SCALE = 5.0
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_SEED_MAX = np.iinfo(np.int32).max
_TORCH_DTYPES = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


class _Count(Interval):
    """An interval of ints that, unlike ``Interval(Integral, ...)``, refuses bools."""

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 (not a bool); got {value!r}.")


def _thread_limit(n_threads):
    """Intra-op threads at most ``n_threads`` for the block (None: unchanged).

    A bound, never a raise: torch's own setting (``OMP_NUM_THREADS``,
    ``torch.set_num_threads``, an enclosing limit) is kept where it is lower.
    threadpoolctl sets torch's OpenMP pool for the block and restores it after, so
    torch's process-wide setting is never changed.
    """
    if n_threads is None:
        return contextlib.nullcontext()
    limit = min(n_threads, torch.get_num_threads())
    return threadpool_limits(limits=limit, user_api="openmp")


def _limit_threads(method):
    """Run an inference method within ``n_threads`` intra-op threads, when set."""

    @functools.wraps(method)
    def limited(self, *args, **kwargs):
        with _thread_limit(self.n_threads):
            return method(self, *args, **kwargs)

    return limited


def _row_blocks(X):
    """X in blocks of rows of at most about _SCAN_CHUNK values (views, not copies)."""
    step = max(1, _SCAN_CHUNK // max(1, X.shape[1]))
    for start in range(0, len(X), step):
        yield X[start : start + step]


def _observed_counts(X):
    """How many entries of each column are observed (not NaN), scanned in blocks."""
    return sum(
        len(block) - np.count_nonzero(np.isnan(block), axis=0)
        for block in _row_blocks(X)
    )


def _observed_range(X, axis=None):
    """The smallest and largest observed values (of each column with ``axis=0``),
    NaN where nothing is observed: fmin and fmax skip NaN, and copy nothing."""
    return np.fmin.reduce(X, axis=axis), np.fmax.reduce(X, axis=axis)


class _Scan(NamedTuple):
    """What one pass over X tells: whether it holds no NaN, and its smallest and
    largest observed values (NaN where nothing is observed)."""

    complete: bool
    low: float
    high: float


def _scan(X):
    """X's :class:`_Scan`, in one pass where X can be read as a tensor.

    ``torch.aminmax`` finds both ends at once, and a NaN anywhere makes them NaN,
    so complete data (the common case) are read once; only X with NaN is read
    again, by the NaN-skipping reductions of :func:`_observed_range`. What torch
    cannot wrap without a copy or a warning (a read-only memory map, negative
    strides, another byte order) is reduced by numpy instead.
    """
    if X.size == 0:
        return _Scan(True, math.nan, math.nan)
    if X.flags.writeable and X.dtype.isnative and min(X.strides) >= 0:
        low, high = (float(v) for v in torch.aminmax(torch.from_numpy(X)))
    else:
        low, high = float(X.min()), float(X.max())
    if not (math.isnan(low) or math.isnan(high)):
        return _Scan(True, low, high)
    low, high = _observed_range(X)
    return _Scan(False, float(low), float(high))


class _Inference(NamedTuple):
    """What inference over checked rows needs: the fitted module in the rows'
    dtype on the inference device, the rows (a tensor, or a memory map read in
    batches), and whether they are complete (no NaN, no column read as missing),
    so that no batch is searched for missing values."""

    module: torch.nn.Module
    rows: object
    dtype: torch.dtype
    device: torch.device
    complete: bool


def _column_moments(X, counts):
    """Each column's mean and standard deviation over its ``counts`` observed
    entries, in float64 (0 for a column with none), scanned in blocks."""
    n = np.maximum(counts, 1)
    sums = sum(np.nansum(block, axis=0, dtype=np.float64) for block in _row_blocks(X))
    mean = sums / n
    squares = sum(
        np.nansum(np.square(block - mean), axis=0) for block in _row_blocks(X)
    )
    return mean, np.sqrt(squares / n)


def _nan_to_neg_inf(values):
    """NaN scores as -inf: see ``score_samples``."""
    return torch.nan_to_num(values, nan=-math.inf, posinf=math.inf, neginf=-math.inf)


class BaseVAE(BaseEstimator):
    """Base class of skvae's estimators; not for direct use.

    See :class:`skvae.VAETransformer` for the parameters and fitted attributes.
    """

    _parameter_constraints: dict = {
        "latent_dim": [_Count(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", _Count(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "likelihood": [StrOptions({"auto", *LIKELIHOODS})],
        "min_variance": [Interval(Real, 0, None, closed="neither")],
        "objective": [StrOptions(set(OBJECTIVES))],
        "beta": [Interval(Real, 0, None, closed="left")],
        "n_mc_samples": [_Count(Integral, 1, None, closed="left")],
        "batch_size": [_Count(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [_Count(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [_Count(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "gradient": [StrOptions(set(GRADIENTS))],
        "n_threads": [None, _Count(Integral, 1, None, closed="left")],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "column_types": [None, dict],
    }

    def __init__(
        self,
        latent_dim=2,
        *,
        hidden_layer_sizes=(100,),
        activation="tanh",
        likelihood="auto",
        min_variance=GAUSSIAN_MIN_VARIANCE,
        objective="elbo",
        beta=1.0,
        n_mc_samples=1,
        batch_size=100,
        learning_rate_init=1e-3,
        max_iter=200,
        optimizer="adam",
        alpha=1e-4,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        warm_start=False,
        gradient="auto",
        n_threads=None,
        device="cpu",
        random_state=None,
        verbose=0,
        column_types=None,
    ):
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.min_variance = min_variance
        self.objective = objective
        self.beta = beta
        self.n_mc_samples = n_mc_samples
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.alpha = alpha
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.gradient = gradient
        self.n_threads = n_threads
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.column_types = column_types

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE to X by maximising the ELBO.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, dense, float64 or float32 (other numeric types are cast
            to float64). Trained in float32; see the README for why.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        fresh = not (self.warm_start and hasattr(self, "module_"))
        _, notes = self._fit(X, fresh=fresh)
        emit(notes)
        return self

    @torch.inference_mode(False)  # ordinary tensors whatever the caller's mode
    @torch.enable_grad()
    def _fit(self, X, fresh: bool, rows: np.ndarray | None = None):
        """``fit``'s body: a new model if ``fresh``, else a warm start.

        ``rows`` (indices), if given, selects the rows trained on, after X as a
        whole has been validated (and its feature names recorded). Returns the
        training's ``Outcome`` and its warnings as ``(category, message)`` pairs,
        for the caller to emit (see ``skvae._warnings.emit``), so that a fit made
        of several trainings warns once of each thing.
        """
        self._check_gradient()
        if not fresh:
            self._check_warm_start()
        notes = []
        # Every fit, warm or fresh, decides afresh which columns are empty.
        X, likelihood, clip, complete = self._validate_training_data(
            X, reset=fresh, notes=notes, find_empty=True
        )
        device = resolve_device(self.device)
        # Rows as a tensor, or read batch by batch from a memory map (as_rows' rule).
        X_t = as_rows(X, torch.float32, device, clip, self._unfitted_columns())
        if rows is not None:
            X_t = X_t[torch.as_tensor(rows)]
        n_samples = len(X_t)
        n_val = int(np.ceil(self.validation_fraction * n_samples))
        if self.early_stopping and n_samples - n_val < 1:
            raise ValueError(
                "early_stopping=True needs at least 2 samples (one to train on, one "
                f"to validate on); got n_samples={n_samples}."
            )
        if self.early_stopping and n_val < _MIN_VALIDATION_ROWS:
            notes.append(
                (
                    UserWarning,
                    f"early_stopping=True holds out only {n_val} rows "
                    f"(validation_fraction={self.validation_fraction} of {n_samples})"
                    " to decide when to stop; on so few rows it often stops too early "
                    "(benchmarks/defaults.py: held-out accuracy fell by up to 0.11 on "
                    "iris and wine). Use early_stopping=False, or a larger "
                    "validation_fraction.",
                )
            )
        if fresh:
            self._initialize(X, device, likelihood)
        else:
            set_hyperparameters(self.optimizer_, self.learning_rate_init, self.alpha)
        if self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_ = []

        generator = self._training_generator(device)
        # The first fit draws its split from the training generator, seeded with
        # _seed; a warm start draws it from a new generator with that same seed, so
        # the model keeps one validation split (for a given n_samples) for life.
        split = generator if fresh else make_generator(self._seed, device)
        order = torch.randperm(n_samples, generator=split, device=device)
        if self.early_stopping:
            X_monitor, X_train = X_t[order[:n_val]], X_t[order[n_val:]]
        else:
            X_monitor, X_train = X_t[order[:_MAX_MONITOR_ROWS]], X_t
        # Fixed draws for the monitored loss: n_mc_samples per row, as in training.
        eps_monitor = torch.randn(
            (self.n_mc_samples, len(X_monitor), self.latent_dim),
            generator=generator,
            dtype=torch.float32,
            device=device,
        )
        # tol is per feature: the loss sums over features, so one tolerance then
        # means the same for 4 features and for 784.
        stop_rule = StopRule(
            tol=self.tol * self.n_features_in_, patience=self.n_iter_no_change
        )
        outcome = self._train(
            X_train,
            generator,
            device,
            self.max_iter,
            X_monitor,
            eps_monitor,
            stop_rule,
            complete=complete,
            notes=notes,
        )
        if self.early_stopping and outcome.best_bound is not None:
            self.best_validation_score_ = outcome.best_bound
        if not (outcome.converged or outcome.diverged or outcome.interrupted):
            watched = "validation loss" if self.early_stopping else "training loss"
            notes.append(
                (
                    ConvergenceWarning,
                    f"{type(self).__name__} stopped at max_iter={self.max_iter} "
                    f"epochs while its {watched} was still improving by more than "
                    f"tol={self.tol} nats per feature and epoch over the last "
                    f"n_iter_no_change={self.n_iter_no_change} epochs. Increase "
                    "max_iter to train longer.",
                )
            )
        return outcome, notes

    @_fit_context(prefer_skip_nested_validation=True)
    @torch.inference_mode(False)
    @torch.enable_grad()
    def partial_fit(self, X, y=None):
        """Run one epoch of minibatch steps over X, keeping the optimizer's state.

        The first call initialises the model. No rows are held out and no stopping
        rule applies (``early_stopping`` and ``max_iter`` are ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated estimator.
        """
        self._check_gradient()
        first = not hasattr(self, "module_")
        if not first:
            self._check_warm_start()
        notes = []
        X, likelihood, clip, complete = self._validate_training_data(
            X, reset=first, notes=notes, find_empty=first
        )
        device = resolve_device(self.device)
        if first:
            self._initialize(X, device, likelihood)
        else:
            set_hyperparameters(self.optimizer_, self.learning_rate_init, self.alpha)
        generator = self._training_generator(device)
        X_t = as_rows(X, torch.float32, device, clip, self._unfitted_columns())
        self._train(X_t, generator, device, 1, complete=complete, notes=notes)
        emit(notes)
        return self

    def _validate_training_data(self, X, reset, notes, find_empty):
        """X checked for training; the likelihood's name, resolved from X by
        ``likelihood="auto"``'s rule for a new model, the fitted one's otherwise;
        the bounds X is to be clipped to (see ``_check_support``); and whether X
        is complete (has no missing values). With ``find_empty``, the columns X
        leaves empty become the model's unfitted ones (``_unfitted_columns``).
        Warnings about X go to ``notes``."""
        X = self._validate_X(X, reset=reset)
        scan = _scan(X)
        counts = np.full(X.shape[1], len(X)) if scan.complete else _observed_counts(X)
        self._check_observed(X, counts, find_empty, notes)
        if X.dtype == np.float64:
            self._check_float32_range(X, scan)
        if reset:
            likelihood = self._choose_likelihood(X, counts, scan)
        else:
            likelihood = self.likelihood_
        if reset and likelihood == "gaussian":
            self._check_scale(X, counts, notes)
        hidden = self._unfitted_columns()
        # A table's columns were checked against their likelihoods as it encoded them.
        clip = None
        if self._table is None:
            clip, _ = self._check_support(X, LIKELIHOODS[likelihood](), hidden, scan)
        complete = hidden is None and scan.complete
        return X, likelihood, clip, complete

    def _validate_X(self, X, reset):
        """``validate_data`` with float dtypes, and NaN (missing values) where the
        estimator's tags allow it; inf never. A data frame with columns that are
        not numbers (or any frame, with ``column_types``) is read through a
        ``Table``, fitted when ``reset``: its float64 matrix comes back."""
        allow_nan = self.__sklearn_tags__().input_tags.allow_nan
        if reset:
            self._table = None
            if uses_table(X, self.column_types):
                self._table = Table.fit(X, self.column_types)
            elif self.column_types is not None:
                raise ValueError(
                    "column_types names the types of a data frame's columns, but X "
                    f"is a {type(X).__name__}: pass a pandas or polars DataFrame, or "
                    "leave column_types=None."
                )
        if self._table is None:
            return validate_data(
                self,
                X,
                dtype=[np.float64, np.float32],
                ensure_all_finite="allow-nan" if allow_nan else True,
                reset=reset,
            )
        validate_data(self, X, skip_check_array=True, reset=reset)
        X = self._table.encode(X)
        if len(X) == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of "
                "1 is required."
            )
        if not allow_nan and np.isnan(X).any():
            raise ValueError(
                f"Input X contains NaN: {type(self).__name__} does not accept "
                "missing values."
            )
        return X

    def _check_observed(self, X, counts, find_empty, notes):
        """Refuse X with nothing observed, and closed-form gradients for missing
        values; with ``find_empty``, record the columns never observed and warn of
        them (as SimpleImputer), in ``notes``."""
        if counts.sum() == 0:
            raise ValueError(
                f"X has no observed values: all {X.size} of its entries are missing "
                f"({self._missing_marker()}), so there is nothing to learn from."
            )
        if self.gradient == "closed_form" and np.any(counts < len(X)):
            raise ValueError(
                "gradient='closed_form' cannot be used: X has missing values "
                f"({self._missing_marker()}), which only autograd trains (the "
                "hand-written pass computes the gradient for complete rows). Use "
                "gradient='auto' or 'autograd'."
            )
        if find_empty:
            self._empty_features = counts == 0
            self._missing_share = 1.0 - counts / len(X)
        if find_empty and np.any(counts == 0):
            empty = np.flatnonzero(counts == 0)
            if self._table is not None:  # the frame's columns of those entries
                empty = np.unique(self._table.entry_columns()[empty])
            names = getattr(self, "feature_names_in_", None)
            shown = empty.tolist() if names is None else names[empty].tolist()
            notes.append(
                (
                    UserWarning,
                    f"Columns {shown} of X have no observed values (all missing): the "
                    f"model learns nothing about them; {self._empty_features_effect()}",
                )
            )

    def _empty_columns(self):
        """A mask of X's columns with nothing observed in the last ``fit``: its
        entries', or a table's columns of those entries."""
        if self._table is None:
            return self._empty_features
        empty = np.zeros(self.n_features_in_, dtype=bool)
        empty[self._table.entry_columns()[self._empty_features]] = True
        return empty

    def _missing_marker(self):
        """How X marks a missing value, for messages."""
        return "NaN"

    def _unfitted_columns(self):
        """A mask of the columns with nothing observed in the last ``fit`` (or the
        first ``partial_fit``), or None if there are none. The model learned
        nothing about them, so whatever they hold later is read as missing: it
        neither steers the encoder nor enters a likelihood (as scikit-learn's
        imputers ignore such a column)."""
        empty = self._empty_features
        return empty if empty.any() else None

    def _empty_features_effect(self):
        """What becomes of features with nothing observed in fit (the warning's
        end)."""
        return (
            "what it decodes there is its untrained guess. Drop them, or fit on "
            "data where they are observed."
        )

    def _check_scale(self, X, counts, notes):
        """Warn (in ``notes``) when a column of X is far from the unit scale the
        Gaussian decoder is built for (see _MAX_GAUSSIAN_SCALE); a constant column
        needs no spread, and a column never observed has none."""
        mean, std = _column_moments(X, counts)
        large = np.maximum(np.abs(mean), std)
        # Constant by its values: a constant's computed std can be 1e-17, not 0.
        low, high = _observed_range(X, axis=0)
        varying = high > low  # False where nothing is observed (NaN)
        small = np.where(varying, std, np.inf)
        if large.max() > _MAX_GAUSSIAN_SCALE:
            column = int(np.argmax(large))
            n_large = np.count_nonzero(large > _MAX_GAUSSIAN_SCALE)
            problem = (
                f"column {column} has mean {mean[column]:.4g} and standard deviation "
                f"{std[column]:.4g}, and {n_large} of {X.shape[1]} columns exceed "
                f"{_MAX_GAUSSIAN_SCALE:g} in either"
            )
        elif small.min() < (min_std := math.sqrt(self.min_variance)):
            column = int(np.argmin(small))
            problem = (
                f"column {column} has standard deviation {std[column]:.3g}, and "
                f"{np.count_nonzero(small < min_std)} of {X.shape[1]} "
                f"columns vary by less than {min_std:.3g}, the smallest "
                "standard deviation the decoder can express"
            )
        else:
            return
        notes.append(
            (
                UserWarning,
                f"X is far from unit scale: {problem}. The Gaussian decoder learns "
                "such data poorly (its initial weights and its variance floor, "
                f"min_variance={self.min_variance:g}, assume "
                "features of unit scale): standardise X first, e.g. make_pipeline("
                "StandardScaler(), VAETransformer(...)), or for data in [0, 1] mostly "
                'at its ends, such as images, use likelihood="bernoulli".',
            )
        )

    def _choose_likelihood(self, X, counts, scan):
        """``likelihood``, resolved by "auto"'s rule (see ``VAETransformer``) from
        X's observed entries (``counts`` per column; ``scan``, X's :func:`_scan`)."""
        if self._table is not None:
            if self.likelihood != "auto":
                raise ValueError(
                    f"likelihood={self.likelihood!r} cannot model a data frame with "
                    "columns of several types: with likelihood='auto', each column "
                    "gets its type's likelihood (column_types overrides a column's "
                    "type)."
                )
            return Mixed.name
        if self.likelihood != "auto":
            return self.likelihood
        bernoulli = LIKELIHOODS["bernoulli"]()
        if bernoulli.support_error(scan.low, scan.high) is not None:
            return "gaussian"
        # Within the tolerance that clipping allows, as rounding leaves them.
        low, high = 0.0 + SUPPORT_TOLERANCE, 1.0 - SUPPORT_TOLERANCE
        at_ends = sum(
            np.count_nonzero((block <= low) | (block >= high))
            for block in _row_blocks(X)
        )
        at_ends /= counts.sum()  # NaN compares False: never at an end
        return "bernoulli" if at_ends >= _AUTO_BERNOULLI_AT_ENDS else "gaussian"

    def _check_float32_range(self, X, scan):
        # Training runs in float32: a finite float64 value beyond its range would
        # become inf there. The scan's ends clear nearly every X at once.
        if not (-scan.low > _FLOAT32_MAX or scan.high > _FLOAT32_MAX):
            return
        low, high = _observed_range(X, axis=0)
        too_large = (high > _FLOAT32_MAX) | (low < -_FLOAT32_MAX)
        if too_large.any():
            column = int(np.flatnonzero(too_large)[0])
            value = float(X[np.nanargmax(np.abs(X[:, column])), column])
            name = ""
            if hasattr(self, "feature_names_in_"):
                name = f" ({self.feature_names_in_[column]!r})"
            raise ValueError(
                f"Column {column}{name} of X holds {value!r}, beyond float32's range "
                f"(+-{_FLOAT32_MAX:.4g}), in which training runs. Scale X (e.g. with "
                "StandardScaler)."
            )

    def _check_gradient(self):
        # Before anything is fitted: the estimator's own model is always one the
        # hand-written pass knows, so only the objective can rule it out.
        reason = unsupported_reason(self.objective)
        if self.gradient == "closed_form" and reason is not None:
            raise ValueError(
                f"gradient='closed_form' cannot be used: {reason}. Use "
                "gradient='auto' or 'autograd'."
            )

    def _check_support(self, X, likelihood, hidden=None, scan=None):
        """Refuse X outside the likelihood's support. Return the bounds to clip X
        to where it lies just outside it (within the tolerance: rounding), else
        None; and whether X is complete: no missing value (NaN), no column read as
        missing. Only observed entries count, outside the ``hidden`` columns (read
        as missing): X with none (all NaN) needs no clipping. ``scan`` is X's
        :func:`_scan`, where the caller has it."""
        if hidden is None:
            complete, x_min, x_max = _scan(X) if scan is None else scan
        else:
            complete = False
            low, high = (v[~hidden] for v in _observed_range(X, axis=0))
            x_min, x_max = float(np.fmin.reduce(low)), float(np.fmax.reduce(high))
        if math.isnan(x_min):
            return None, complete
        error = likelihood.support_error(x_min, x_max)
        if error is not None:
            raise ValueError(error)
        low, high = likelihood.support
        return ((low, high) if x_min < low or x_max > high else None), complete

    def _config(self, n_features, likelihood):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
        if not all(
            isinstance(s, Integral) and not isinstance(s, bool) and s >= 1
            for s in sizes
        ):
            raise InvalidParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be "
                "a positive int or a sequence of positive ints. Got "
                f"{self.hidden_layer_sizes!r} instead."
            )
        return VAEConfig(
            n_features=n_features,
            latent_dim=self.latent_dim,
            hidden_layer_sizes=tuple(int(s) for s in sizes),
            activation=self.activation,
            likelihood=likelihood,
            min_variance=float(self.min_variance),
            columns=() if self._table is None else self._table.column_models(),
        )

    def _initialize(self, X, device, likelihood):
        config = self._config(X.shape[1], likelihood)
        init_seed, self._seed = check_random_state(self.random_state).randint(
            _SEED_MAX, size=2
        )
        self.module_ = build_vae(config, make_generator(init_seed, torch.device("cpu")))
        self.optimizer_ = self._new_optimizer(device)
        self._rng_state = None
        self._fit_dtype = X.dtype
        self.loss_curve_ = []
        self.reconstruction_curve_ = []
        self.kl_curve_ = []
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = None
        self.n_iter_ = 0

    def _new_optimizer(self, device):
        # Fused steps are fastest on the CPU; on CUDA torch's default (foreach) is
        # fast and avoids fused kernels that older torch versions lack there.
        return make_optimizer(
            self.module_,
            self.optimizer,
            self.learning_rate_init,
            self.alpha,
            fused=device.type == "cpu",
        )

    def _check_warm_start(self):
        # "auto" continues with what it chose; any other value must match it.
        likelihood = self.likelihood_ if self.likelihood == "auto" else self.likelihood
        config = self._config(self.module_.config.n_features, likelihood)
        if config != self.module_.config or not isinstance(
            self.optimizer_, OPTIMIZERS[self.optimizer]
        ):
            raise ValueError(
                "partial_fit and warm_start=True continue the fitted model, so "
                "latent_dim, hidden_layer_sizes, activation, likelihood, "
                "min_variance and optimizer "
                f"must stay as they were ({self.module_.config}, optimizer="
                f"{type(self.optimizer_).__name__}); call fit with warm_start=False "
                "to start afresh."
            )

    def _training_generator(self, device):
        generator = torch.Generator(device=device)
        if self._rng_state is not None and self._rng_state[0] == device.type:
            return generator.set_state(self._rng_state[1])
        # First epoch, or the device changed: a generator's state is device-specific.
        return generator.manual_seed(int(self._seed) + self.n_iter_)

    def _train(
        self,
        X_train,
        generator,
        device,
        max_epochs,
        X_monitor=None,
        eps_monitor=None,
        stop_rule=None,
        complete=True,
        *,
        notes,
    ):
        """Train for at most ``max_epochs``; the ``Outcome``, with warnings about
        it (interrupted, diverged) appended to ``notes``."""
        history = History(
            loss=self.loss_curve_,
            reconstruction=self.reconstruction_curve_,
            kl=self.kl_curve_,
            validation=self.validation_scores_,
        )
        self.gradient_ = choose_gradient(
            self.gradient, self.module_, self.objective, device, complete
        )
        batch_size = min(self.batch_size, len(X_train))
        self.n_threads_ = choose_threads(
            self.n_threads, self.module_, batch_size, self.n_mc_samples
        )
        epoch_kwargs = dict(
            step=make_step(self.gradient_, self.objective, complete),
            batch_size=batch_size,
            beta=self.beta,
            n_mc_samples=self.n_mc_samples,
            shuffle=self.shuffle,
            generator=generator,
        )
        # Fitted state lives on the CPU; only another device needs it moved there
        # and back (a state_dict round trip per call otherwise spent for nothing).
        on_cpu = device.type == "cpu"
        if not on_cpu:
            self.module_.to(device)
            move_optimizer_state(self.optimizer_)
        try:
            with _thread_limit(self.n_threads_):
                outcome = train(
                    self.module_,
                    self.optimizer_,
                    X_train,
                    X_monitor,
                    eps_monitor,
                    max_epochs=max_epochs,
                    stop_rule=stop_rule,
                    early_stopping=self.early_stopping and stop_rule is not None,
                    history=history,
                    epoch_kwargs=epoch_kwargs,
                    objective=self.objective,
                    log=print if self.verbose else None,
                    first_epoch=self.n_iter_ + 1,
                    complete=complete,
                )
        finally:
            if not on_cpu:
                self.module_.to("cpu")
                move_optimizer_state(self.optimizer_)
        first_epoch = self.n_iter_ + 1
        self.n_iter_ += outcome.epochs
        self._rng_state = (device.type, generator.get_state())
        if outcome.interrupted:
            notes.append((UserWarning, "Training interrupted by user."))
        if outcome.diverged:
            # Its moments hold the runaway steps: start it afresh.
            self.optimizer_ = self._new_optimizer(device)
            notes.append(
                (ConvergenceWarning, self._divergence_message(outcome, first_epoch))
            )
        return outcome

    def _divergence_message(self, outcome, first_epoch):
        epoch = self.n_iter_ + 1
        if outcome.diverged == "exploded":
            what = (
                f"The training loss diverged in epoch {epoch} (to "
                f"{outcome.diverged_loss:.4g} nats per row, from "
                f"{min(self.loss_curve_[first_epoch - 1 :]):.4g} at best)"
            )
        else:
            what = f"The training loss became NaN or infinite in epoch {epoch}"
        if outcome.restored_epoch > 0:
            kept = (
                "the weights of its best epoch so far (epoch "
                f"{first_epoch - 1 + outcome.restored_epoch}) were kept"
            )
        elif self.n_iter_ > 0:
            kept = f"the weights it had after epoch {self.n_iter_} were kept"
        else:
            kept = "no epoch finished, so the model is untrained (its initial weights)"
        return (
            f"{what}; training stopped and {kept}. Lower learning_rate_init (now "
            f"{self.learning_rate_init}) or scale X (e.g. with StandardScaler)."
        )

    @property
    def column_types_(self):
        """Each column's type, by name, for a model of a frame's columns; else None."""
        return None if self._table is None else self._table.kinds

    def _as_output(self, values, given=None):
        """Values in the model's space as the user's: the fitted table's frame, or
        the array itself; the ``given`` columns (from ``_read_conditions``) hold
        exactly the values given."""
        if self._table is not None:
            return self._table.decode(values, given=given)
        for j, value in (given or {}).items():
            values[:, j] = value
        return values

    def _with_missing(self, values, generator):
        """``values`` (rows in the model's space) with each column's cells missing
        (NaN) at the share it had missing in fit, independently, by ``generator``."""
        share, entry_column = self._missing_share, np.arange(values.shape[1])
        if self._table is not None:
            share = share[self._table.first_entries()]
            entry_column = self._table.entry_columns()
        u = torch.rand(
            (len(values), len(share)), generator=generator, dtype=torch.float64
        )
        missing = u.numpy() < share
        return np.where(missing[:, entry_column], np.nan, values).astype(values.dtype)

    def _read_conditions(self, conditions, n_samples):
        """The rows that ``sample``'s ``conditions`` give, in the model's space (NaN
        where nothing is given), and the given values for ``_as_output``."""
        if self._table is not None:
            given = self._table.read_given(conditions, n_samples)
            return self._table.encode_given(given, n_samples), given
        if not isinstance(conditions, dict):
            raise TypeError(
                "For a model of an array, conditions is a dict from features (names, "
                f"or indices) to values; got {type(conditions).__name__}."
            )
        names = list(getattr(self, "feature_names_in_", []))
        given = {}
        for key, value in conditions.items():
            if key in names:
                j = names.index(key)
            elif isinstance(key, Integral) and 0 <= key < self.n_features_in_:
                j = int(key)
            else:
                raise ValueError(
                    f"Conditions name a feature the model does not have: {key!r}; it "
                    f"has {self.n_features_in_} (by index, or by feature_names_in_)."
                )
            if not (isinstance(value, Real) and math.isfinite(value)):
                raise ValueError(
                    f"The value given for feature {key!r} must be a finite number; "
                    f"got {value!r}."
                )
            given[j] = value
        partial = np.full((n_samples, self.n_features_in_), np.nan)
        for j, value in given.items():
            partial[:, j] = value
        self._check_support(partial, self.module_.likelihood)  # refuses, or passes
        return partial, given

    @property
    def likelihood_(self):
        """The fitted decoder's distribution: ``likelihood``, or what "auto" chose."""
        return self.module_.config.likelihood

    # ---------------------------------------------------------------- inference

    def _inference_module(self, np_dtype, device=None):
        """The fitted module in ``np_dtype`` on the inference device."""
        if device is None:
            use_gpu = self.device != "cpu" and torch.cuda.is_available()
            device = torch.device("cuda" if use_gpu else "cpu")
        dtype = _TORCH_DTYPES[np.dtype(np_dtype)]
        return module_for_inference(self.module_, dtype, device), dtype, device

    def _inference_setup(self, X, dtype=None):
        """X checked, and the :class:`_Inference` over it: the fitted module in
        ``dtype`` (default: X's float dtype), X's rows in that dtype."""
        check_is_fitted(self)
        return self._inference_rows(self._validate_X(X, reset=False), dtype)

    def _inference_rows(self, X, dtype=None):
        """``_inference_setup`` of an X already validated."""
        hidden = self._unfitted_columns()
        clip, complete = self._check_support(X, self.module_.likelihood, hidden)
        module, dtype, device = self._inference_module(dtype or X.dtype)
        rows = as_rows(X, dtype, device, clip, hidden)
        return _Inference(module, rows, dtype, device, complete)

    @_limit_threads
    def _latent_means(self, X):
        """E_q[z | x] of X's rows, in X's float dtype (each member's ``transform``)."""
        module, X_t, _, _, complete = self._inference_setup(X)
        return to_numpy(
            batched(lambda xb: encode_observed(module, xb, complete)[0], X_t)
        )

    @_limit_threads
    def kl_per_dimension(self, X):
        """Return the KL each latent dimension carries, averaged over X's rows.

        The mean over rows of KL(q(z_j | x) || N(0, 1)) for each dimension j, in
        nats: a dimension whose KL is near 0 keeps its posterior at the prior and
        carries no information about x (an inactive unit, in Burda et al.'s sense);
        the sum over dimensions is the ELBO's KL term.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        kl : ndarray of shape (latent_dim,)
            Mean KL per latent dimension, in X's float dtype.
        """
        module, X_t, _, _, complete = self._inference_setup(X)
        kl = batched(
            lambda xb: gaussian_kl_per_dimension(
                *encode_observed(module, xb, complete)
            ),
            X_t,
        )
        return to_numpy(kl.mean(0))

    # ------------------------------------------------------------------ scoring

    def _fixed_eps(self, n_draws, dtype, device):
        latent_dim = self.module_.config.latent_dim
        eps = standard_normal_draws(n_draws, latent_dim, _SCORE_SEED, dtype)
        return eps.to(device).unsqueeze(1)  # (n_draws, 1, latent_dim): shared by rows

    @_limit_threads
    def score_samples(self, X):
        """Return the ELBO of each row, in nats (higher is better).

        The expectation over q(z | x) uses 128 quasi-random draws, the same for
        every row and every call, and the KL in closed form; so each row's value is
        deterministic and, up to float64 rounding, independent of the other rows
        (see the README's "Deterministic, row-independent scores"). ``beta`` is
        not applied: this is the ELBO, a lower bound on log p(x). Never NaN for
        finite X: a row so far outside the training data that its computation
        overflows (inf - inf) has a vanishing density and scores -inf, the ELBO's
        limit there.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            ELBO per row, in X's float dtype.
        """
        return to_numpy(self._elbo(self._inference_setup(X)))

    def _elbo(self, setup):
        """score_samples of the rows of an :class:`_Inference`, as a tensor."""
        eps = self._fixed_eps(_N_SCORE_DRAWS, setup.dtype, setup.device)

        def row_elbo(xb):
            log_px, kl = elbo(setup.module, xb, eps, setup.complete)
            return _nan_to_neg_inf(log_px - kl)

        return batched(row_elbo, setup.rows, self._chunking(len(eps))[1])

    def score(self, X, y=None):
        """Return the mean ELBO of X's rows, in nats (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`; what ``GridSearchCV`` maximises when no
            scorer is given.
        """
        return float(np.mean(self.score_samples(X)))

    @_limit_threads
    def log_marginal_likelihood(self, X, n_samples=1000):
        """Estimate log p(x) per row by importance sampling from q(z | x).

        The estimate log (1/K) sum_k p(x, z_k) / q(z_k | x) is the IWAE bound of
        Burda et al. (2016): at least the ELBO in expectation, and tighter as K
        grows. The K draws are quasi-random, fixed, and shared by every row, so
        values are deterministic and, up to float64 rounding, row-independent.
        Cost grows linearly in K; memory does not: the draws are decoded in
        chunks of at most 2**19 values.
        Never NaN for finite X: a row whose computation overflows scores -inf.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        n_samples : int, default=1000
            Number K of importance samples per row.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Estimated log p(x) per row, in nats, in X's float dtype.
        """
        _check_count(n_samples, "n_samples")
        return to_numpy(self._log_px(self._inference_setup(X), n_samples))

    def _log_px(self, setup, n_samples):
        """log_marginal_likelihood of the rows of an :class:`_Inference`."""
        estimate = functools.partial(importance_log_likelihood, complete=setup.complete)
        return self._batched_over_draws(estimate, setup, n_samples)

    def _batched_over_draws(self, estimate, setup, n_draws):
        """``estimate(module, xb, eps)`` of each batch of the rows of an
        :class:`_Inference`, with ``n_draws`` fixed quasi-random draws shared by
        every row, passed in chunks so that a batch decodes at most _SCORE_CHUNK
        values whatever ``n_draws``. Draws of at most _SCORE_CHUNK values are made
        once for all batches; more are made again for each batch, chunk by chunk,
        so that memory stays bounded whatever ``n_draws`` (making them afresh for
        each batch of 5 MNIST rows cost 0.19 ms a batch, 3% of a score)."""
        module, X_t, dtype, device, _ = setup
        latent_dim = module.config.latent_dim
        per_chunk, rows = self._chunking(n_draws)

        def draws():
            chunks = standard_normal_chunks(
                n_draws, latent_dim, _SCORE_SEED, per_chunk, dtype
            )
            return (chunk.to(device).unsqueeze(1) for chunk in chunks)

        # The same chunks of the same draws for every batch of rows.
        kept = list(draws()) if n_draws * latent_dim <= _SCORE_CHUNK else None

        def on_batch(xb):
            return estimate(module, xb, draws() if kept is None else kept)

        return batched(on_batch, X_t, rows)

    def _chunking(self, n_draws, chunk=None):
        """How ``n_draws`` draws per row are decoded in at most ``chunk`` values
        (default _SCORE_CHUNK) at once: draws per chunk, and rows per batch."""
        chunk = _SCORE_CHUNK if chunk is None else chunk
        n_features = self.module_.config.n_features
        per_chunk = max(1, chunk // n_features)
        return per_chunk, max(1, chunk // (min(n_draws, per_chunk) * n_features))

    # ------------------------------------------------------- scikit-learn hooks

    @property
    def _n_features_out(self):
        # What ClassNamePrefixFeaturesOutMixin names: the latent dimensions.
        return self.module_.config.latent_dim

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.positive_only = self.likelihood == "bernoulli"
        tags.input_tags.allow_nan = True
        return tags
