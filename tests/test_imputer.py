"""VAEImputer: SimpleImputer's API, observed values untouched, deterministic
conditional means, seeded multiple imputations, and imputations that beat the
column means."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from small_vae import LATENT, N_FEATURES, data, gen, randn, small_vae

from skvae import VAEImputer
from skvae._objectives import conditional_mean, conditional_sample, split_missing

X_WINE, Y_WINE = load_wine(return_X_y=True)
X_WINE = StandardScaler().fit_transform(X_WINE)
RNG = np.random.default_rng(0)
HIDDEN = RNG.random(X_WINE.shape) < 0.3
X_MISSING = np.where(HIDDEN, np.nan, X_WINE)
FAST = dict(latent_dim=3, hidden_layer_sizes=(32,), max_iter=100, random_state=0)


def fit_quietly(estimator, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def imputer():
    return fit_quietly(VAEImputer(**FAST), X_MISSING)


# ------------------------------------------------------------- what transform gives


def test_observed_values_come_back_bit_for_bit(imputer):
    out = imputer.transform(X_MISSING)
    assert out.shape == X_WINE.shape and out.dtype == np.float64
    np.testing.assert_array_equal(out[~HIDDEN], X_MISSING[~HIDDEN])
    assert np.isfinite(out).all()


def test_float32_in_float32_out(imputer):
    out = imputer.transform(X_MISSING.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[~HIDDEN], X_MISSING.astype(np.float32)[~HIDDEN])


def test_imputes_better_than_the_column_means(imputer):
    out = imputer.transform(X_MISSING)
    rmse = np.sqrt(np.mean((out - X_WINE)[HIDDEN] ** 2))
    means = SimpleImputer().fit(X_MISSING).transform(X_MISSING)
    rmse_mean = np.sqrt(np.mean((means - X_WINE)[HIDDEN] ** 2))
    assert rmse < 0.9 * rmse_mean, (rmse, rmse_mean)


def test_conditional_means_are_deterministic_and_row_independent(imputer):
    out = imputer.transform(X_MISSING)
    np.testing.assert_array_equal(imputer.transform(X_MISSING), out)
    for i in (0, 7, 100):
        alone = imputer.transform(X_MISSING[i : i + 1])
        np.testing.assert_allclose(alone[0], out[i], rtol=1e-12, atol=1e-12)
    # Nor do they depend on the other rows' values.
    other = X_MISSING.copy()
    other[1:] = X_MISSING[::-1][:-1]
    np.testing.assert_allclose(
        imputer.transform(other)[0], out[0], rtol=1e-12, atol=1e-12
    )


def test_complete_rows_are_returned_as_they_are(imputer):
    complete = X_WINE[:5]
    np.testing.assert_array_equal(imputer.transform(complete), complete)


def test_sample_posterior_draws_multiple_imputations():
    est = fit_quietly(VAEImputer(**FAST, sample_posterior=True), X_MISSING)
    a, b = est.transform(X_MISSING), est.transform(X_MISSING)
    np.testing.assert_array_equal(a, b)  # an int random_state: the same draw
    c = est.set_params(random_state=1).transform(X_MISSING)
    assert not np.array_equal(a[HIDDEN], c[HIDDEN])
    np.testing.assert_array_equal(c[~HIDDEN], X_MISSING[~HIDDEN])
    # Draws spread around the conditional mean.
    mean = est.set_params(sample_posterior=False).transform(X_MISSING)
    assert np.std(a[HIDDEN] - mean[HIDDEN]) > 0.05


# -------------------------------------------------------- the estimates themselves


def test_conditional_mean_is_the_self_normalised_estimate():
    model = small_vae("gaussian", seed=5)
    x = data("gaussian", 6, seed=60)
    x[:, 1] = torch.nan
    x[2, 3] = torch.nan
    eps = randn(7, 1, LATENT, seed=61)
    x0, observed = split_missing(x)
    mu, log_var = model.encode(x0)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
    z = q.mean + q.stddev * eps  # (K, B, latent)
    mean, raw = model.decode(z)
    std = torch.sqrt(1e-3 + torch.exp(raw))
    log_px = (torch.distributions.Normal(mean, std).log_prob(x0) * observed).sum(-1)
    log_w = log_px + torch.distributions.Normal(0, 1).log_prob(z).sum(-1)
    log_w = log_w - q.log_prob(z).sum(-1)
    w = torch.softmax(log_w, dim=0)  # (K, B)
    expected = (w.unsqueeze(-1) * mean).sum(0)
    torch.testing.assert_close(conditional_mean(model, x, eps), expected)
    # In chunks, as transform computes it.
    chunks = [eps[:2], eps[2:3], eps[3:]]
    torch.testing.assert_close(conditional_mean(model, x, iter(chunks)), expected)


def test_conditional_samples_average_to_the_conditional_mean():
    # Sampling importance resampling draws from the same conditional whose mean
    # the self-normalised estimate gives: many draws for one row average to it.
    model = small_vae("gaussian", seed=6)
    x = data("gaussian", 1, seed=62)
    x[0, :2] = torch.nan
    expected = conditional_mean(model, x, randn(20_000, 1, LATENT, seed=63))[0, :2]
    rows = x.expand(20_000, N_FEATURES)
    draws = conditional_sample(model, rows, 50, gen(64), chunk=16)[:, :2]
    error = draws.mean(0) - expected
    assert torch.all(error.abs() < 4 * draws.std(0) / math.sqrt(len(draws))), error


def test_conditional_sample_is_seeded():
    model = small_vae("bernoulli", seed=7)
    x = data("bernoulli", 5, seed=65)
    x[:, 0] = torch.nan
    a = conditional_sample(model, x, 10, gen(1), chunk=4)
    b = conditional_sample(model, x, 10, gen(1), chunk=4)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert set(a.unique().tolist()) <= {0.0, 1.0}


# ------------------------------------------------------------- SimpleImputer's API


def test_missing_values_placeholder_works_as_nan(imputer):
    X_placeholder = np.where(HIDDEN, -999.0, X_WINE)
    est = fit_quietly(VAEImputer(**FAST, missing_values=-999.0), X_placeholder)
    np.testing.assert_array_equal(
        est.transform(X_placeholder), imputer.transform(X_MISSING)
    )
    assert not est.__sklearn_tags__().input_tags.allow_nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(X_MISSING)


def test_empty_features_dropped_or_kept_with_zero():
    X = X_MISSING[:, :5].copy()
    X[:, 2] = np.nan
    with pytest.warns(UserWarning, match=r"Columns \[2\] .*drops them"):
        dropped = fit_quietly(VAEImputer(**FAST), X)
    out = dropped.transform(X)
    assert out.shape == (len(X), 4)
    np.testing.assert_array_equal(
        dropped.get_feature_names_out(), ["x0", "x1", "x3", "x4"]
    )
    with pytest.warns(UserWarning, match=r"imputes them with 0"):
        kept = fit_quietly(VAEImputer(**FAST, keep_empty_features=True), X)
    out = kept.transform(X)
    assert out.shape == (len(X), 5) and np.all(out[:, 2] == 0.0)


def test_add_indicator_stacks_the_missing_indicator():
    X = X_MISSING.copy()
    X[:, 0] = X_WINE[:, 0]  # a complete feature: no indicator column
    est = fit_quietly(VAEImputer(**FAST, add_indicator=True), X)
    out = est.transform(X)
    expected = MissingIndicator().fit(X).transform(X)
    assert out.shape == (len(X), X.shape[1] + expected.shape[1])
    np.testing.assert_array_equal(out[:, X.shape[1] :], expected)
    names = est.get_feature_names_out()
    assert len(names) == out.shape[1] and names[-1] == "missingindicator_x12"


def test_pandas_output_names():
    X = pd.DataFrame(X_MISSING[:, :4], columns=["a", "b", "c", "d"])
    est = fit_quietly(VAEImputer(**FAST, add_indicator=True), X)
    out = est.set_output(transform="pandas").transform(X)
    assert list(out.columns) == [
        "a",
        "b",
        "c",
        "d",
        "missingindicator_a",
        "missingindicator_b",
        "missingindicator_c",
        "missingindicator_d",
    ]


@pytest.mark.parametrize(
    "X, message",
    [
        (np.where(HIDDEN, np.inf, X_WINE), "infinity"),
        (np.full((5, 3), np.nan), "no observed values"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), "convert"),
    ],
)
def test_bad_input_is_refused(X, message):
    est = VAEImputer(**FAST)
    with pytest.raises(ValueError, match=message):
        est.fit(X)
    assert not hasattr(est, "module_")


def test_in_a_pipeline_and_a_grid_search():
    pipe = make_pipeline(
        VAEImputer(**{**FAST, "max_iter": 30}), LogisticRegression(max_iter=500)
    )
    search = GridSearchCV(pipe, {"vaeimputer__latent_dim": [2, 4]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_MISSING, Y_WINE)
    assert search.best_score_ > 0.8
    assert search.predict(X_MISSING[:5]).shape == (5,)
