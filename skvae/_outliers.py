"""VAEOutlierDetector: anomaly scores from the VAE's likelihood, with scikit-learn's
outlier API (``IsolationForest``'s): ``score_samples``, ``offset_``,
``decision_function``, ``predict``."""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    ClassNamePrefixFeaturesOutMixin,
    OutlierMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted

from skvae._base import (
    BaseVAE,
    _Count,
    _limit_threads,
    _observed_range,
    _row_blocks,
)
from skvae._docs import ATTRIBUTES, PARAMETERS, indent, with_defaults
from skvae._likelihoods import SUPPORT_TOLERANCE
from skvae._torch_utils import to_numpy
from skvae._warnings import emit

#: Scores never leave the finite floats: a row whose computation overflows scores
#: the lowest float64, below every row whose score is finite.
_LOWEST = float(np.finfo(np.float64).min)
#: contamination="auto" puts the threshold this many robust standard deviations
#: (1.4826 x the median absolute deviation) below the median training score.
_AUTO_ROBUST_SIGMAS = 3.0
_MAD_TO_SIGMA = 1.4826
#: Where the median absolute deviation is 0, the mean absolute deviation from the
#: median estimates the spread instead (x 1.2533 = sqrt(pi / 2), sigma for normal
#: data), as in Iglewicz and Hoaglin's modified z-scores.
_MEAN_AD_TO_SIGMA = 1.2533


def _merge_notes(first, second, n_rows, n_support):
    """The warnings of a trimmed fit's two trainings, each given once: one that
    both raised alike (X's scale, or max_iter reached in both) as it is, one that
    only one of them raised with the training it concerns."""
    labels = (
        f"the first of fit's two trainings, on all {n_rows} rows",
        f"the second of fit's two trainings, on the {n_support} rows the first "
        "found most likely",
    )
    merged = [note for note in first if note in second]
    for label, own, other in ((labels[0], first, second), (labels[1], second, first)):
        merged += [
            (c, f"{m} (This concerns {label}.)") for c, m in own if (c, m) not in other
        ]
    return merged


class VAEOutlierDetector(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, OutlierMixin, BaseVAE
):
    __doc__ = (
        "Outlier detection by a variational autoencoder's likelihood."
        """

    A row that the fitted VAE finds improbable is an anomaly: ``score_samples``
    is its log-likelihood (the importance-sampled log p(x), or the ELBO), higher
    for more normal rows, as in ``IsolationForest`` and ``LocalOutlierFactor``;
    ``decision_function`` subtracts ``offset_`` (negative: outlier) and
    ``predict`` returns -1 for outliers and +1 for inliers. Scores are computed
    in float64 with draws fixed for every row and call, so they are
    deterministic, independent of batching and of the other rows up to float64
    rounding (a row scored alone and among others can differ in the last digits,
    about 1e-14 relative: matrix products round differently for different
    numbers of rows), and finite for every finite row however far out (a row
    whose computation overflows scores the lowest float64). ``transform`` gives
    the latent means, to plot the inliers' latent space. Fit on clean data
    (novelty detection) or on data that hold a few outliers (outlier detection):
    by default ``fit`` trains twice, the second time on the 90% of rows the
    first model found most likely, so that the outliers among the training rows
    do not shape the density (see ``support_fraction``). Its learning rate is
    3e-3, not the transformer's 1e-3: a detector is fitted on a few hundred to a
    few thousand rows, on which 200 epochs at 1e-3 stop short of convergence
    (``benchmarks/outliers.py``: median ROC-AUC 0.943 fitted on data that hold
    anomalies and 0.957 on clean inliers, against 0.933 and 0.953 at 1e-3).

    Parameters
    ----------
    latent_dim : int, default=10
        Dimension of the latent space (the number of output features of
        ``transform``). 10, not the transformer's 2: a detector need not be
        plotted, and fitted on data that hold anomalies the richer model
        separated them better (``benchmarks/outliers.py``: median ROC-AUC 0.943
        against 0.911), and on clean inliers too (0.957 against 0.952).

"""
        + indent(with_defaults(PARAMETERS, learning_rate_init="3e-3"))
        + """
    contamination : "auto" or float, default="auto"
        The share of outliers expected in the training data, which sets
        ``offset_``: with a float in (0, 0.5], that share of the training rows
        score below it; with ``"auto"``, the threshold lies 3 robust standard
        deviations (1.4826 times the median absolute deviation) below the median
        training score, so rows the model finds far less likely than nearly all
        of its training data are outliers, whatever their share. Where half the
        rows or more score alike (duplicated rows), the median absolute
        deviation is 0 and 1.2533 times the mean absolute deviation from the
        median stands in for the standard deviation (Iglewicz and Hoaglin's
        rule), so not every row below the median is flagged.

    score_method : {"log_likelihood", "elbo"}, default="log_likelihood"
        What ``score_samples`` returns: ``"log_likelihood"``, the importance-
        sampled log p(x) with ``n_importance_samples`` draws per row (the IWAE
        bound, tighter than the ELBO), or ``"elbo"``, the evidence lower bound
        with 128 draws. At the default ``n_importance_samples`` both cost the
        same. Read by ``fit`` (and ``partial_fit``), as ``offset_`` is a
        threshold on the scores it defines: a change takes effect at the next
        fit.

    n_importance_samples : int, default=128
        Importance samples K per row for ``score_method="log_likelihood"``;
        read by ``fit``, as ``score_method``.

    support_fraction : float in (0, 1], default=0.9
        The share of the training rows the final VAE learns from (a trimmed
        likelihood, as ``EllipticEnvelope``'s ``support_fraction`` trims its
        covariance estimate). Below 1, ``fit`` trains a VAE on all rows, scores
        them, and trains a new VAE (from a fresh start, with the same
        ``random_state``) on the ``ceil(support_fraction * n_samples)`` rows it
        scored highest, which doubles the fitting time. With ``warm_start=True``
        on a fitted detector, ``fit`` instead scores the rows with the current
        VAE and continues training it on that support. 1 fits once on all rows,
        as does a support of every row (e.g. 0.95 of 9 rows), which a second
        training would only repeat.
        ``partial_fit`` always trains on every row it is given. 0.9 by the
        benchmark (``benchmarks/outliers.py``): fitted on data that hold
        anomalies, median ROC-AUC 0.943 against 0.922 fitting once; on clean
        inliers it costs a little (0.957 against 0.963), so set 1 when the
        training rows are known to be clean, which also halves the fitting
        time. The trimmed rows then lie off the model, so
        ``contamination="auto"`` flags more rows, inliers and anomalies alike.

    Attributes
    ----------
"""
        + indent(ATTRIBUTES)
        + """
    offset_ : float
        The threshold on ``score_samples``: ``decision_function(X) =
        score_samples(X) - offset_``, negative for outliers. Set by ``fit`` and
        ``partial_fit`` from the scores of all the rows they were given.

    support_ : ndarray of shape (n_samples,)
        A mask of the rows of ``fit``'s X that the final VAE was trained on
        (all True when ``support_fraction=1``); after ``partial_fit``, of its
        X's rows (all True).

    See Also
    --------
    sklearn.ensemble.IsolationForest : The API this detector follows.
    sklearn.neighbors.LocalOutlierFactor : A density-based detector by neighbours.
    skvae.VAETransformer : The same model as a transformer.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEOutlierDetector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 4))
    >>> detector = VAEOutlierDetector(max_iter=50, random_state=0).fit(X)
    >>> detector.predict([[0.0, 0.0, 0.0, 0.0], [8.0, -8.0, 8.0, -8.0]])
    array([ 1, -1])
    """
    )

    _parameter_constraints: dict = {
        **BaseVAE._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "score_method": [StrOptions({"log_likelihood", "elbo"})],
        "n_importance_samples": [_Count(Integral, 1, None, closed="left")],
        "support_fraction": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        latent_dim=10,
        *,
        contamination="auto",
        score_method="log_likelihood",
        n_importance_samples=128,
        support_fraction=0.9,
        hidden_layer_sizes=(100,),
        activation="tanh",
        likelihood="auto",
        min_variance=1e-3,
        objective="elbo",
        beta=1.0,
        n_mc_samples=1,
        batch_size=100,
        learning_rate_init=3e-3,
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
        super().__init__(
            latent_dim,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            likelihood=likelihood,
            min_variance=min_variance,
            objective=objective,
            beta=beta,
            n_mc_samples=n_mc_samples,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            optimizer=optimizer,
            alpha=alpha,
            shuffle=shuffle,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            warm_start=warm_start,
            gradient=gradient,
            n_threads=n_threads,
            device=device,
            random_state=random_state,
            verbose=verbose,
            column_types=column_types,
        )
        self.contamination = contamination
        self.score_method = score_method
        self.n_importance_samples = n_importance_samples
        self.support_fraction = support_fraction

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE to X (then to its most likely rows), and set ``offset_``.

        With ``support_fraction`` below 1, a second VAE is trained on the share
        of rows the first scored highest; ``offset_`` comes from the final VAE's
        scores of all of X. The fit warns once of each thing, naming the
        training a warning concerns where only one raised it; a
        ``KeyboardInterrupt`` in the first training ends the fit there, with
        the model it has and every row as support.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data: inliers only (novelty detection), or with a few
            outliers among them.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        warm = self.warm_start and hasattr(self, "module_")
        trim = self.support_fraction < 1
        if trim and self.early_stopping:
            self._check_support_size(X)
        self._scoring = (self.score_method, self.n_importance_samples)
        first, notes = None, []
        if not (warm and trim):  # a warm, trimmed fit picks its support first
            if trim and self.verbose:
                print("Training on all rows, to find the most likely ones")
            first, notes = self._fit(X, fresh=not warm)
        scores = self.score_samples(X)
        n_samples = len(scores)
        self.support_ = np.ones(n_samples, dtype=bool)
        n_support = self._n_support(n_samples)
        # Trim unless the first training was interrupted (that ends the fit), or
        # the support is every row: trained afresh, it would be the same model.
        interrupted = first is not None and first.interrupted
        if (
            trim
            and not interrupted
            and not (first is not None and n_support == n_samples)
        ):
            # A stable sort: ties keep row order, so the support is deterministic.
            highest = np.argsort(-scores, kind="stable")[:n_support]
            self.support_[:] = False
            self.support_[highest] = True
            if self.verbose:
                print(f"Training on the {n_support} most likely of {n_samples} rows")
            _, second = self._fit(X, fresh=not warm, rows=np.flatnonzero(self.support_))
            if first is None:
                notes = second
            else:
                notes = _merge_notes(notes, second, n_samples, n_support)
            scores = self.score_samples(X)
        self.offset_ = self._offset(scores)
        emit(notes)
        return self

    def _n_support(self, n_samples):
        """``ceil(support_fraction * n_samples)``, immune to the product's rounding
        (0.55 * 100 is 55.000000000000007 in floats: 55 rows, not 56)."""
        return max(1, math.ceil(self.support_fraction * n_samples * (1 - 1e-12)))

    def _check_support_size(self, X):
        """Refuse, before any training, a support too small for ``early_stopping``
        to hold out a validation row from (X's own errors come from ``_fit``)."""
        try:
            n_samples = _num_samples(X)
        except TypeError:
            return
        n_support = self._n_support(n_samples)
        if n_support - math.ceil(self.validation_fraction * n_support) < 1:
            raise ValueError(
                f"support_fraction={self.support_fraction} keeps {n_support} of the "
                f"{n_samples} rows for the second training, too few for "
                "early_stopping=True to hold out validation rows from "
                f"(validation_fraction={self.validation_fraction}) and still train "
                "on one. Use a larger support_fraction, early_stopping=False, or "
                "more rows."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run one epoch over X, then set ``offset_`` from X's scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated detector.
        """
        super().partial_fit(X)
        self._scoring = (self.score_method, self.n_importance_samples)
        scores = self.score_samples(X)
        self.support_ = np.ones(len(scores), dtype=bool)
        self.offset_ = self._offset(scores)
        return self

    def _offset(self, scores):
        if self.contamination == "auto":
            median = np.median(scores)
            deviations = np.abs(scores - median)
            spread = _MAD_TO_SIGMA * np.median(deviations)
            if spread == 0:  # at least half the rows score exactly the median
                spread = _MEAN_AD_TO_SIGMA * np.mean(deviations)
            return float(median - _AUTO_ROBUST_SIGMAS * spread)
        return float(np.percentile(scores, 100.0 * self.contamination))

    @_limit_threads
    def score_samples(self, X):
        """Return each row's log-likelihood under the model (higher: more normal).

        ``score_method`` chooses the importance-sampled log p(x) or the ELBO, in
        nats, computed in float64 whatever X's dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Finite float64 scores; a row whose computation overflows, or that
            lies outside the decoder's support (a Bernoulli decoder's value
            beyond [0, 1]: it has no density there), scores the lowest float64.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        scores = np.full(len(X), _LOWEST)
        inside = self._rows_in_support(X)
        X_in = X if inside is None else X[inside]
        if len(X_in):
            method, n_draws = self._scoring
            setup = self._inference_rows(X_in, np.float64)
            if method == "elbo":
                values = self._elbo(setup)
            else:
                values = self._log_px(setup, n_draws)
            values = to_numpy(torch.nan_to_num(values, nan=_LOWEST, neginf=_LOWEST))
            scores[slice(None) if inside is None else inside] = values
        return scores

    def _rows_in_support(self, X):
        """A mask of the rows inside the likelihood's support (within the clipping
        tolerance), or None when all are: a row outside it (a Bernoulli decoder's
        value beyond [0, 1]) has no density, the lowest score, not an error."""
        likelihood = self.module_.likelihood
        if likelihood.support_error(*(float(v) for v in _observed_range(X))) is None:
            return None
        low, high = likelihood.support
        low, high = low - SUPPORT_TOLERANCE, high + SUPPORT_TOLERANCE
        return np.concatenate(
            [~np.any((b < low) | (b > high), axis=1) for b in _row_blocks(X)]
        )

    def score(self, X, y=None):
        """Return the mean of ``score_samples`` over X's rows (higher is better).

        With ``score_method="log_likelihood"`` (the default) that is the mean
        importance-sampled log p(x) with ``n_importance_samples`` draws per row;
        with ``"elbo"``, the mean ELBO. Either way, in nats, what ``GridSearchCV``
        maximises when no scorer is given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return super().score(X, y)

    def decision_function(self, X):
        """Return ``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            The scores shifted by the threshold.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Return -1 for outliers and +1 for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to classify.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where ``decision_function`` is negative, +1 elsewhere.
        """
        check_is_fitted(self)
        return np.where(self.decision_function(X) < 0, -1, 1)

    def transform(self, X):
        """Return the latent means E_q[z | x], in X's float dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
            Means of q(z | x), row by row independent of the other rows up to
            rounding.
        """
        return self._latent_means(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # A row's log-likelihood over fewer observed features is not comparable
        # with a complete row's, so missing values are refused, not scored.
        tags.input_tags.allow_nan = False
        return tags
