"""Behaviour of VAETransformer that scikit-learn's checks do not pin down."""

import copy
import io
import math
import pickle
import re
import tracemalloc
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_limits

import skvae._base
import skvae._likelihoods
import skvae._training
from skvae import VAETransformer
from skvae._objectives import elbo
from skvae._torch_utils import make_generator

X_DIGITS = StandardScaler().fit_transform(load_digits().data[:300])
X_UNIT = load_digits().data[:300] / 16.0  # intensities in [0, 1]
FAST = dict(hidden_layer_sizes=(32,), max_iter=15, early_stopping=False, random_state=0)


@pytest.fixture(scope="module")
def vae():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VAETransformer(**FAST).fit(X_DIGITS)


@pytest.fixture(scope="module")
def bernoulli_vae():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VAETransformer(likelihood="bernoulli", **FAST).fit(X_UNIT)


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


# ------------------------------------------------------------ parameters and input


@pytest.mark.parametrize(
    "params",
    [
        {"latent_dim": 0},
        {"latent_dim": 1.5},
        {"hidden_layer_sizes": "wide"},
        {"activation": "gelu"},
        {"likelihood": "poisson"},
        {"objective": "kl"},
        {"gradient": "numeric"},
        {"n_threads": 0},
        {"n_threads": True},
        {"beta": -1.0},
        {"n_mc_samples": 0},
        {"batch_size": 0},
        {"learning_rate_init": 0.0},
        {"max_iter": 0},
        {"optimizer": "sgd"},
        {"alpha": -0.1},
        {"shuffle": "yes"},
        {"early_stopping": 1.0},
        {"validation_fraction": 1.0},
        {"n_iter_no_change": 0},
        {"tol": -1.0},
        {"warm_start": None},
        {"device": "tpu"},
        {"random_state": "seed"},
        {"verbose": -1},
    ],
)
def test_invalid_parameter_raises_before_training(params, monkeypatch):
    calls = []
    monkeypatch.setattr(skvae._training, "train_epoch", lambda *a, **k: calls.append(1))
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=name):
        VAETransformer(**params).fit(X_DIGITS)
    assert calls == []


@pytest.mark.parametrize("sizes", [(0,), (10, -1), (2.5,)])
def test_bad_hidden_layer_sizes(sizes):
    with pytest.raises(InvalidParameterError, match="hidden_layer_sizes"):
        VAETransformer(hidden_layer_sizes=sizes).fit(X_DIGITS)


def _with(value):
    X = X_DIGITS[:20].copy()
    X[3, 2] = value
    return X


@pytest.mark.parametrize(
    "X, error, message",
    [
        (_with(np.inf), ValueError, "infinity"),
        (X_DIGITS[:20] + 1j, ValueError, "Complex data not supported"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), ValueError, "convert"),
        (sp.csr_matrix(X_DIGITS[:20]), TypeError, "dense data is required"),
        (np.empty((0, 4)), ValueError, "0 sample"),
        (np.empty((5, 0)), ValueError, "0 feature"),
        (X_DIGITS[:, 0], ValueError, "2D array"),
    ],
)
def test_bad_input_is_refused_with_a_named_reason(X, error, message):
    with pytest.raises(error, match=message):
        VAETransformer(**FAST).fit(X)


@pytest.mark.parametrize(
    "shift, found", [(-0.5, r"\[-0.5, 0.5\]"), (1.0, r"\[1.0, 2.0\]")]
)
def test_bernoulli_refuses_data_outside_unit_interval(shift, found):
    X = np.tile([[0.0, 1.0]], (5, 1)) + shift
    with pytest.raises(ValueError, match=f"needs X in \\[0, 1\\].*{found}"):
        VAETransformer(likelihood="bernoulli").fit(X)


def test_bernoulli_scores_refuse_data_outside_unit_interval(bernoulli_vae):
    with pytest.raises(ValueError, match="needs X in"):
        bernoulli_vae.score_samples(X_UNIT * 16)


@pytest.mark.parametrize(
    "method, args",
    [
        ("transform", (X_DIGITS,)),
        ("inverse_transform", (np.zeros((2, 2)),)),
        ("sample", ()),
        ("score_samples", (X_DIGITS,)),
        ("score", (X_DIGITS,)),
        ("log_marginal_likelihood", (X_DIGITS,)),
        ("get_feature_names_out", ()),
    ],
)
def test_unfitted_use_raises_not_fitted(method, args):
    with pytest.raises(NotFittedError):
        getattr(VAETransformer(), method)(*args)


@pytest.mark.parametrize(
    "method", ["transform", "score_samples", "log_marginal_likelihood", "partial_fit"]
)
def test_wrong_feature_count_is_refused(vae, method):
    with pytest.raises(ValueError, match="X has 5 features, but VAETransformer"):
        getattr(vae, method)(X_DIGITS[:, :5])


def test_inverse_transform_checks_latent_columns(vae):
    with pytest.raises(ValueError, match=r"Z has 3 columns.*latent_dim=2"):
        vae.inverse_transform(np.zeros((4, 3)))


def test_early_stopping_needs_two_samples():
    with pytest.raises(ValueError, match="n_samples=1"):
        VAETransformer(early_stopping=True).fit(X_DIGITS[:1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_refused_early():
    with pytest.raises(ValueError, match=r"cuda\.is_available"):
        VAETransformer(device="cuda").fit(X_DIGITS)


# ---------------------------------------------------------------- what it returns


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_follow_input_dtype(vae, dtype):
    Z = vae.transform(X_DIGITS.astype(dtype))
    assert Z.shape == (len(X_DIGITS), 2) and Z.dtype == dtype
    X_hat = vae.inverse_transform(Z)
    assert X_hat.shape == X_DIGITS.shape and X_hat.dtype == dtype
    assert vae.score_samples(X_DIGITS.astype(dtype)).dtype == dtype


def test_float32_and_float64_inference_agree(vae):
    Z64 = vae.transform(X_DIGITS)
    Z32 = vae.transform(X_DIGITS.astype(np.float32))
    np.testing.assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-5)


def test_transform_is_the_encoder_mean_whatever_the_batch(vae):
    module = copy.deepcopy(vae.module_).double()
    with torch.no_grad():
        mu, _ = module.encode(torch.from_numpy(X_DIGITS))
    Z = vae.transform(X_DIGITS)
    np.testing.assert_allclose(Z, mu.numpy(), rtol=1e-12, atol=1e-12)
    Z_rows = np.vstack([vae.transform(X_DIGITS[i : i + 1]) for i in range(0, 300, 37)])
    # float64 sums differ between batch sizes only in the last bits.
    np.testing.assert_allclose(Z_rows, Z[::37], rtol=1e-12, atol=1e-14)


def at_offset(X, offset):
    """A copy of ``X`` whose data start ``offset`` bytes past a 64-byte boundary."""
    buffer = np.zeros(X.nbytes + 128, dtype=np.uint8)
    start = (-buffer.ctypes.data) % 64 + offset
    copy = np.frombuffer(buffer[start : start + X.nbytes], dtype=X.dtype)
    copy = copy.reshape(X.shape)
    copy[...] = X
    return copy


@pytest.mark.parametrize("offset", [8, 16, 24, 40])
def test_results_do_not_depend_on_where_x_lies_in_memory(vae, offset):
    # MKL's matrix products can round in another way for operands that start off a
    # 64-byte boundary (numpy aligns to 16; dask and pickle rebuild arrays anywhere):
    # on an AMD EPYC, rows 8 bytes off gave latent means 2.2e-16 apart.
    X = at_offset(X_DIGITS, offset)
    assert X.ctypes.data % 64 == offset
    np.testing.assert_array_equal(vae.transform(X), vae.transform(X_DIGITS))
    np.testing.assert_array_equal(vae.score_samples(X), vae.score_samples(X_DIGITS))
    Z = vae.transform(X_DIGITS)
    np.testing.assert_array_equal(
        vae.inverse_transform(at_offset(Z, offset)), vae.inverse_transform(Z)
    )


def test_fit_does_not_depend_on_where_x_lies_in_memory():
    params = dict(FAST, max_iter=3, early_stopping=True)
    here = fit_quietly(VAETransformer(**params), X_DIGITS)
    there = fit_quietly(VAETransformer(**params), at_offset(X_DIGITS, 8))
    np.testing.assert_array_equal(there.loss_curve_, here.loss_curve_)
    np.testing.assert_array_equal(there.validation_scores_, here.validation_scores_)


def test_reconstruction_beats_the_mean(vae):
    # A trained decoder reconstructs better than predicting the column means.
    X_hat = vae.inverse_transform(vae.transform(X_DIGITS))
    assert np.mean((X_hat - X_DIGITS) ** 2) < np.mean(X_DIGITS.var(axis=0))


def test_sample_shape_dtype_and_repeatability(vae):
    a = vae.sample(7, random_state=3)
    assert a.shape == (7, X_DIGITS.shape[1]) and a.dtype == np.float64
    np.testing.assert_array_equal(a, vae.sample(7, random_state=3))
    assert not np.array_equal(a, vae.sample(7, random_state=4))
    noisy = vae.sample(7, random_state=3, observation_noise=True)
    assert noisy.shape == a.shape and not np.array_equal(noisy, a)


def test_sample_means_are_decoded_prior_draws(vae):
    # sample(random_state=rs) draws z ~ N(0, I) from a generator seeded by rs: the
    # means are inverse_transform(z) for exactly those z.
    seed = check_random_state(0).randint(np.iinfo(np.int32).max)
    generator = make_generator(seed, torch.device("cpu"))
    z = torch.randn((500, 2), generator=generator, dtype=torch.float64).numpy()
    means = vae.sample(500, random_state=0)
    np.testing.assert_allclose(means, vae.inverse_transform(z), rtol=1e-12)
    # Gaussian draws scatter around the means with the decoder's variance.
    noisy = vae.sample(500, random_state=0, observation_noise=True)
    residual = noisy - means
    assert np.abs(residual.mean()) < 0.1 and residual.std() > 0.01


def test_sample_dtype_is_the_fit_dtype():
    vae32 = fit_quietly(
        VAETransformer(**{**FAST, "max_iter": 1}), X_DIGITS.astype(np.float32)
    )
    assert vae32.sample(3, random_state=0).dtype == np.float32


def test_bernoulli_means_are_probabilities_and_draws_are_binary(bernoulli_vae):
    means = bernoulli_vae.sample(50, random_state=0)
    draws = bernoulli_vae.sample(50, random_state=0, observation_noise=True)
    assert means.min() >= 0 and means.max() <= 1
    assert set(np.unique(draws)) <= {0.0, 1.0}
    rec = bernoulli_vae.inverse_transform(bernoulli_vae.transform(X_UNIT))
    assert rec.min() >= 0 and rec.max() <= 1


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_sample_validates_n_samples(vae, bad):
    with pytest.raises((ValueError, TypeError), match="n_samples"):
        vae.sample(bad)


# -------------------------------------------------------------------- scores


def test_score_samples_is_deterministic_and_row_independent(vae):
    s = vae.score_samples(X_DIGITS)
    np.testing.assert_array_equal(s, vae.score_samples(X_DIGITS))
    perm = np.random.default_rng(0).permutation(len(X_DIGITS))
    np.testing.assert_allclose(vae.score_samples(X_DIGITS[perm]), s[perm], rtol=1e-12)
    np.testing.assert_allclose(vae.score_samples(X_DIGITS[5:6]), s[5:6], rtol=1e-12)
    assert vae.score(X_DIGITS) == pytest.approx(s.mean(), rel=1e-12)
    assert isinstance(vae.score(X_DIGITS), float)


def test_scoring_does_not_change_the_estimator(vae):
    before = {
        k: copy.deepcopy(v) if isinstance(v, list) else v for k, v in vars(vae).items()
    }
    weights = [p.clone() for p in vae.module_.parameters()]
    vae.score_samples(X_DIGITS)
    vae.log_marginal_likelihood(X_DIGITS[:10], n_samples=16)
    vae.sample(3)
    assert vars(vae) == before
    assert all(
        torch.equal(a, b)
        for a, b in zip(weights, vae.module_.parameters(), strict=True)
    )


def test_elbo_is_a_tight_estimate(vae):
    # 128 shared quasi-random draws: the estimate agrees with a 20000-draw
    # pseudo-random Monte-Carlo ELBO to well under a nat per row.
    module = copy.deepcopy(vae.module_).double()
    X = torch.from_numpy(X_DIGITS[:20])
    g = torch.Generator().manual_seed(1)
    eps = torch.randn((20000, 20, 2), generator=g, dtype=torch.float64)
    with torch.no_grad():
        log_px, kl = elbo(module, X, eps)
    np.testing.assert_allclose(vae.score_samples(X_DIGITS[:20]), log_px - kl, atol=0.3)


@pytest.mark.parametrize("fixture", ["vae", "bernoulli_vae"])
def test_importance_sampling_bounds_the_elbo_and_tightens(fixture, request):
    est = request.getfixturevalue(fixture)
    X = X_DIGITS if fixture == "vae" else X_UNIT
    X = X[:60]
    elbo = est.score_samples(X)
    ll = {k: est.log_marginal_likelihood(X, n_samples=k) for k in (1, 64, 1024)}
    # Tighter as K grows (in expectation; with K = 1 it is a one-draw ELBO), and
    # above the ELBO for every row once K is large.
    assert ll[1].mean() < ll[1024].mean()
    assert np.all(ll[1024] >= elbo)
    np.testing.assert_array_equal(ll[64], est.log_marginal_likelihood(X, n_samples=64))
    np.testing.assert_allclose(
        est.log_marginal_likelihood(X[::-1], n_samples=64), ll[64][::-1], rtol=1e-12
    )


# -------------------------------------------------------------- reproducibility


def test_same_random_state_gives_bit_identical_fits():
    a = fit_quietly(VAETransformer(**FAST), X_DIGITS)
    b = fit_quietly(VAETransformer(**FAST), X_DIGITS)
    np.testing.assert_array_equal(a.transform(X_DIGITS), b.transform(X_DIGITS))
    assert a.loss_curve_ == b.loss_curve_
    c = fit_quietly(VAETransformer(**{**FAST, "random_state": 1}), X_DIGITS)
    assert not np.array_equal(a.transform(X_DIGITS), c.transform(X_DIGITS))


def test_global_random_state_and_settings_are_untouched(vae):
    np_state = np.random.get_state()  # noqa: NPY002
    torch_state = torch.random.get_rng_state()
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    est = fit_quietly(VAETransformer(**{**FAST, "early_stopping": True}), X_DIGITS)
    est.partial_fit(X_DIGITS)
    est.transform(X_DIGITS)
    est.inverse_transform(np.zeros((3, 2)))
    est.score_samples(X_DIGITS)
    est.log_marginal_likelihood(X_DIGITS[:5], n_samples=8)
    est.sample(5, random_state=0, observation_noise=True)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]
    assert torch.equal(torch_state, torch.random.get_rng_state())
    assert (threads, dtype) == (torch.get_num_threads(), torch.get_default_dtype())


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_round_trips_give_identical_outputs(vae, dump):
    if dump == "pickle":
        clone_ = pickle.loads(pickle.dumps(vae))
    else:
        buffer = io.BytesIO()
        joblib.dump(vae, buffer)
        buffer.seek(0)
        clone_ = joblib.load(buffer)
    for method in ("transform", "score_samples"):
        np.testing.assert_array_equal(
            getattr(clone_, method)(X_DIGITS), getattr(vae, method)(X_DIGITS)
        )
    np.testing.assert_array_equal(
        clone_.sample(4, random_state=0), vae.sample(4, random_state=0)
    )


def test_fitted_state_lives_on_the_cpu(vae):
    # What makes a GPU-fitted model unpickle on a CPU-only machine.
    assert all(p.device.type == "cpu" for p in vae.module_.parameters())
    for state in vae.optimizer_.state.values():
        assert all(v.device.type == "cpu" for v in state.values() if torch.is_tensor(v))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
def test_cuda_fit_unpickles_without_a_gpu(optimizer, monkeypatch):
    gpu = fit_quietly(
        VAETransformer(**{**FAST, "device": "cuda", "optimizer": optimizer}), X_DIGITS
    )
    assert all(p.device.type == "cpu" for p in gpu.module_.parameters())
    for state in gpu.optimizer_.state.values():
        assert all(v.device.type == "cpu" for v in state.values() if torch.is_tensor(v))
    assert gpu._rng_state[1].device.type == "cpu"
    payload = pickle.dumps(gpu)
    Z = gpu.transform(X_DIGITS)
    # As on a machine without CUDA: loading and inference stay on the CPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = pickle.loads(payload)
    np.testing.assert_allclose(restored.transform(X_DIGITS), Z, rtol=1e-6, atol=1e-6)
    monkeypatch.undo()
    gpu.partial_fit(X_DIGITS)  # continues on the GPU from CPU-held state
    assert np.isfinite(gpu.transform(X_DIGITS)).all()


# ------------------------------------------------------------------- training


def test_curves_and_their_parts(vae):
    assert vae.n_iter_ == len(vae.loss_curve_) == FAST["max_iter"]
    np.testing.assert_allclose(
        vae.loss_curve_,
        np.add(vae.reconstruction_curve_, vae.kl_curve_),
        rtol=1e-6,
    )
    assert vae.loss_curve_[-1] < vae.loss_curve_[0]
    assert vae.validation_scores_ is None and vae.best_validation_score_ is None


def test_beta_weights_the_kl_in_the_loss():
    est = fit_quietly(VAETransformer(**{**FAST, "beta": 0.25}), X_DIGITS)
    np.testing.assert_allclose(
        est.loss_curve_,
        np.add(est.reconstruction_curve_, 0.25 * np.asarray(est.kl_curve_)),
        rtol=1e-6,
    )


def test_early_stopping_keeps_the_best_weights():
    est = VAETransformer(
        **{**FAST, "max_iter": 300, "early_stopping": True},
        n_iter_no_change=3,
        tol=0.05,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X_DIGITS)
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_ < 300
    assert est.best_validation_score_ == max(scores)
    best = int(np.argmax(scores))
    # Stopped n_iter_no_change epochs after the last improvement by more than tol.
    assert est.n_iter_ - 1 - best <= 3


@pytest.mark.parametrize("n_samples, warns", [(290, True), (300, False)])
def test_early_stopping_on_few_validation_rows_warns(n_samples, warns):
    est = VAETransformer(**{**FAST, "max_iter": 1, "early_stopping": True})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X_DIGITS[:n_samples])
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    expected = ["holds out only 29 rows (validation_fraction=0.1 of 290)"]
    assert [m[m.index("holds") : m.index(")") + 1] for m in messages] == (
        expected if warns else []
    )


def test_max_iter_warns_and_convergence_does_not():
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        VAETransformer(**{**FAST, "max_iter": 2}).fit(X_DIGITS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = VAETransformer(**{**FAST, "max_iter": 100}, tol=10.0, n_iter_no_change=2)
        est.fit(X_DIGITS)
    assert est.n_iter_ < 100


def test_tol_is_per_feature(monkeypatch):
    # The stopping rule gets tol times the number of features: the loss is a sum
    # over features, so one tol means the same for 64 features as for 4.
    rules = []
    real = skvae._base.StopRule

    def spy(**kwargs):
        rules.append(real(**kwargs))
        return rules[-1]

    monkeypatch.setattr(skvae._base, "StopRule", spy)
    for X in (X_DIGITS, X_DIGITS[:, :4]):
        fit_quietly(VAETransformer(**{**FAST, "max_iter": 1}, tol=0.01), X)
    assert [r.tol for r in rules] == [pytest.approx(0.64), pytest.approx(0.04)]


def test_convergence_warning_names_the_rule():
    with pytest.warns(ConvergenceWarning, match="nats per feature and epoch"):
        VAETransformer(**{**FAST, "max_iter": 2}).fit(X_DIGITS)


BINARY = (np.random.default_rng(0).random((60, 6)) < 0.3).astype(float)


@pytest.mark.parametrize(
    "X, expected",
    [
        (X_UNIT, "bernoulli"),  # 58% of the digits' intensities are 0 or 1
        (BINARY, "bernoulli"),
        (BINARY + 1e-7, "bernoulli"),  # rounding just outside [0, 1]: clipped
        (np.random.default_rng(0).random((60, 6)), "gaussian"),  # none at the ends
        (X_DIGITS, "gaussian"),
        (BINARY - 0.5, "gaussian"),
    ],
)
def test_auto_likelihood_follows_the_data(X, expected):
    est = fit_quietly(VAETransformer(**{**FAST, "max_iter": 1}), X)
    assert est.likelihood_ == est.module_.config.likelihood == expected
    assert est.get_params()["likelihood"] == "auto"


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_explicit_likelihood_is_kept(likelihood):
    est = fit_quietly(
        VAETransformer(**{**FAST, "max_iter": 1}, likelihood=likelihood), BINARY
    )
    assert est.likelihood_ == likelihood


def test_auto_likelihood_is_decided_once():
    est = VAETransformer(**FAST).partial_fit(BINARY)
    assert est.likelihood_ == "bernoulli"
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        est.partial_fit(BINARY * 2)
    est.partial_fit(BINARY[:, ::-1])  # continues the Bernoulli model
    est.set_params(likelihood="gaussian")
    with pytest.raises(ValueError, match="likelihood"):
        est.partial_fit(BINARY)


@pytest.mark.parametrize(
    "X, message",
    [
        (load_digits().data, r"column \d+ has mean [\d.]+ and standard deviation"),
        (X_DIGITS * 10, "columns exceed 5 in either"),
        (X_DIGITS + 10, "columns exceed 5 in either"),
        (X_DIGITS * 0.01, "vary by less than 0.0316"),
    ],
)
def test_gaussian_decoder_warns_on_data_far_from_unit_scale(X, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match=message):
            VAETransformer(**{**FAST, "max_iter": 1}).fit(X)


@pytest.mark.parametrize(
    "X",
    [
        X_DIGITS,
        X_DIGITS * 3,  # within the range measured to fit well
        X_UNIT,  # auto: Bernoulli, which assumes no scale
        np.hstack([X_DIGITS, np.full((300, 1), 3.0)]),  # a constant needs no spread
        # A constant whose computed standard deviation is 1.4e-17, not 0.
        np.hstack([X_DIGITS, np.full((300, 1), 0.1)]),
    ],
)
def test_no_scale_warning_on_unit_scale_data(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        VAETransformer(**{**FAST, "max_iter": 1}).fit(X)


def test_partial_fit_runs_one_epoch_and_keeps_optimizer_state():
    est = VAETransformer(**FAST)
    est.partial_fit(X_DIGITS)
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 1
    steps = [float(s["step"]) for s in est.optimizer_.state.values()]
    optimizer = est.optimizer_
    est.partial_fit(X_DIGITS)
    assert est.optimizer_ is optimizer and est.n_iter_ == 2
    n_batches = int(np.ceil(len(X_DIGITS) / est.batch_size))
    assert [float(s["step"]) for s in est.optimizer_.state.values()] == [
        s + n_batches for s in steps
    ]


def test_partial_fit_sequence_is_reproducible():
    runs = []
    for _ in range(2):
        est = VAETransformer(**FAST)
        for _ in range(3):
            est.partial_fit(X_DIGITS)
        runs.append(est.transform(X_DIGITS))
    np.testing.assert_array_equal(*runs)


def test_min_variance_floors_the_gaussian_decoders_variance():
    est = fit_quietly(VAETransformer(**FAST, min_variance=0.25), X_DIGITS)
    assert est.module_.config.min_variance == 0.25
    with torch.no_grad():
        _, raw = est.module_.decode(torch.randn(500, 2) * 3)
        variance = torch.exp(est.module_.likelihood.log_var(raw))
    assert variance.min().item() >= 0.25
    # The floor bounds each feature's log p(x_j | z): a closed-form check of the
    # scores' ceiling, which the default 1e-3 would put far higher.
    ceiling = -0.5 * math.log(2 * math.pi * 0.25) * X_DIGITS.shape[1]
    assert est.score_samples(X_DIGITS).max() < ceiling
    est.set_params(min_variance=1e-3, warm_start=True)
    with pytest.raises(ValueError, match="min_variance"):
        est.fit(X_DIGITS)


def test_scale_warning_follows_min_variance():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="vary by less than 0.316"):
            VAETransformer(**{**FAST, "max_iter": 1}, min_variance=0.1).fit(
                X_DIGITS * 0.2
            )


def test_warm_start_continues_and_refuses_a_new_architecture():
    est = fit_quietly(
        VAETransformer(**{**FAST, "max_iter": 3}, warm_start=True), X_DIGITS
    )
    first = list(est.loss_curve_)
    fit_quietly(est, X_DIGITS)
    assert est.n_iter_ == 6 and est.loss_curve_[:3] == first
    est.set_params(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match="warm_start=True"):
        est.fit(X_DIGITS)
    cold = fit_quietly(VAETransformer(**{**FAST, "max_iter": 3}), X_DIGITS)
    fit_quietly(cold, X_DIGITS)
    assert cold.n_iter_ == 3


def test_divergence_restores_finite_weights_and_says_what_to_change():
    X = X_DIGITS[:50] * 1e20  # squared errors overflow float32: loss is inf
    with pytest.warns(ConvergenceWarning, match="learning_rate_init.*StandardScaler"):
        est = VAETransformer(**FAST).fit(X)
    assert est.n_iter_ == 0
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    assert len(est.optimizer_.state) == 0  # rebuilt: the old one held NaN moments
    assert np.isfinite(est.transform(X_DIGITS[:50])).all()


def test_keyboard_interrupt_leaves_a_usable_model(interrupted_on_third_epoch):
    with pytest.warns(UserWarning, match="interrupted"):
        est = VAETransformer(**FAST).fit(X_DIGITS)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    assert np.isfinite(est.transform(X_DIGITS)).all()


@pytest.mark.parametrize("early_stopping", [False, True])
def test_verbose_prints_one_line_per_epoch(capsys, early_stopping):
    fit_quietly(
        VAETransformer(
            **{**FAST, "max_iter": 3, "early_stopping": early_stopping}, verbose=1
        ),
        X_DIGITS,
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    pattern = r"Epoch 1: loss = \S+ \(KL \S+\)"
    pattern += r", validation ELBO = \S+" if early_stopping else ""
    # Each line but the last says how long the remaining epochs take at most.
    assert re.match(pattern + r", \d+\.\d+ s, at most \d+ s left$", lines[0])
    assert re.match(r"Epoch 3: .*, \d+\.\d+ s$", lines[2])


# ------------------------------------------------------------ scikit-learn API


def test_feature_names_and_pandas_output(vae):
    assert list(vae.get_feature_names_out()) == ["vaetransformer0", "vaetransformer1"]
    df = pd.DataFrame(X_DIGITS, columns=[f"pixel{i}" for i in range(64)])
    est = fit_quietly(clone(vae).set_output(transform="pandas"), df)
    out = est.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["vaetransformer0", "vaetransformer1"]
    assert list(est.feature_names_in_) == list(df.columns)
    np.testing.assert_allclose(out.to_numpy(), est.transform(X_DIGITS))
    assert isinstance(est.fit_transform(df), pd.DataFrame)
    with pytest.raises(ValueError, match="feature names"):
        est.transform(df.rename(columns={"pixel0": "other"}))


def test_global_set_output_config(vae):
    with config_context(transform_output="pandas"):
        out = vae.transform(X_DIGITS)
    assert isinstance(out, pd.DataFrame)
    assert isinstance(vae.transform(X_DIGITS), np.ndarray)
    with config_context(transform_output="default"):
        assert isinstance(
            vae.set_output(transform="default").transform(X_DIGITS), np.ndarray
        )


def test_partial_fit_refuses_a_new_feature_count(vae):
    est = VAETransformer(**FAST).partial_fit(X_DIGITS)
    with pytest.raises(ValueError, match="X has 10 features"):
        est.partial_fit(X_DIGITS[:, :10])


def test_float64_default_dtype_is_neither_needed_nor_changed():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        est = fit_quietly(VAETransformer(**{**FAST, "max_iter": 2}), X_DIGITS)
        assert next(est.module_.parameters()).dtype == torch.float32
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_new_learning_rate_and_alpha_reach_the_optimizer():
    est = VAETransformer(**{**FAST, "alpha": 0.0}).partial_fit(X_DIGITS)
    est.set_params(alpha=1e-3, learning_rate_init=5e-4).partial_fit(X_DIGITS)
    weights, biases = est.optimizer_.param_groups
    assert weights["weight_decay"] == 1e-3 and biases["weight_decay"] == 0.0
    assert weights["lr"] == biases["lr"] == 5e-4


def test_init_stores_parameters_unchanged():
    sizes = [16, 8]
    est = VAETransformer(hidden_layer_sizes=sizes)
    assert est.hidden_layer_sizes is sizes
    assert clone(est).get_params()["hidden_layer_sizes"] == sizes


# ------------------------------------------------------------ objective and gradient


def test_gradient_choice_is_recorded():
    assert fit_quietly(VAETransformer(**FAST), X_DIGITS).gradient_ == "closed_form"
    est = fit_quietly(VAETransformer(gradient="autograd", **FAST), X_DIGITS)
    assert est.gradient_ == "autograd"
    est = VAETransformer(objective="iwae", n_mc_samples=3, **FAST)
    assert fit_quietly(est, X_DIGITS).gradient_ == "autograd"


def test_both_gradients_fit_the_same_model():
    # The same steps in float32: rounding apart, the same weights and curves.
    fast = fit_quietly(VAETransformer(gradient="closed_form", **FAST), X_DIGITS)
    auto = fit_quietly(VAETransformer(gradient="autograd", **FAST), X_DIGITS)
    assert fast.n_iter_ == auto.n_iter_
    np.testing.assert_allclose(fast.loss_curve_, auto.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(
        fast.transform(X_DIGITS), auto.transform(X_DIGITS), rtol=1e-3, atol=1e-4
    )
    np.testing.assert_allclose(fast.score(X_DIGITS), auto.score(X_DIGITS), rtol=1e-4)


def test_closed_form_gradient_refuses_iwae_before_fitting():
    est = VAETransformer(objective="iwae", gradient="closed_form", **FAST)
    for method in (est.fit, est.partial_fit):
        with pytest.raises(ValueError, match=r"objective='iwae'.*gradient='auto'"):
            method(X_DIGITS)
        assert not hasattr(est, "module_") and not hasattr(est, "n_features_in_")


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_loss_curve_is_the_objective(objective):
    # The ELBO's loss is its reconstruction plus beta * KL; the IWAE loss is not a
    # sum of those parts (it is below their draw-by-draw Monte-Carlo version).
    est = VAETransformer(objective=objective, n_mc_samples=4, beta=0.5, **FAST)
    fit_quietly(est, X_DIGITS)
    parts = np.add(est.reconstruction_curve_, 0.5 * np.asarray(est.kl_curve_))
    if objective == "elbo":
        np.testing.assert_allclose(est.loss_curve_, parts, rtol=1e-5)
    else:
        assert np.all(np.abs(np.subtract(est.loss_curve_, parts)) > 1e-3)


def test_kl_per_dimension_against_torch(vae):
    module = copy.deepcopy(vae.module_).double()
    with torch.no_grad():
        mu, log_var = module.encode(torch.from_numpy(X_DIGITS))
    q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
    prior = torch.distributions.Normal(0.0, 1.0)
    expected = torch.distributions.kl_divergence(q, prior).mean(0).numpy()
    got = vae.kl_per_dimension(X_DIGITS)
    assert got.shape == (vae.latent_dim,) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10)


# ------------------------------------------------------------ threads


def _threads_seen_in_training(monkeypatch, est, X):
    seen = []
    real_epoch = skvae._training.train_epoch

    def epoch(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(skvae._training, "train_epoch", epoch)
    fit_quietly(est, X)
    return seen


@pytest.mark.parametrize("n_threads", [1, 2])
def test_n_threads_bounds_training_and_restores_torch(monkeypatch, n_threads):
    before = torch.get_num_threads()
    est = VAETransformer(**FAST, n_threads=n_threads)
    seen = _threads_seen_in_training(monkeypatch, est, X_DIGITS)
    assert set(seen) == {min(n_threads, before)}
    assert est.n_threads_ == min(n_threads, before)
    assert torch.get_num_threads() == before


def _threads_seen_in_inference(monkeypatch):
    """The thread counts at each of skvae's batched inference calls, as they come."""
    seen = []
    real = skvae._base.batched

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(skvae._base, "batched", spy)
    return seen


def test_n_threads_never_raises_torchs_own_limit(monkeypatch, vae):
    # Under a lower limit (here an enclosing one; OMP_NUM_THREADS=1 alike),
    # n_threads=2 keeps it, in training and in inference.
    seen = _threads_seen_in_inference(monkeypatch)
    with threadpool_limits(limits=1, user_api="openmp"):
        est = VAETransformer(**FAST, n_threads=2)
        seen += _threads_seen_in_training(monkeypatch, est, X_DIGITS)
        est.transform(X_DIGITS)
    assert est.n_threads_ == 1 and seen and set(seen) == {1}


def test_n_threads_rule_by_step_size(monkeypatch):
    # A small step (64 features, 32 hidden units) trains on one thread; an
    # MNIST-sized one keeps torch's setting.
    before = torch.get_num_threads()
    small = VAETransformer(**FAST)
    assert set(_threads_seen_in_training(monkeypatch, small, X_DIGITS)) == {1}
    assert small.n_threads_ == 1
    X_wide = np.random.default_rng(0).random((100, 784))
    big = VAETransformer(hidden_layer_sizes=(500,), latent_dim=20, max_iter=1)
    assert set(_threads_seen_in_training(monkeypatch, big, X_wide)) == {before}
    assert big.n_threads_ is None


def test_n_threads_bounds_inference(monkeypatch, vae):
    seen = _threads_seen_in_inference(monkeypatch)
    est = copy.deepcopy(vae).set_params(n_threads=1)
    est.transform(X_DIGITS)
    est.score_samples(X_DIGITS[:5])
    assert seen == [1, 1]


# ------------------------------------------------------------ memory maps


def _memmap(tmp_path, X, mode="r"):
    path = tmp_path / f"X_{X.dtype}.dat"
    X.tofile(path)
    return np.memmap(path, dtype=X.dtype, mode=mode, shape=X.shape)


def _fitted_state(est):
    return (
        est.loss_curve_,
        est.validation_scores_,
        [p.detach().clone() for p in est.module_.parameters()],
    )


def _assert_same_fit(a, b):
    assert a[0] == b[0] and a[1] == b[1]
    for p, q in zip(a[2], b[2], strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["r", "r+"])
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_over_a_memmap_equals_fit_in_memory(tmp_path, mode, early_stopping, dtype):
    X = X_UNIT.astype(dtype)  # Bernoulli: clipping, if any, happens batch by batch
    params = {**FAST, "early_stopping": early_stopping, "validation_fraction": 0.2}
    mapped = _memmap(tmp_path, X, mode)
    in_memory = fit_quietly(VAETransformer(**params), X)
    from_disk = fit_quietly(VAETransformer(**params), mapped)
    _assert_same_fit(_fitted_state(from_disk), _fitted_state(in_memory))
    assert from_disk.likelihood_ == in_memory.likelihood_ == "bernoulli"
    for method in ("transform", "score_samples"):
        np.testing.assert_array_equal(
            getattr(from_disk, method)(mapped), getattr(in_memory, method)(X)
        )
    from_disk.partial_fit(mapped)
    in_memory.partial_fit(X)
    _assert_same_fit(_fitted_state(from_disk), _fitted_state(in_memory))


def test_fit_over_a_memmap_does_not_copy_it(tmp_path):
    # numpy reports its allocations to tracemalloc: a copy of X (as a float32
    # tensor's buffer, or as the float64 temporary of a column std) would show.
    X = np.random.default_rng(0).standard_normal((40_000, 100))  # 32 MB
    mapped = _memmap(tmp_path, X)
    est = VAETransformer(
        hidden_layer_sizes=(16,), batch_size=1000, max_iter=2, random_state=0
    )
    fit_quietly(clone(est), X[:1000])  # what a first fit imports is not traced
    tracemalloc.start()
    try:
        fit_quietly(est, mapped)
        est.transform(mapped)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 4, peak
    # In memory, the same fit makes its float32 copy.
    tracemalloc.start()
    try:
        fit_quietly(clone(est), X)
        _, peak_in_memory = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_in_memory >= X.nbytes / 2


# ------------------------------------------------------------ missing values


def _hide_at_random(X, share, seed=0):
    rng = np.random.default_rng(seed)
    missing = rng.random(X.shape) < share
    return np.where(missing, np.nan, X), missing


def test_learns_from_incomplete_rows():
    # Trained with 30% of the entries hidden, the model fills them in better than
    # the column means (0, for standardised data) do.
    X_nan, missing = _hide_at_random(X_DIGITS, 0.3)
    est = fit_quietly(
        VAETransformer(**{**FAST, "latent_dim": 5, "max_iter": 60}), X_nan
    )
    assert est.gradient_ == "autograd"
    assert np.isfinite(est.loss_curve_).all()
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    filled = est.inverse_transform(est.transform(X_nan))
    rmse = np.sqrt(np.mean((filled - X_DIGITS)[missing] ** 2))
    rmse_mean = np.sqrt(np.mean(X_DIGITS[missing] ** 2))
    assert rmse < 0.9 * rmse_mean, (rmse, rmse_mean)
    for method in ("transform", "score_samples", "kl_per_dimension"):
        assert np.isfinite(getattr(est, method)(X_nan)).all()
    assert np.isfinite(est.log_marginal_likelihood(X_nan[:5], n_samples=16)).all()


def test_missing_entries_are_encoded_as_zero(vae):
    X_nan, missing = _hide_at_random(X_DIGITS[:20], 0.5)
    np.testing.assert_array_equal(
        vae.transform(X_nan), vae.transform(np.where(missing, 0.0, X_nan))
    )


def test_a_row_with_nothing_observed_scores_minus_its_kl(vae):
    X = np.full((1, X_DIGITS.shape[1]), np.nan)
    Z = vae.transform(X)
    np.testing.assert_array_equal(Z, vae.transform(np.zeros_like(X)))
    kl = vae.kl_per_dimension(X).sum()
    np.testing.assert_allclose(vae.score_samples(X), [-kl], rtol=1e-12)


def test_complete_data_never_takes_the_masked_path(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("masked_log_prob on complete data")

    monkeypatch.setattr(skvae._likelihoods.Likelihood, "masked_log_prob", refuse)
    est = fit_quietly(VAETransformer(**FAST), X_DIGITS)
    assert est.gradient_ == "closed_form"
    est.score_samples(X_DIGITS[:5])


def test_missing_values_choose_autograd_and_refuse_closed_form():
    X_nan, _ = _hide_at_random(X_DIGITS, 0.1)
    est = VAETransformer(**FAST, gradient="closed_form")
    with pytest.raises(ValueError, match=r"missing values .*only autograd"):
        est.fit(X_nan)
    assert not hasattr(est, "module_")


def test_infinity_is_still_refused():
    X = X_DIGITS.copy()
    X[0, 0], X[1, 1] = np.nan, np.inf
    est = VAETransformer(**FAST)
    with pytest.raises(ValueError, match="infinity"):
        est.fit(X)
    assert not hasattr(est, "module_")


def test_all_missing_input_is_refused():
    est = VAETransformer(**FAST)
    with pytest.raises(ValueError, match="no observed values"):
        est.fit(np.full((10, 3), np.nan))
    assert not hasattr(est, "module_")


def test_a_column_never_observed_is_named():
    X = pd.DataFrame(X_DIGITS[:, :4], columns=["a", "b", "c", "d"])
    X["c"] = np.nan
    with pytest.warns(UserWarning, match=r"Columns \['c'\] of X have no observed"):
        est = fit_quietly(VAETransformer(**FAST), X)
    assert np.isfinite(est.transform(X)).all()


def test_likelihood_auto_looks_at_the_observed_entries():
    X_nan, _ = _hide_at_random(X_UNIT, 0.3)
    est = fit_quietly(VAETransformer(**{**FAST, "max_iter": 2}), X_nan)
    assert est.likelihood_ == "bernoulli"
    X_bad = X_nan.copy()
    X_bad[0, np.flatnonzero(~np.isnan(X_bad[0]))[0]] = 1.5
    with pytest.raises(ValueError, match="needs X in"):
        VAETransformer(**FAST, likelihood="bernoulli").fit(X_bad)


def test_partial_fit_and_memmap_with_missing_values(tmp_path):
    X_nan, _ = _hide_at_random(X_UNIT.astype(np.float32), 0.3)
    mapped = _memmap(tmp_path, X_nan)
    a = VAETransformer(**FAST).partial_fit(X_nan)
    b = VAETransformer(**FAST).partial_fit(mapped)
    _assert_same_fit(_fitted_state(a), _fitted_state(b))
    assert np.isfinite(a.loss_curve_).all() and a.gradient_ == "autograd"
