"""VAETransformer on extreme, odd and interrupted input: one test per way it failed.

Each test here failed on the code before it (issue "Reliability: twelve ways
VAETransformer misbehaves"); the number in each comment is the item's.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import skvae._base
import skvae._objectives
import skvae._training
from skvae import VAEOutlierDetector, VAETransformer
from skvae._objectives import importance_log_likelihood
from skvae._torch_utils import standard_normal_draws

RNG = np.random.default_rng(0)
X = RNG.standard_normal((200, 5))
X_UNIT = RNG.random((120, 6))
FAST = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0)


def fit_quietly(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X)


# 1 ------------------------------------------------------------- never NaN


@pytest.mark.parametrize("activation", ["relu", "identity"])
@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e3), (np.float64, 1e10)])
def test_far_rows_score_low_not_nan(activation, dtype, scale):
    est = fit_quietly(VAETransformer(activation=activation, **FAST), X)
    rows = X[:5].astype(dtype)
    far = np.vstack([rows, rows * scale]).astype(dtype)
    for scores in (
        est.score_samples(far),
        est.log_marginal_likelihood(far, n_samples=16),
    ):
        assert not np.isnan(scores).any()
        assert np.all(scores[5:] < scores[:5].min())  # an outlier scores low
        assert np.all(np.isfinite(scores[:5]))


# 2 ----------------------------------------------------- memory bounded in K


def test_importance_sampling_decodes_bounded_chunks(monkeypatch):
    # 784 features: at most _SCORE_CHUNK / 784 draws are decoded at once, so
    # K = 12000 takes several chunks; the result is the one-chunk estimate.
    chunk = skvae._base._SCORE_CHUNK
    per_chunk = chunk // 784
    n_chunks = -(-12000 // per_chunk)
    assert n_chunks > 1
    X_wide = RNG.random((3, 784))
    est = fit_quietly(
        VAETransformer(likelihood="bernoulli", hidden_layer_sizes=(4,), max_iter=1),
        X_wide,
    )
    decoded = []
    real = skvae._objectives.log_weights

    def spy(model, x, eps, complete=False):
        decoded.append(eps.shape[0] * len(x))
        return real(model, x, eps, complete)

    monkeypatch.setattr(skvae._objectives, "log_weights", spy)
    got = est.log_marginal_likelihood(X_wide, n_samples=12000)
    rows_per_batch = max(1, chunk // (per_chunk * 784))
    n_batches = -(-3 // rows_per_batch)
    assert len(decoded) == n_chunks * n_batches
    assert max(decoded) * 784 <= chunk
    monkeypatch.undo()
    module = est.module_.double()
    eps = standard_normal_draws(12000, est.latent_dim, 0).unsqueeze(1)
    with torch.no_grad():
        expected = importance_log_likelihood(module, torch.from_numpy(X_wide), eps)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-12)


# 3 ---------------------------------------------- a finite loss that runs away


def test_exploding_loss_is_a_divergence_with_the_best_weights_kept():
    est = VAETransformer(
        learning_rate_init=10, hidden_layer_sizes=(4,), max_iter=30, random_state=0
    )
    with pytest.warns(ConvergenceWarning, match=r"diverged in epoch \d+"):
        est.fit(X)
    assert est.n_iter_ < 30 and len(est.loss_curve_) == est.n_iter_
    assert np.isfinite(est.loss_curve_).all()
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    assert np.isfinite(est.transform(X)).all()


# 4 ------------------------------------------ partial_fit on a changed model


@pytest.mark.parametrize(
    "change",
    [
        {"latent_dim": 3},
        {"hidden_layer_sizes": (9,)},
        {"activation": "relu"},
        {"likelihood": "bernoulli"},
        {"optimizer": "adagrad"},
    ],
)
def test_partial_fit_refuses_a_changed_architecture(change):
    est = VAETransformer(**FAST).partial_fit(X_UNIT)
    est.set_params(**change)
    with pytest.raises(ValueError, match="partial_fit and warm_start=True continue"):
        est.partial_fit(X_UNIT)
    assert est.n_iter_ == 1


# 5 ------------------------------------------------- beyond float32's range


@pytest.mark.parametrize("value", [1e39, -1e300])
def test_values_beyond_float32_are_refused_before_training(value):
    X_big = X.copy()
    X_big[7, 2] = value
    est = VAETransformer(**FAST)
    with pytest.raises(ValueError, match=r"Column 2 of X holds .*float32"):
        est.fit(X_big)
    assert not hasattr(est, "module_")


def test_divergence_before_any_epoch_says_the_model_is_untrained():
    with pytest.warns(ConvergenceWarning, match="no epoch finished.*untrained"):
        est = VAETransformer(**FAST).fit(X * 1e30)
    assert est.n_iter_ == 0 and est.loss_curve_ == []


# 6 ------------------------------------------ an interrupt anywhere in the loop


@pytest.mark.parametrize("where", ["stop_rule", "log"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_interrupt_outside_the_epoch_leaves_a_consistent_model(
    monkeypatch, where, early_stopping
):
    calls = []
    real_update = skvae._training.StopRule.update

    def update(self, *args, **kwargs):
        calls.append(1)
        if where == "stop_rule" and len(calls) == 3:
            raise KeyboardInterrupt
        return real_update(self, *args, **kwargs)

    def log(line):
        if where == "log" and len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(skvae._training.StopRule, "update", update)
    real_train = skvae._base.train
    monkeypatch.setattr(
        skvae._base, "train", lambda *a, **k: real_train(*a, **{**k, "log": log})
    )
    est = VAETransformer(**{**FAST, "max_iter": 8}, early_stopping=early_stopping)
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X)
    # The third epoch's steps and record were done when the interrupt came.
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == len(est.kl_curve_) == 3
    assert len(est.reconstruction_curve_) == 3
    if early_stopping:
        assert len(est.validation_scores_) == 3
        assert est.best_validation_score_ == max(est.validation_scores_)
    assert np.isfinite(est.transform(X)).all()


# 7 ------------------------------------------ one validation split per model


def test_warm_start_keeps_the_validation_split(monkeypatch):
    monitored = []
    real_train = skvae._base.train

    def spy(model, optimizer, X_train, X_monitor, *args, **kwargs):
        monitored.append(X_monitor.clone())
        return real_train(model, optimizer, X_train, X_monitor, *args, **kwargs)

    monkeypatch.setattr(skvae._base, "train", spy)
    est = VAETransformer(**FAST, early_stopping=True, warm_start=True)
    for _ in range(3):
        fit_quietly(est, X)
    assert torch.equal(monitored[0], monitored[1])
    assert torch.equal(monitored[0], monitored[2])
    # A model of another seed holds other rows out.
    fit_quietly(VAETransformer(**{**FAST, "random_state": 1}, early_stopping=True), X)
    assert not torch.equal(monitored[0], monitored[3])


# 8 ------------------------------------------------- rounding at [0, 1]'s ends


def test_bernoulli_accepts_rounding_past_one_and_clips_it():
    X_scaled = MinMaxScaler().fit_transform(RNG.random((50, 4)) * 7.3 + 0.1)
    X_scaled[0, 0] = 1.0000000000000002  # what MinMaxScaler can give
    X_scaled[1, 1] = -1e-7
    est = fit_quietly(VAETransformer(likelihood="bernoulli", **FAST), X_scaled)
    clipped = np.clip(X_scaled, 0.0, 1.0)
    np.testing.assert_array_equal(
        est.score_samples(X_scaled), est.score_samples(clipped)
    )
    np.testing.assert_array_equal(est.transform(X_scaled), est.transform(clipped))


def test_bernoulli_refusal_prints_the_values_in_full():
    X_bad = X_UNIT.copy()
    X_bad[0, 0] = 1.0000123456
    with pytest.raises(ValueError, match=r"values in \[\S+, 1\.0000123456\]"):
        VAETransformer(likelihood="bernoulli", **FAST).fit(X_bad)


# 9 --------------------------------------------------- the caller's grad mode


@pytest.mark.parametrize("mode", [torch.inference_mode, torch.no_grad])
@pytest.mark.parametrize("gradient", ["closed_form", "autograd"])
def test_fit_inside_inference_or_no_grad_mode(mode, gradient):
    with mode():
        est = fit_quietly(VAETransformer(**FAST, gradient=gradient), X)
    est.partial_fit(X)  # outside: ordinary tensors, trainable
    assert est.n_iter_ == 5
    assert not any(p.is_inference() for p in est.module_.parameters())


# 10 ------------------------------------------------ more latent dimensions


def test_latent_dim_beyond_sobol_dimensions():
    est = fit_quietly(
        VAETransformer(latent_dim=21202, hidden_layer_sizes=(2,), max_iter=1), X[:20]
    )
    assert np.isfinite(est.score_samples(X[:3])).all()
    assert np.isfinite(est.log_marginal_likelihood(X[:3], n_samples=4)).all()
    np.testing.assert_array_equal(est.score_samples(X[:3]), est.score_samples(X[:3]))


# 11 ------------------------------------------------------ bools are no counts


@pytest.mark.parametrize(
    "params",
    [
        {"latent_dim": True},
        {"n_mc_samples": True},
        {"batch_size": True},
        {"max_iter": True},
        {"n_iter_no_change": True},
        {"hidden_layer_sizes": (True,)},
        {"hidden_layer_sizes": True},
    ],
)
def test_bools_are_refused_as_counts(params):
    with pytest.raises(InvalidParameterError, match=r"Got \(?True"):
        VAETransformer(**params).fit(X)


def test_bools_are_refused_as_sample_counts():
    est = fit_quietly(VAETransformer(**FAST), X)
    with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
        est.sample(True)
    with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
        est.log_marginal_likelihood(X, n_samples=True)


# 12 ------------------------------------------ one range rule in every method


@pytest.mark.parametrize(
    "method", ["transform", "score_samples", "score", "log_marginal_likelihood"]
)
def test_bernoulli_range_rule_in_every_method(method):
    est = fit_quietly(VAETransformer(likelihood="bernoulli", **FAST), X_UNIT)
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        getattr(est, method)(X_UNIT * 7)
    assert math.isfinite(est.score(X_UNIT))


@pytest.mark.parametrize(
    "make",
    [
        lambda: VAETransformer(max_iter=2, random_state=0),
        lambda: make_pipeline(
            StandardScaler(), VAEOutlierDetector(max_iter=2, random_state=0)
        ),
        lambda: GridSearchCV(
            VAETransformer(max_iter=2, random_state=0), {"latent_dim": [1]}, cv=2
        ),
    ],
    ids=["transformer", "detector-in-pipeline", "grid-search"],
)
def test_warnings_point_at_the_callers_line(make):
    # However many decorators and library frames lie between, a warning names
    # the line that called fit, so filters by module and Python's message work.
    X = np.random.default_rng(0).standard_normal((40, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make().fit(X)
    assert any(w.category is ConvergenceWarning for w in caught)
    assert {w.filename for w in caught} == {__file__}
