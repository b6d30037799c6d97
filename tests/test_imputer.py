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


# ------------------------------------------- features with nothing observed in fit


def _with_empty_column():
    X = X_MISSING[:, :5].copy()
    X[:, 2] = np.nan
    return X


def test_keep_empty_features_keeps_the_values_given():
    # As SimpleImputer: only missing entries of an empty feature become 0.
    X = _with_empty_column()
    est = fit_quietly(VAEImputer(**FAST, keep_empty_features=True), X)
    given = X[:4].copy()
    given[:2, 2] = [5.0, -3.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = SimpleImputer(keep_empty_features=True).fit(X).transform(given)
    out = est.transform(given)
    np.testing.assert_array_equal(out[:, 2], expected[:, 2])
    np.testing.assert_array_equal(out[:, 2], [5.0, -3.0, 0.0, 0.0])


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("sample_posterior", [False, True])
def test_an_empty_feature_does_not_steer_the_others(keep, sample_posterior):
    # The model learned nothing about column 2: whatever it holds at transform
    # (nothing, 100, -1e6), the other columns' imputations are the same, as with
    # SimpleImputer, KNNImputer and IterativeImputer.
    X = _with_empty_column()
    est = fit_quietly(
        VAEImputer(
            **FAST,
            keep_empty_features=keep,
            sample_posterior=sample_posterior,
            n_importance_samples=20,
        ),
        X,
    )
    rows = X[:10].copy()
    assert np.isnan(rows[:, [0, 1, 3, 4]]).any()
    outs = []
    for value in [np.nan, 100.0, -1e6]:
        rows[:, 2] = value
        outs.append(
            np.delete(est.transform(rows), 2, axis=1) if keep else est.transform(rows)
        )
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2], outs[0])
    # So do the other methods that read X: the same latent means and scores.
    rows[:, 2] = np.nan
    given = rows.copy()
    given[:, 2] = 100.0
    np.testing.assert_array_equal(est.score_samples(given), est.score_samples(rows))


def test_an_empty_feature_is_ignored_in_the_support_check():
    # A Bernoulli model whose empty column holds a value beyond [0, 1] at
    # transform: ignored, not refused, and returned as given.
    X = (RNG.random((60, 4)) < 0.4).astype(float)
    X[RNG.random(X.shape) < 0.2] = np.nan
    X[:, 3] = np.nan
    est = fit_quietly(
        VAEImputer(**FAST, likelihood="bernoulli", keep_empty_features=True), X
    )
    rows = X[:5].copy()
    rows[:, 3] = 7.0
    out = est.transform(rows)
    np.testing.assert_array_equal(out[:, 3], 7.0)
    assert np.all((out[:, :3] >= 0) & (out[:, :3] <= 1))


def test_warm_start_fit_decides_empty_features_and_indicator_again():
    # Every fit, warm or not, decides which features are empty and which the
    # indicator covers, as SimpleImputer's fit does; warm_start keeps only the
    # weights.
    X_empty = _with_empty_column()
    X_full = X_MISSING[:, :5].copy()
    X_full[:, 0] = X_WINE[:, 0]  # complete: not in the indicator
    est = fit_quietly(VAEImputer(**FAST, warm_start=True, add_indicator=True), X_empty)
    assert est.transform(X_empty).shape[1] == 4 + 5  # column 2 dropped
    fit_quietly(est, X_full)
    fresh = fit_quietly(VAEImputer(**FAST, add_indicator=True), X_full)
    assert est.transform(X_full).shape == fresh.transform(X_full).shape == (178, 9)
    np.testing.assert_array_equal(est.indicator_.features_, [1, 2, 3, 4])
    np.testing.assert_array_equal(
        est.get_feature_names_out(), fresh.get_feature_names_out()
    )


# ------------------------------------------------------------- missing_values


def test_missing_values_pd_na_works_as_in_simple_imputer():
    X = pd.DataFrame(X_MISSING[:, :4], columns=list("abcd")).astype("Float64")
    assert X.isna().any().any()
    est = fit_quietly(VAEImputer(**FAST, missing_values=pd.NA), X)
    assert est.__sklearn_tags__().input_tags.allow_nan
    reference = fit_quietly(VAEImputer(**FAST), X_MISSING[:, :4])
    np.testing.assert_array_equal(
        est.transform(X), reference.transform(X_MISSING[:, :4])
    )
    # A plain array with NaN is read alike, as SimpleImputer(missing_values=pd.NA)
    # reads it.
    plain = fit_quietly(VAEImputer(**FAST, missing_values=pd.NA), X_MISSING[:, :4])
    np.testing.assert_array_equal(
        plain.transform(X_MISSING[:, :4]), reference.transform(X_MISSING[:, :4])
    )


def test_indicator_keeps_the_users_placeholder():
    X = np.where(HIDDEN, -1.0, X_WINE)[:, :4]
    est = fit_quietly(VAEImputer(**FAST, missing_values=-1, add_indicator=True), X)
    reference = SimpleImputer(missing_values=-1, add_indicator=True).fit(X)
    assert est.indicator_.missing_values == reference.indicator_.missing_values == -1
    np.testing.assert_array_equal(
        est.indicator_.transform(X),
        MissingIndicator(missing_values=-1).fit_transform(X),
    )
    np.testing.assert_array_equal(
        est.transform(X)[:, 4:], X[:, est.indicator_.features_] == -1
    )


def test_messages_name_the_users_placeholder():
    with pytest.raises(ValueError, match=r"missing \(missing_values=-1\)"):
        VAEImputer(**FAST, missing_values=-1).fit(np.full((5, 3), -1.0))
