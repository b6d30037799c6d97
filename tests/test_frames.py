"""The family on data frames with columns of several types: a likelihood per column,
log-densities in the user's units, and output in the frame's own library and types."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from skvae import VAEOutlierDetector, VAETransformer

pl = pytest.importorskip("polars")

RNG = np.random.default_rng(0)
N = 300
_GROUP = RNG.integers(0, 3, N)  # a latent class that every column follows
FRAME = pd.DataFrame(
    {
        "income": 20.0 + 10.0 * _GROUP + RNG.normal(size=N),
        "visits": RNG.poisson(3.0 + 4.0 * _GROUP),
        "member": (_GROUP + RNG.random(N)) > 1.5,
        "colour": pd.Categorical(
            np.array(["red", "green", "blue"])[_GROUP],
            categories=["red", "green", "blue"],
        ),
        "city": np.array(["Oslo", "Rome", "Lima"], dtype=object)[
            (_GROUP + (RNG.random(N) < 0.2)) % 3
        ],
    }
)
FAST = dict(latent_dim=2, hidden_layer_sizes=(32,), max_iter=30, random_state=0)


def fit_quietly(estimator, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def vae():
    return fit_quietly(VAETransformer(**FAST), FRAME)


def test_each_column_gets_its_types_likelihood(vae):
    assert vae.column_types_ == {
        "income": "continuous",
        "visits": "categorical",  # few distinct values
        "member": "binary",
        "colour": "categorical",
        "city": "categorical",
    }
    assert vae.likelihood_ == "mixed"
    assert vae.n_features_in_ == 5
    np.testing.assert_array_equal(vae.feature_names_in_, FRAME.columns)


def test_the_inference_methods_read_frames(vae):
    Z = vae.transform(FRAME)
    assert Z.shape == (N, 2) and Z.dtype == np.float64 and np.isfinite(Z).all()
    elbo = vae.score_samples(FRAME)
    log_px = vae.log_marginal_likelihood(FRAME, n_samples=200)
    assert elbo.shape == log_px.shape == (N,) and np.isfinite(elbo).all()
    assert np.mean(log_px) > np.mean(elbo)  # the tighter bound
    assert vae.kl_per_dimension(FRAME).shape == (2,)
    assert vae.score(FRAME) == pytest.approx(np.mean(elbo))


def test_inverse_transform_and_sample_give_the_frames_types(vae):
    decoded = vae.inverse_transform(vae.transform(FRAME.head(10)))
    drawn = vae.sample(50, random_state=0, observation_noise=True)
    means = vae.sample(50, random_state=0)
    for out in (decoded, drawn, means):
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == list(FRAME.columns)
        assert out.dtypes.to_dict() == FRAME.dtypes.to_dict()
        assert out.notna().all().all()
        assert set(out["city"]) <= {"Oslo", "Rome", "Lima"}
        assert set(out["visits"]) <= set(FRAME["visits"])
        assert out["colour"].cat.ordered == FRAME["colour"].cat.ordered
    # Reconstructions follow the latent class the columns share.
    agree = (decoded["colour"] == FRAME["colour"].head(10)).mean()
    assert agree >= 0.8
    pd.testing.assert_frame_equal(
        drawn, vae.sample(50, random_state=0, observation_noise=True)
    )


def test_scores_are_densities_in_the_users_units():
    # income in cents: the model fitted is the same (the column is standardised),
    # and each row's log-density is lower by log(100), the Jacobian of the units.
    cents = FRAME.assign(income=100.0 * FRAME["income"])
    a = fit_quietly(VAETransformer(**FAST), FRAME)
    b = fit_quietly(VAETransformer(**FAST), cents)
    np.testing.assert_allclose(
        b.score_samples(cents), a.score_samples(FRAME) - math.log(100.0), atol=1e-6
    )
    np.testing.assert_allclose(
        b.log_marginal_likelihood(cents, n_samples=50),
        a.log_marginal_likelihood(FRAME, n_samples=50) - math.log(100.0),
        atol=1e-6,
    )


def test_refits_are_identical():
    a = fit_quietly(VAETransformer(**FAST), FRAME)
    b = fit_quietly(VAETransformer(**FAST), FRAME)
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.transform(FRAME), b.transform(FRAME))


def test_polars_in_polars_out():
    frame = pl.from_pandas(FRAME)
    vae = fit_quietly(VAETransformer(**FAST), frame)
    out = vae.sample(20, random_state=0, observation_noise=True)
    assert isinstance(out, pl.DataFrame)
    assert out.schema == frame.schema
    reference = fit_quietly(VAETransformer(**FAST), FRAME)
    # Strings sort alike in both: the same model as from pandas but for the
    # colour column, whose pandas levels are in declared order.
    assert vae.column_types_ == reference.column_types_


def test_partial_fit_and_warm_start_on_frames():
    vae = VAETransformer(**FAST)
    vae.partial_fit(FRAME)
    vae.partial_fit(FRAME.head(100))
    assert vae.n_iter_ == 2 and vae.likelihood_ == "mixed"
    warm = fit_quietly(
        VAETransformer(**{**FAST, "max_iter": 2}, warm_start=True), FRAME
    )
    fit_quietly(warm, FRAME)
    assert warm.n_iter_ == 4


def test_column_types_override_the_rule():
    vae = fit_quietly(
        VAETransformer(**{**FAST, "max_iter": 2}, column_types={"visits": "count"}),
        FRAME,
    )
    assert vae.column_types_["visits"] == "count"
    drawn = vae.sample(100, random_state=0, observation_noise=True)
    assert drawn["visits"].dtype == np.int64
    assert drawn["visits"].between(FRAME["visits"].min(), FRAME["visits"].max()).all()


@pytest.mark.parametrize(
    "params, X, message",
    [
        ({"likelihood": "gaussian"}, FRAME, "cannot model a data frame"),
        ({"column_types": {"age": "count"}}, FRAME, "does not have: \\['age'\\]"),
        ({"column_types": {"income": "count"}}, FRAME, "'income' is a count"),
        ({"column_types": {"income": "continuous"}}, FRAME.to_numpy(), "DataFrame"),
    ],
)
def test_bad_tables_are_refused_before_training(params, X, message, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(VAETransformer, "_train", no_training)
    with pytest.raises(ValueError, match=message):
        VAETransformer(**FAST, **params).fit(X)


def test_inference_on_other_columns_or_unseen_levels_is_refused(vae):
    with pytest.raises(ValueError, match="holds values not seen in fit: \\['Paris'\\]"):
        vae.transform(FRAME.assign(city="Paris"))
    with pytest.raises(ValueError, match="feature names"):
        vae.transform(FRAME[list(reversed(FRAME.columns))])
    with (
        pytest.raises(TypeError, match="pass a pandas or polars DataFrame"),
        pytest.warns(UserWarning, match="does not have valid feature names"),
    ):
        vae.transform(FRAME.to_numpy())


def test_the_detector_scores_mixed_rows():
    detector = fit_quietly(VAEOutlierDetector(**FAST), FRAME)
    odd = FRAME.head(5).assign(colour="red", city="Lima", income=90.0)
    scores = detector.score_samples(pd.concat([FRAME.head(50), odd]))
    assert scores[50:].max() < np.median(scores[:50])
    assert (detector.predict(odd) == -1).all()
    with pytest.raises(ValueError, match="NaN"):
        detector.score_samples(FRAME.head(3).assign(city=None))


# ------------------------------------------------------------ holes in every type


def _with_holes(frame, share=0.2, seed=1):
    rng = np.random.default_rng(seed)
    return frame.mask(rng.random(frame.shape) < share)


HOLES = _with_holes(
    FRAME.assign(
        visits=FRAME["visits"].astype("Int64"),
        member=FRAME["member"].astype("boolean"),
        city=FRAME["city"].astype("string"),
        code=pd.Series(np.array(["a", "b", "c"], dtype=object)[_GROUP]),
    )
)


@pytest.fixture(scope="module")
def imputer():
    from skvae import VAEImputer

    return fit_quietly(VAEImputer(**{**FAST, "max_iter": 60}), HOLES)


def test_the_imputer_fills_every_column_type_in_its_own_dtype(imputer):
    assert HOLES.isna().any().all()  # holes in every column
    out = imputer.transform(HOLES)
    assert isinstance(out, pd.DataFrame)
    assert out.dtypes.to_dict() == HOLES.dtypes.to_dict()
    assert out.index.equals(HOLES.index) and out.notna().all().all()
    observed = HOLES.notna()
    for name in HOLES.columns:  # observed cells as given, exactly
        assert (
            out[name][observed[name]].tolist() == HOLES[name][observed[name]].tolist()
        )
    for name in ("colour", "city", "code"):
        assert set(out[name]) <= set(HOLES[name].dropna())
    # The columns share a latent class: the imputations find it where the most
    # frequent level cannot.
    truth = FRAME.assign(code=np.array(["a", "b", "c"])[_GROUP])
    hidden = HOLES["code"].isna()
    model_error = (out["code"][hidden] != truth["code"][hidden]).mean()
    mode_error = (HOLES["code"].mode()[0] != truth["code"][hidden]).mean()
    assert model_error < 0.5 * mode_error


def test_draws_are_valid_levels_and_repeat_when_seeded(imputer):
    est = imputer.set_params(sample_posterior=True)
    try:
        a, b = est.transform(HOLES), est.transform(HOLES)
        other = est.set_params(random_state=1).transform(HOLES)
    finally:
        est.set_params(sample_posterior=False, random_state=0)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(other)
    for name in ("colour", "city", "code"):
        assert set(a[name]) <= set(HOLES[name].dropna())
    assert set(a["member"]) <= {True, False}
    assert a["visits"].between(FRAME["visits"].min(), FRAME["visits"].max()).all()


def test_add_indicator_on_a_frame():
    from skvae import VAEImputer

    est = fit_quietly(VAEImputer(**{**FAST, "max_iter": 2}, add_indicator=True), HOLES)
    out = est.transform(HOLES)
    names = list(est.get_feature_names_out())
    assert list(out.columns) == names
    assert names[len(HOLES.columns) :] == [f"missingindicator_{c}" for c in HOLES]
    for name in HOLES.columns:
        np.testing.assert_array_equal(
            out[f"missingindicator_{name}"], HOLES[name].isna()
        )
    assert est.set_output(transform="pandas").transform(HOLES).equals(out)


def test_an_empty_column_of_a_frame_is_dropped_or_kept():
    from skvae import VAEImputer

    frame = HOLES.assign(empty=pd.Series([None] * N, dtype=object))
    with pytest.warns(UserWarning, match=r"Columns \['empty'\]"):
        dropped = fit_quietly(VAEImputer(**{**FAST, "max_iter": 2}), frame)
    assert list(dropped.transform(frame).columns) == list(HOLES.columns)
    with pytest.warns(UserWarning, match="imputes them with 0"):
        kept = fit_quietly(
            VAEImputer(**{**FAST, "max_iter": 2}, keep_empty_features=True), frame
        )
    given = frame.head(3).assign(empty=["x", None, "y"])
    out = kept.transform(given)
    # Given values come back; nothing is known to impute the rest with.
    assert out["empty"].isna().tolist() == [False, True, False]
    assert out["empty"][[0, 2]].tolist() == ["x", "y"]


def test_the_imputer_on_polars():
    from skvae import VAEImputer

    frame = pl.from_pandas(HOLES)
    est = fit_quietly(VAEImputer(**{**FAST, "max_iter": 2}), frame)
    out = est.transform(frame)
    assert isinstance(out, pl.DataFrame) and out.schema == frame.schema
    assert out.null_count().sum_horizontal().item() == 0


# ------------------------------------------------------------ conditional sampling


@pytest.fixture(scope="module")
def trained():
    return fit_quietly(VAETransformer(**{**FAST, "max_iter": 200}), FRAME)


def test_conditions_are_met_exactly_and_steer_the_rest(trained):
    vae = trained
    rows = vae.sample(
        200, random_state=0, observation_noise=True, conditions={"colour": "blue"}
    )
    assert (rows["colour"] == "blue").all()
    assert rows["colour"].dtype == FRAME["colour"].dtype
    # Blue rows are the third latent class: their incomes are the class's.
    blue = FRAME["income"][FRAME["colour"] == "blue"]
    assert abs(rows["income"].mean() - blue.mean()) < 3.0
    assert abs(rows["income"].mean() - FRAME["income"].mean()) > 5.0
    again = vae.sample(
        200, random_state=0, observation_noise=True, conditions={"colour": "blue"}
    )
    pd.testing.assert_frame_equal(rows, again)


def test_a_frame_of_conditions_gives_each_row_its_own():
    vae = fit_quietly(VAETransformer(**FAST), FRAME)
    conditions = pd.DataFrame(
        {"income": [21.5, None, 40.25], "city": ["Lima", "Oslo", None]}
    )
    rows = vae.sample(3, random_state=0, conditions=conditions)
    assert rows["income"].tolist()[0::2] == [21.5, 40.25]  # exactly, unrounded
    assert rows["city"].tolist()[:2] == ["Lima", "Oslo"]
    assert rows.notna().all().all()
    with pytest.raises(ValueError, match="has 3 rows; n_samples is 4"):
        vae.sample(4, conditions=conditions)


def test_a_rare_condition_costs_what_a_common_one_costs(vae, monkeypatch):
    # No rejection: every row resamples z from the same number of proposals,
    # whatever the condition's frequency.
    import skvae._transformer

    calls = []
    real = skvae._transformer.importance_resample

    def counted(model, x, n_draws, *args):
        calls.append((len(x), n_draws))
        return real(model, x, n_draws, *args)

    monkeypatch.setattr(skvae._transformer, "importance_resample", counted)
    rare = FRAME.assign(city="Lima").head(1)  # one row of an unusual pair
    vae.sample(50, random_state=0, conditions={"colour": "red", "city": "Lima"})
    common, calls[:] = list(calls), []
    vae.sample(50, random_state=0, conditions={"colour": "red", "city": "Oslo"})
    assert calls == common == [(50, 100)]
    assert len(rare) == 1


@pytest.mark.parametrize(
    "conditions, message",
    [
        ({"city": "Paris"}, "not seen in fit: \\['Paris'\\]"),
        ({"town": "Oslo"}, "not fitted on: \\['town'\\]"),
        ({"city": None}, "is missing"),
    ],
)
def test_bad_conditions_are_refused(vae, conditions, message):
    with pytest.raises(ValueError, match=message):
        vae.sample(5, conditions=conditions)


def test_conditions_on_a_model_of_an_array():
    X = FRAME[["income"]].assign(twice=2 * FRAME["income"]).to_numpy()
    X = (X - X.mean(0)) / X.std(0)
    vae = fit_quietly(VAETransformer(**{**FAST, "max_iter": 200}), X)
    rows = vae.sample(100, random_state=0, conditions={0: 1.25})
    assert np.all(rows[:, 0] == 1.25)
    assert abs(rows[:, 1].mean() - 1.25) < 0.1  # its twin follows it
    with pytest.raises(ValueError, match="does not have: 2"):
        vae.sample(5, conditions={2: 0.0})
    with pytest.raises(ValueError, match="finite number"):
        vae.sample(5, conditions={0: np.nan})


def test_an_identifier_column_is_refused_within_seconds():
    import time

    ids = FRAME.head(1).merge(
        pd.DataFrame({"id": [f"customer-{i}" for i in range(50_000)]}), how="cross"
    )
    start = time.perf_counter()
    with pytest.raises(ValueError, match="Column 'id' has 50000 distinct values"):
        VAETransformer().fit(ids)
    assert time.perf_counter() - start < 10


def test_with_missing_gives_each_columns_holes_at_its_rate():
    vae = fit_quietly(VAETransformer(**{**FAST, "max_iter": 5}), HOLES)
    drawn = vae.sample(4000, random_state=0, observation_noise=True, with_missing=True)
    assert drawn.dtypes.to_dict() == HOLES.dtypes.to_dict()
    np.testing.assert_allclose(drawn.isna().mean(), HOLES.isna().mean(), atol=0.025)
    assert vae.sample(100, random_state=0).notna().all().all()
    # Conditions are never made missing.
    given = vae.sample(
        200, random_state=0, with_missing=True, conditions={"city": "Oslo"}
    )
    assert (given["city"] == "Oslo").all() and given["income"].isna().any()
    # Arrays too, NaN at each feature's rate.
    X = np.where(np.random.default_rng(0).random((400, 2)) < [[0.1, 0.4]], np.nan, 0.0)
    X += np.random.default_rng(1).normal(size=X.shape)
    array_vae = fit_quietly(VAETransformer(**{**FAST, "max_iter": 5}), X)
    rows = array_vae.sample(5000, random_state=0, with_missing=True)
    np.testing.assert_allclose(np.isnan(rows).mean(0), [0.1, 0.4], atol=0.03)


def test_the_log_density_of_a_three_column_frame_by_hand():
    # log p(x | z) of each row, from the frame's own values: a Gaussian in the
    # column's units, the categorical level's softmax, the boolean's Bernoulli.
    import torch
    from torch.distributions import Bernoulli, Normal

    frame = FRAME[["income", "colour", "member"]]
    vae = fit_quietly(VAETransformer(**{**FAST, "max_iter": 5}), frame)
    column = vae._table.columns[0]
    z = torch.tensor([[0.3, -1.2], [0.0, 0.5]], dtype=torch.float64)
    rows = frame.head(2)
    module = vae.module_.double()
    (out,) = module.decode(z)  # gaussian (mean, raw), bernoulli, categorical
    x = torch.from_numpy(vae._table.encode(rows))
    got = module.likelihood.log_prob(x, (out,))
    mean = column.shift + column.scale * out[:, 0]
    std = column.scale * torch.exp(
        0.5 * module.likelihood.pieces[0][0].log_var(out[:, 1])
    )
    income = torch.tensor(rows["income"].to_numpy())
    expected = Normal(mean, std).log_prob(income)
    member = torch.tensor(rows["member"].to_numpy(), dtype=torch.float64)
    expected += Bernoulli(logits=out[:, 2]).log_prob(member)
    level = torch.tensor(rows["colour"].cat.codes.to_numpy(), dtype=torch.long)
    expected += torch.log_softmax(out[:, 3:6], -1)[torch.arange(2), level]
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_a_table_trains_through_autograd():
    vae = fit_quietly(VAETransformer(**{**FAST, "max_iter": 2}), FRAME)
    assert vae.gradient_ == "autograd"


def test_a_count_column_with_holes_is_filled_with_counts():
    from skvae import VAEImputer

    est = fit_quietly(
        VAEImputer(**{**FAST, "max_iter": 150}, column_types={"visits": "count"}),
        HOLES,
    )
    assert est.column_types_["visits"] == "count"
    hidden = HOLES["visits"].isna().to_numpy()
    truth = FRAME["visits"].to_numpy()[hidden]
    try:
        mean = est.transform(HOLES)["visits"]
        draw = est.set_params(sample_posterior=True).transform(HOLES)["visits"]
    finally:
        est.set_params(sample_posterior=False)
    for out in (mean, draw):
        assert out.dtype == "Int64" and out.notna().all() and (out >= 0).all()
        assert out[~hidden].tolist() == HOLES["visits"][~hidden].tolist()
    # The other columns give away the latent class, which sets the rate (3, 7 or
    # 11): the imputations follow it, where the observed mean cannot. Knowing the
    # class exactly would leave the Poisson noise alone, sqrt(7) = 2.6 against
    # the mean's 4.6 here (0.58x); the class read from noisy columns gives 0.74x.
    model_error = np.sqrt(np.mean((mean.to_numpy(dtype=float)[hidden] - truth) ** 2))
    mean_error = np.sqrt(np.mean((HOLES["visits"].mean() - truth) ** 2))
    assert model_error < 0.8 * mean_error
