"""The decoder distributions p(x | z), checked against torch.distributions."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli as TorchBernoulli
from torch.distributions import Categorical, Normal, Poisson

from skvae._likelihoods import (
    GAUSSIAN_MIN_VARIANCE,
    LIKELIHOODS,
    Bernoulli,
    ColumnModel,
    Gaussian,
    Likelihood,
    Mixed,
    get_likelihood,
)

B, D, L = 7, 5, 3
LOG_MIN_VAR = math.log(GAUSSIAN_MIN_VARIANCE)


def _randn(*shape, seed, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, generator=g, dtype=dtype)


X_REAL = _randn(B, D, seed=0)
MEAN = _randn(B, D, seed=1)
# Raw log-variances from near the floor to well above it.
RAW = _randn(B, D, seed=2, scale=3.0)
LOGITS = _randn(B, D, seed=3, scale=4.0)
X_BINARY = (_randn(B, D, seed=4) > 0).to(torch.float64)
X_INTENSITY = torch.rand((B, D), generator=torch.Generator().manual_seed(5)).double()


def _gaussian_reference(x, mean, raw):
    std = torch.exp(0.5 * Gaussian().log_var(raw))
    return Normal(mean, std).log_prob(x).sum(-1)


# ------------------------------------------------------------------ Gaussian


def test_gaussian_log_prob_matches_torch_normal():
    got = Gaussian().log_prob(X_REAL, (MEAN, RAW))
    assert got.shape == (B,)
    torch.testing.assert_close(got, _gaussian_reference(X_REAL, MEAN, RAW))


def test_gaussian_log_prob_well_above_floor_is_plain_normal():
    # With raw >> log(min variance) the guard is (almost) the identity, so the
    # likelihood is N(mean, exp(raw)); the guard's excess is log1p(exp(floor - raw)).
    raw = 2.0 + RAW.abs()
    got = Gaussian().log_prob(X_REAL, (MEAN, raw))
    ref = Normal(MEAN, torch.exp(0.5 * raw)).log_prob(X_REAL).sum(-1)
    torch.testing.assert_close(got, ref, rtol=0, atol=D * math.exp(LOG_MIN_VAR - 2.0))


def test_gaussian_log_prob_broadcasts_x_against_draws():
    mean = _randn(L, B, D, seed=10)
    raw = _randn(L, B, D, seed=11)
    got = Gaussian().log_prob(X_REAL, (mean, raw))
    assert got.shape == (L, B)
    for draw in range(L):
        ref = _gaussian_reference(X_REAL, mean[draw], raw[draw])
        torch.testing.assert_close(got[draw], ref)


def test_gaussian_log_var_floor_for_very_negative_raw():
    raw = torch.tensor([-1e4, -1e3, -100.0, -30.0, LOG_MIN_VAR], dtype=torch.float64)
    log_var = Gaussian().log_var(raw)
    assert torch.all(log_var >= LOG_MIN_VAR)
    assert torch.all(torch.isfinite(log_var))
    # Far below the floor the variance is the floor itself.
    torch.testing.assert_close(
        log_var[:3], torch.full((3,), LOG_MIN_VAR, dtype=torch.float64)
    )
    # At the floor, the smooth guard adds softplus(0) = log 2.
    assert log_var[-1].item() == pytest.approx(LOG_MIN_VAR + math.log(2.0))


def test_gaussian_log_var_is_raw_well_above_floor():
    raw = torch.linspace(0.0, 30.0, 61, dtype=torch.float64)
    excess = Gaussian().log_var(raw) - raw
    # softplus(y) - y = log1p(exp(-y)), which lies in (0, exp(-y)] for y = raw - floor.
    # Plus rounding: the subtraction loses up to a few ulps of raw.
    rounding = 4 * torch.finfo(torch.float64).eps * raw.abs()
    bound = torch.exp(LOG_MIN_VAR - raw)
    assert torch.all(excess >= -rounding)
    assert torch.all(excess <= bound * (1 + 1e-9) + rounding)
    assert excess[0].item() == pytest.approx(math.log1p(GAUSSIAN_MIN_VARIANCE))


def test_gaussian_log_var_min_variance_argument():
    raw = torch.tensor([-1e4], dtype=torch.float64)
    assert Gaussian(min_variance=0.25).log_var(raw).item() == pytest.approx(
        math.log(0.25)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gaussian_log_var_gradient_is_finite_and_smooth(dtype):
    raw = torch.tensor([-1e4, -50.0, LOG_MIN_VAR, 0.0, 50.0, 1e4], dtype=dtype)
    raw.requires_grad_(True)
    Gaussian().log_var(raw).sum().backward()
    assert torch.all(torch.isfinite(raw.grad))
    # d/draw [floor + softplus(raw - floor)] = sigmoid(raw - floor).
    expected = 1.0 / (1.0 + torch.exp(-(raw.detach().double() - LOG_MIN_VAR)))
    torch.testing.assert_close(raw.grad.double(), expected, rtol=1e-5, atol=1e-30)
    # Unlike a hard clamp, the guard keeps a gradient at the floor.
    assert raw.grad[2].item() == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("raw_value", [-1e4, -1e2, LOG_MIN_VAR, 0.0])
def test_gaussian_log_prob_bounded_on_constant_feature(dtype, raw_value):
    # A feature that is constant (here: always equal to the decoder mean) is the
    # worst case: without the floor its log-density grows without bound.
    x = torch.zeros((B, D), dtype=dtype)
    mean = torch.zeros((B, D), dtype=dtype, requires_grad=True)
    raw = torch.full((B, D), raw_value, dtype=dtype, requires_grad=True)
    log_p = Gaussian().log_prob(x, (mean, raw))
    bound = -0.5 * D * math.log(2 * math.pi * GAUSSIAN_MIN_VARIANCE)
    assert torch.all(torch.isfinite(log_p))
    assert torch.all(log_p <= bound * (1 + 1e-6))
    (-log_p.sum()).backward()
    assert torch.all(torch.isfinite(raw.grad))
    assert torch.all(torch.isfinite(mean.grad))
    if raw_value == -1e4:
        torch.testing.assert_close(
            log_p, torch.full((B,), bound, dtype=dtype), rtol=1e-6, atol=1e-5
        )


def test_gaussian_mean_is_mean_head():
    assert torch.equal(Gaussian().mean((MEAN, RAW)), MEAN)


# ------------------------------------------------------------------ Bernoulli


def test_bernoulli_log_prob_matches_torch_bernoulli_on_binary_x():
    got = Bernoulli().log_prob(X_BINARY, (LOGITS,))
    ref = TorchBernoulli(logits=LOGITS).log_prob(X_BINARY).sum(-1)
    assert got.shape == (B,)
    torch.testing.assert_close(got, ref)


def test_bernoulli_log_prob_is_negative_bce_on_intensities():
    got = Bernoulli().log_prob(X_INTENSITY, (LOGITS,))
    ref = -F.binary_cross_entropy_with_logits(
        LOGITS, X_INTENSITY, reduction="none"
    ).sum(-1)
    torch.testing.assert_close(got, ref)


def test_bernoulli_log_prob_closed_form_on_intensities():
    # x log p + (1 - x) log(1 - p) with p = sigmoid(logits), in moderate range.
    p = 1.0 / (1.0 + torch.exp(-LOGITS))
    ref = (X_INTENSITY * p.log() + (1 - X_INTENSITY) * (1 - p).log()).sum(-1)
    torch.testing.assert_close(Bernoulli().log_prob(X_INTENSITY, (LOGITS,)), ref)


def test_bernoulli_log_prob_broadcasts_x_against_draws():
    logits = _randn(L, B, D, seed=12, scale=3.0)
    got = Bernoulli().log_prob(X_BINARY, (logits,))
    assert got.shape == (L, B)
    ref = TorchBernoulli(logits=logits).log_prob(X_BINARY.expand(L, B, D)).sum(-1)
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_log_prob_stable_for_extreme_logits(dtype):
    logits = torch.tensor([[1e4, -1e4, 1e4, -1e4]], dtype=dtype, requires_grad=True)
    agree = torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=dtype)
    disagree = 1.0 - agree
    log_p_agree = Bernoulli().log_prob(agree, (logits,))
    log_p_disagree = Bernoulli().log_prob(disagree, (logits,))
    assert torch.isfinite(log_p_agree).all() and torch.isfinite(log_p_disagree).all()
    # Certain and right: log 1 = 0. Certain and wrong: log sigmoid(-1e4) = -1e4 each.
    assert log_p_agree.item() == pytest.approx(0.0, abs=1e-6)
    assert log_p_disagree.item() == pytest.approx(-4e4, rel=1e-6)
    (log_p_agree + log_p_disagree).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_bernoulli_mean_is_sigmoid():
    ref = TorchBernoulli(logits=LOGITS).mean
    torch.testing.assert_close(Bernoulli().mean((LOGITS,)), ref)


# ------------------------------------------------------------------ sampling

N_SAMPLES = 40_000
# A batch of N_SAMPLES identical rows: the sample statistics over rows estimate the
# moments of p(x | z) per feature.
SAMPLE_MEAN = torch.tensor([-2.0, 0.0, 0.5, 3.0], dtype=torch.float64)
SAMPLE_RAW = torch.tensor([-1e4, -1.0, 0.0, 1.5], dtype=torch.float64)
SAMPLE_LOGITS = torch.tensor([-3.0, -0.5, 0.0, 2.0], dtype=torch.float64)


def _heads(likelihood, n_rows, leading=()):
    if likelihood.name == "gaussian":
        return (
            SAMPLE_MEAN.expand(*leading, n_rows, 4),
            SAMPLE_RAW.expand(*leading, n_rows, 4),
        )
    return (SAMPLE_LOGITS.expand(*leading, n_rows, 4),)


@pytest.mark.parametrize(
    "likelihood", [Gaussian(), Bernoulli()], ids=lambda lik: lik.name
)
@pytest.mark.parametrize("leading", [(), (3,)])
def test_sample_reproducible_and_shaped(likelihood, leading):
    heads = _heads(likelihood, 6, leading)

    def draw(seed):
        return likelihood.sample(heads, torch.Generator().manual_seed(seed))

    first = draw(0)
    assert first.shape == (*leading, 6, 4)
    assert first.dtype == torch.float64
    assert torch.equal(first, draw(0))
    assert not torch.equal(first, draw(1))


@pytest.mark.parametrize(
    "likelihood", [Gaussian(), Bernoulli()], ids=lambda lik: lik.name
)
def test_sample_leaves_global_rng_alone(likelihood):
    state = torch.random.get_rng_state()
    likelihood.sample(_heads(likelihood, 10), torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.random.get_rng_state())


def test_gaussian_sample_moments():
    samples = Gaussian().sample(
        _heads(Gaussian(), N_SAMPLES), torch.Generator().manual_seed(0)
    )
    # exp(floor + softplus(raw - floor)) = min_variance + exp(raw): the variance
    # includes the floor, so raw = -1e4 samples with variance 1e-3.
    var = GAUSSIAN_MIN_VARIANCE + torch.exp(SAMPLE_RAW)
    # Five standard errors: the mean's is sigma / sqrt(n), the sample variance's
    # sigma^2 * sqrt(2 / (n - 1)) for normal data.
    mean_tol = 5 * var.sqrt() / math.sqrt(N_SAMPLES)
    var_tol = 5 * var * math.sqrt(2 / (N_SAMPLES - 1))
    assert torch.all((samples.mean(0) - SAMPLE_MEAN).abs() <= mean_tol)
    assert torch.all((samples.var(0) - var).abs() <= var_tol)
    assert samples.var(0)[0].item() == pytest.approx(GAUSSIAN_MIN_VARIANCE, rel=0.05)


def test_bernoulli_sample_values_and_frequencies():
    samples = Bernoulli().sample(
        _heads(Bernoulli(), N_SAMPLES), torch.Generator().manual_seed(0)
    )
    assert set(samples.unique().tolist()) <= {0.0, 1.0}
    p = 1.0 / (1.0 + torch.exp(-SAMPLE_LOGITS))
    tol = 5 * torch.sqrt(p * (1 - p) / N_SAMPLES)
    assert torch.all((samples.mean(0) - p).abs() <= tol)


# ------------------------------------------------------------------ support, lookup


@pytest.mark.parametrize(
    "x_min, x_max", [(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (0.25, 0.75)]
)
def test_bernoulli_support_accepts_unit_interval(x_min, x_max):
    assert Bernoulli().support_error(x_min, x_max) is None


@pytest.mark.parametrize(
    "x_min, x_max, negative",
    [(0.0, 255.0, False), (0.0, 1.5, False), (-0.5, 1.0, True), (-3.0, 7.0, True)],
)
def test_bernoulli_support_rejects_outside_unit_interval(x_min, x_max, negative):
    message = Bernoulli().support_error(x_min, x_max)
    assert isinstance(message, str)
    assert f"[{x_min!r}, {x_max!r}]" in message
    assert ("Negative values in data" in message) == negative
    assert "gaussian" in message


@pytest.mark.parametrize("x_min, x_max", [(-1e9, 1e9), (0.0, 1.0), (-5.0, -4.0)])
def test_gaussian_support_accepts_anything(x_min, x_max):
    assert Gaussian().support_error(x_min, x_max) is None


@pytest.mark.parametrize(
    "name, cls", [("gaussian", Gaussian), ("bernoulli", Bernoulli)]
)
def test_get_likelihood_known_names(name, cls):
    likelihood = get_likelihood(name)
    assert type(likelihood) is cls
    assert isinstance(likelihood, Likelihood)
    assert likelihood.name == name
    assert LIKELIHOODS[name] is cls


def test_n_heads_match_the_parameters_each_likelihood_reads():
    assert Gaussian.n_heads == 2
    assert Bernoulli.n_heads == 1
    for likelihood in (Gaussian(), Bernoulli()):
        heads = tuple(MEAN for _ in range(likelihood.n_heads))
        assert likelihood.log_prob(X_REAL, heads).shape == (B,)


@pytest.mark.parametrize("name", ["poisson", "Gaussian", ""])
def test_get_likelihood_unknown_name(name):
    with pytest.raises(ValueError, match="Unknown likelihood") as info:
        get_likelihood(name)
    assert "bernoulli" in str(info.value) and "gaussian" in str(info.value)


# ------------------------------------------------------- log_prob_and_grad


def _heads_and_x(likelihood, leading, seed):
    """Decoder output (heads side by side) with leading draws, and data for it."""
    n_out = likelihood.n_heads * D
    out = _randn(*leading, B, n_out, seed=seed, scale=3.0)
    if likelihood.n_heads == 2:  # mean near x, raw log-variance from the floor up
        out[..., D:] = _randn(*leading, B, D, seed=seed + 1, scale=4.0)
        return X_REAL, out
    return X_INTENSITY, out


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
@pytest.mark.parametrize("leading", [(), (L,)])
def test_log_prob_and_grad_match_log_prob_and_autograd(name, leading):
    likelihood = get_likelihood(name)
    x, out = _heads_and_x(likelihood, leading, seed=10)
    out.requires_grad_(True)
    expected = likelihood.log_prob(x, out.chunk(likelihood.n_heads, dim=-1))
    (expected_grad,) = torch.autograd.grad(expected.sum(), out)
    with torch.no_grad():
        log_p, grad = likelihood.log_prob_and_grad(x, out)
    assert log_p.shape == (*leading, B) and grad.shape == out.shape
    torch.testing.assert_close(log_p, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_prob_and_grad_finite_at_extremes(dtype):
    # Logits of +-1e4 and raw log-variances far below the floor: values and
    # gradients stay finite, and the Bernoulli gradient is x - sigmoid(logit).
    logits = torch.tensor([[-1e4, -30.0, 0.0, 30.0, 1e4]], dtype=dtype)
    x = torch.tensor([[1.0, 0.5, 0.0, 0.5, 0.0]], dtype=dtype)
    log_p, grad = Bernoulli().log_prob_and_grad(x, logits)
    assert torch.isfinite(log_p).all() and torch.isfinite(grad).all()
    torch.testing.assert_close(grad, x - torch.sigmoid(logits))
    raw = torch.tensor([[-1e4, -1e2, LOG_MIN_VAR, 0.0, 5.0]], dtype=dtype)
    out = torch.cat([torch.zeros_like(raw), raw], dim=-1)
    log_p, grad = Gaussian().log_prob_and_grad(x, out)
    assert torch.isfinite(log_p).all() and torch.isfinite(grad).all()


# ------------------------------------------------------------ a table's columns


def _table_columns():
    """Two continuous columns (scales 2 and 0.5), a binary, two counts and two
    categorical columns, as a table lays them out (grouped by kind)."""
    return (
        ColumnModel("gaussian", shift=1.0, scale=2.0),
        ColumnModel("gaussian", shift=-3.0, scale=0.5),
        ColumnModel("poisson", shift=4.0, scale=3.0),
        ColumnModel("poisson", shift=0.5, scale=0.7),
        ColumnModel("bernoulli"),
        ColumnModel("categorical", width=3),
        ColumnModel("categorical", width=2),
    )


def _table_data(leading=()):
    """Values in the user's units, the matrix the table makes of them, and a
    decoder output (mean and raw log-variance of each continuous column, a
    log-rate per count, a logit, then each categorical column's logits)."""
    values = {
        "g": torch.tensor([[0.3, -2.0], [4.0, -3.5]], dtype=torch.float64),
        "c": torch.tensor([[7.0, 0.0], [1.0, 3.0]], dtype=torch.float64),
        "b": torch.tensor([[1.0], [0.0]], dtype=torch.float64),
        "k1": torch.tensor([2, 0]),
        "k2": torch.tensor([1, 1]),
    }
    x = torch.cat(
        [
            (values["g"] - torch.tensor([1.0, -3.0])) / torch.tensor([2.0, 0.5]),
            (values["c"] - torch.tensor([4.0, 0.5])) / torch.tensor([3.0, 0.7]),
            values["b"],
            F.one_hot(values["k1"], 3).double(),
            F.one_hot(values["k2"], 2).double(),
        ],
        dim=-1,
    )
    out = _randn(*leading, 2, 4 + 2 + 1 + 3 + 2, seed=20)
    return values, x, out


@pytest.mark.parametrize("leading", [(), (L,)])
def test_mixed_is_each_columns_density_in_the_users_units(leading):
    # By hand, with torch.distributions in the user's units: a continuous column
    # modelled standardised is N(shift + scale * mean, scale^2 * var).
    likelihood = Mixed(_table_columns())
    values, x, out = _table_data(leading)
    assert likelihood.n_outputs(x.shape[-1]) == out.shape[-1]
    log_var = Gaussian().log_var(out[..., 2:4])
    shift, scale = torch.tensor([1.0, -3.0]), torch.tensor([2.0, 0.5])
    expected = Normal(shift + scale * out[..., 0:2], scale * torch.exp(0.5 * log_var))
    expected = expected.log_prob(values["g"]).sum(-1)
    expected += Poisson(torch.exp(out[..., 4:6])).log_prob(values["c"]).sum(-1)
    expected += TorchBernoulli(logits=out[..., 6:7]).log_prob(values["b"]).sum(-1)
    expected += Categorical(logits=out[..., 7:10]).log_prob(values["k1"])
    expected += Categorical(logits=out[..., 10:12]).log_prob(values["k2"])
    torch.testing.assert_close(
        likelihood.log_prob(x, (out,)), expected, rtol=1e-12, atol=1e-12
    )


def test_mixed_missing_cells_drop_out_entry_by_entry():
    likelihood = Mixed(_table_columns())
    _, x, out = _table_data()
    observed = torch.ones_like(x, dtype=torch.bool)
    observed[0, 1] = False  # the second continuous column
    observed[0, 5:8] = False  # k1's block
    observed[0, 8] = False  # an entry of k2's block
    terms = likelihood.log_prob_terms(x, (out,))
    full = likelihood.masked_log_prob(x, (out,), torch.ones_like(observed))
    masked = likelihood.masked_log_prob(x, (out,), observed)
    torch.testing.assert_close(full, likelihood.log_prob(x, (out,)))
    dropped = terms[0, 1] + terms[0, 5:9].sum()
    torch.testing.assert_close(masked[0], full[0] - dropped)
    # A one-hot block's terms sum to its level's log-probability; the zeros of
    # the block add nothing.
    assert terms[0, 5].item() == 0.0 and terms[0, 6].item() == 0.0
    torch.testing.assert_close(
        terms[0, 5:8].sum(), torch.log_softmax(out[0, 7:10], -1)[2]
    )


def test_mixed_mean_and_sample_in_the_matrix_units():
    likelihood = Mixed(_table_columns())
    _, x, out = _table_data()
    out = out.expand(500, *out.shape)  # 500 draws from the same output
    mean = likelihood.mean((out,))
    assert mean.shape == (500, 2, x.shape[-1])
    torch.testing.assert_close(mean[..., 0:2], out[..., 0:2])
    rates = torch.exp(out[..., 4:6])
    torch.testing.assert_close(
        mean[..., 2:4], (rates - torch.tensor([4.0, 0.5])) / torch.tensor([3.0, 0.7])
    )
    torch.testing.assert_close(mean[..., 5:8].sum(-1), torch.ones(500, 2).double())
    draws = likelihood.sample((out,), torch.Generator().manual_seed(0))
    counts = draws[..., 2:4] * torch.tensor([3.0, 0.7]) + torch.tensor([4.0, 0.5])
    torch.testing.assert_close(counts, counts.round())
    assert set(draws[..., 4].unique().tolist()) == {0.0, 1.0}
    assert torch.all(draws[..., 5:8].sum(-1) == 1) and torch.all(
        draws[..., 8:10].sum(-1) == 1
    )
    # The draws' averages approach the means.
    torch.testing.assert_close(
        draws[..., 5:8].mean(0), mean[0, :, 5:8], atol=0.1, rtol=0
    )
    again = likelihood.sample((out,), torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_mixed_pieces_group_neighbouring_columns_of_one_kind():
    likelihood = Mixed(_table_columns())
    kinds = [type(piece).__name__ for piece, _, _ in likelihood.pieces]
    assert kinds == ["Gaussian", "Poisson", "Bernoulli", "Categorical", "Categorical"]
    assert [o for _, _, o in likelihood.pieces] == [
        slice(0, 4),
        slice(4, 6),
        slice(6, 7),
        slice(7, 10),
        slice(10, 12),
    ]
