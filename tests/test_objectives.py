"""The losses of skvae._objectives against closed forms and torch.distributions.

Several checks use a linear-Gaussian VAE (no hidden layers, identity activation),
whose marginal p(x), exact posterior p(z | x) and ELBO are Gaussian closed forms.
"""

import math

import pytest
import torch
from small_vae import LATENT, N_FEATURES, data, gen, randn, small_vae
from torch.distributions import Bernoulli as TorchBernoulli
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from skvae._likelihoods import GAUSSIAN_MIN_VARIANCE
from skvae._model import VAEConfig, build_vae
from skvae._objectives import (
    OBJECTIVES,
    elbo,
    gaussian_kl,
    importance_log_likelihood,
    negative_elbo,
    negative_iwae,
)


def _log_px_reference(model, x, z):
    """log p(x | z) summed over features, from torch.distributions."""
    heads = model.decode(z)
    if model.config.likelihood == "bernoulli":
        return TorchBernoulli(logits=heads[0]).log_prob(x.expand_as(heads[0])).sum(-1)
    mean, raw = heads
    # The guarded variance exp(floor + softplus(raw - floor)) is min_var + exp(raw).
    std = torch.sqrt(GAUSSIAN_MIN_VARIANCE + torch.exp(raw))
    return Normal(mean, std).log_prob(x).sum(-1)


# ------------------------------------------------------------------ linear Gaussian

# Decoder x = W z + b + noise with orthogonal columns of W, so the exact posterior
# covariance is diagonal and the encoder (linear) can represent it.
_Q, _ = torch.linalg.qr(randn(N_FEATURES, LATENT, seed=100))
LG_SCALES = torch.tensor([1.5, 0.7], dtype=torch.float64)
LG_W = _Q * LG_SCALES  # (D, d), W^T W = diag(scales^2)
LG_B = randn(N_FEATURES, seed=101)
LG_RAW = math.log(0.3)
LG_NOISE_VAR = GAUSSIAN_MIN_VARIANCE + math.exp(LG_RAW)
LG_POST_VAR = 1.0 / (1.0 + LG_SCALES.square() / LG_NOISE_VAR)  # (d,)
LG_A = LG_POST_VAR[:, None] * LG_W.T / LG_NOISE_VAR  # posterior mean = A (x - b)
LG_X = LG_B + randn(5, N_FEATURES, seed=102, scale=1.5)


def _linear_gaussian_vae(mu_shift=0.0, log_var_shift=0.0):
    """The linear-Gaussian VAE; with zero shifts q(z|x) is the exact posterior."""
    config = VAEConfig(N_FEATURES, LATENT, (), "identity", "gaussian")
    model = build_vae(config, gen(0)).double()
    with torch.no_grad():
        enc, dec = model.encoder.head, model.decoder.head
        enc.weight.zero_()
        enc.weight[:LATENT] = LG_A
        enc.bias[:LATENT] = -LG_A @ LG_B + mu_shift
        enc.bias[LATENT:] = LG_POST_VAR.log() + log_var_shift
        dec.weight.zero_()
        dec.weight[:N_FEATURES] = LG_W
        dec.bias[:N_FEATURES] = LG_B
        dec.bias[N_FEATURES:] = LG_RAW
    return model


def _lg_log_marginal(x):
    cov = LG_W @ LG_W.T + LG_NOISE_VAR * torch.eye(N_FEATURES, dtype=torch.float64)
    return MultivariateNormal(LG_B, cov).log_prob(x)


def _lg_q(x, mu_shift, log_var_shift):
    mean = (x - LG_B) @ LG_A.T + mu_shift
    var = LG_POST_VAR * math.exp(log_var_shift)
    return mean, var


def _lg_elbo(x, mu_shift, log_var_shift):
    """E_q[log p(x|z)] - KL(q || N(0, I)) in closed form."""
    m, v = _lg_q(x, mu_shift, log_var_shift)
    resid = x - m @ LG_W.T - LG_B
    trace = (v * LG_SCALES.square()).sum()
    expected_log_px = (
        -0.5 * N_FEATURES * math.log(2 * math.pi * LG_NOISE_VAR)
        - 0.5 * (resid.square().sum(-1) + trace) / LG_NOISE_VAR
    )
    kl = 0.5 * (m.square() + v - 1.0 - v.log()).sum(-1)
    return expected_log_px, kl


SHIFTS = (0.5, -0.7)  # a q(z|x) visibly off the exact posterior


def test_linear_gaussian_closed_forms_agree():
    # Guards the construction: ELBO = log p(x) - KL(q || p(z|x)) for any q.
    m, v = _lg_q(LG_X, *SHIFTS)
    post_mean, post_var = _lg_q(LG_X, 0.0, 0.0)
    gap = kl_divergence(Normal(m, v.sqrt()), Normal(post_mean, post_var.sqrt()))
    log_px, kl = _lg_elbo(LG_X, *SHIFTS)
    torch.testing.assert_close(log_px - kl, _lg_log_marginal(LG_X) - gap.sum(-1))
    log_px0, kl0 = _lg_elbo(LG_X, 0.0, 0.0)
    torch.testing.assert_close(log_px0 - kl0, _lg_log_marginal(LG_X))


@pytest.mark.parametrize("n_samples", [1, 3, 50])
@pytest.mark.parametrize("shared", [False, True])
def test_importance_log_likelihood_exact_with_exact_posterior(n_samples, shared):
    # With q = p(z|x), every importance weight is p(x): the estimate is exact.
    model = _linear_gaussian_vae()
    eps = randn(n_samples, 1 if shared else len(LG_X), LATENT, seed=n_samples)
    got = importance_log_likelihood(model, LG_X, eps)
    assert got.shape == (len(LG_X),)
    torch.testing.assert_close(got, _lg_log_marginal(LG_X), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shifts", [(0.0, 0.0), SHIFTS])
def test_elbo_matches_closed_form(shifts):
    model = _linear_gaussian_vae(*shifts)
    n_draws = 20_000
    eps = randn(n_draws, len(LG_X), LATENT, seed=7)
    log_px, kl = elbo(model, LG_X, eps)
    ref_log_px, ref_kl = _lg_elbo(LG_X, *shifts)
    torch.testing.assert_close(kl, ref_kl)
    # The reconstruction term is a Monte-Carlo mean: five standard errors.
    mu, log_var = model.encode(LG_X)
    per_draw = _log_px_reference(model, LG_X, mu + torch.exp(0.5 * log_var) * eps)
    tol = 5 * per_draw.std(0) / math.sqrt(n_draws)
    assert torch.all((log_px - ref_log_px).abs() <= tol)


def test_importance_log_likelihood_tightens_with_k():
    model = _linear_gaussian_vae(*SHIFTS)
    n_rep = 400
    x = LG_X.repeat(n_rep, 1)  # independent replicates of each row
    log_marginal = _lg_log_marginal(LG_X)
    log_px, kl = _lg_elbo(LG_X, *SHIFTS)
    exact_elbo = log_px - kl
    assert torch.all(log_marginal - exact_elbo > 0.1)  # a gap worth closing

    means = []
    for k in (1, 4, 16, 64):
        est = importance_log_likelihood(model, x, randn(k, len(x), LATENT, seed=k))
        est = est.reshape(n_rep, len(LG_X))
        se = est.std(0) / math.sqrt(n_rep)
        mean = est.mean(0)
        # Never above log p(x) in expectation (Burda et al., 2016).
        assert torch.all(mean <= log_marginal + 5 * se)
        if k == 1:
            # One sample: an unbiased estimate of the ELBO itself.
            assert torch.all((mean - exact_elbo).abs() <= 5 * se)
        means.append(mean.mean().item())
    assert means == sorted(means)
    assert means[0] < means[-1]
    # More than half of the ELBO's gap is closed by K = 64.
    gap = (log_marginal - exact_elbo).mean().item()
    assert log_marginal.mean().item() - means[-1] < 0.5 * gap


# ------------------------------------------------------------------ gaussian_kl

MU = randn(6, 3, seed=20)
LOG_VAR = randn(6, 3, seed=21, scale=1.5)


def test_gaussian_kl_matches_torch():
    q = Normal(MU, torch.exp(0.5 * LOG_VAR))
    p = Normal(torch.zeros_like(MU), torch.ones_like(MU))
    got = gaussian_kl(MU, LOG_VAR)
    assert got.shape == (6,)
    torch.testing.assert_close(got, kl_divergence(q, p).sum(-1))


def test_gaussian_kl_zero_only_at_prior():
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    torch.testing.assert_close(gaussian_kl(zeros, zeros), torch.zeros(2).double())
    assert torch.all(gaussian_kl(MU, LOG_VAR) > 0)


def test_gaussian_kl_matches_monte_carlo():
    n = 200_000
    mu, log_var = MU[:2], LOG_VAR[:2]
    q = Normal(mu, torch.exp(0.5 * log_var))
    z = mu + torch.exp(0.5 * log_var) * randn(n, *mu.shape, seed=22)
    log_ratio = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1)  # (n, 2)
    tol = 5 * log_ratio.std(0) / math.sqrt(n)
    assert torch.all((log_ratio.mean(0) - gaussian_kl(mu, log_var)).abs() <= tol)


# ------------------------------------------------------------------ elbo


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("eps_rows", ["per_row", "shared"])
def test_elbo_shapes_and_reference(likelihood, eps_rows):
    model = small_vae(likelihood)
    x = data(likelihood, 6, seed=30)
    n_draws = 3
    eps = randn(n_draws, 6 if eps_rows == "per_row" else 1, LATENT, seed=31)
    log_px, kl = elbo(model, x, eps)
    assert log_px.shape == kl.shape == (6,)

    mu, log_var = model.encode(x)
    z = mu + torch.exp(0.5 * log_var) * eps  # (L, B, d)
    ref_log_px = _log_px_reference(model, x, z).mean(0)
    q = Normal(mu, torch.exp(0.5 * log_var))
    ref_kl = kl_divergence(q, Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(log_px, ref_log_px)
    torch.testing.assert_close(kl, ref_kl)


def test_elbo_shared_draws_equal_expanded_draws():
    model = small_vae()
    x = data("gaussian", 6, seed=32)
    eps = randn(4, 1, LATENT, seed=33)
    shared = elbo(model, x, eps)
    expanded = elbo(model, x, eps.expand(4, 6, LATENT).contiguous())
    for a, b in zip(shared, expanded, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_elbo_row_does_not_depend_on_batch_with_shared_draws(likelihood):
    model = small_vae(likelihood)
    x = data(likelihood, 9, seed=34)
    eps = randn(5, 1, LATENT, seed=35)
    log_px, kl = elbo(model, x, eps)
    for i in (0, 4, 8):
        alone = elbo(model, x[i : i + 1], eps)
        torch.testing.assert_close(alone[0][0], log_px[i], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(alone[1][0], kl[i], rtol=1e-12, atol=1e-12)
    # ... nor on the other rows' values.
    other = x.clone()
    other[1:] = data(likelihood, 8, seed=36)
    torch.testing.assert_close(elbo(model, other, eps)[0][0], log_px[0])


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0])
def test_negative_elbo_parts(beta):
    model = small_vae()
    x = data("gaussian", 5, seed=37)
    eps = randn(2, 5, LATENT, seed=38)
    log_px, kl = elbo(model, x, eps)
    loss, rec, kl2, bound = negative_elbo(model, x, eps, beta)
    torch.testing.assert_close(rec, -log_px)
    torch.testing.assert_close(kl2, kl)
    torch.testing.assert_close(loss, beta * kl - log_px)
    torch.testing.assert_close(bound, log_px - kl)


# ------------------------------------------------------------------ importance sampling


def _log_weights_reference(model, x, eps):
    """log p(x|z) + log p(z) - log q(z|x) per draw, from torch.distributions."""
    mu, log_var = model.encode(x)
    q = Normal(mu, torch.exp(0.5 * log_var))
    z = q.mean + q.stddev * eps
    log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
    return _log_px_reference(model, x, z) + log_prior - q.log_prob(z).sum(-1)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("n_samples", [1, 5])
@pytest.mark.parametrize("shared", [False, True])
def test_importance_log_likelihood_matches_reference(likelihood, n_samples, shared):
    model = small_vae(likelihood, seed=1)
    x = data(likelihood, 6, seed=40)
    eps = randn(n_samples, 1 if shared else 6, LATENT, seed=41)
    got = importance_log_likelihood(model, x, eps)
    log_w = _log_weights_reference(model, x, eps)
    ref = torch.logsumexp(log_w, 0) - math.log(n_samples)
    assert got.shape == (6,)
    torch.testing.assert_close(got, ref)
    if n_samples == 1:
        # One draw: the single-sample ELBO with the Monte-Carlo KL.
        torch.testing.assert_close(got, log_w[0])


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_importance_log_likelihood_above_elbo_on_average(likelihood):
    model = small_vae(likelihood, seed=2)
    x = data(likelihood, 200, seed=42)
    log_px, kl = elbo(model, x, randn(256, 200, LATENT, seed=43))
    iwae = importance_log_likelihood(model, x, randn(64, 200, LATENT, seed=44))
    diff = iwae - (log_px - kl)
    assert diff.mean() > 3 * diff.std() / math.sqrt(len(diff))


# ------------------------------------------------------------------ IWAE objective


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("n_samples", [1, 5])
@pytest.mark.parametrize("beta", [1.0, 0.4])
def test_negative_iwae_matches_reference(likelihood, n_samples, beta):
    # Burda et al. (2016), eq. 8, from torch.distributions; beta weighs the
    # prior-to-posterior ratio inside each weight.
    model = small_vae(likelihood, seed=3)
    x = data(likelihood, 6, seed=60)
    eps = randn(n_samples, 6, LATENT, seed=61)
    mu, log_var = model.encode(x)
    q = Normal(mu, torch.exp(0.5 * log_var))
    z = q.mean + q.stddev * eps
    log_px = _log_px_reference(model, x, z)  # (K, B)
    log_ratio = (Normal(0.0, 1.0).log_prob(z) - q.log_prob(z)).sum(-1)

    def log_mean_exp(v):
        return torch.logsumexp(v, 0) - math.log(n_samples)

    terms = negative_iwae(model, x, eps, beta)
    torch.testing.assert_close(terms.loss, -log_mean_exp(log_px + beta * log_ratio))
    torch.testing.assert_close(terms.bound, log_mean_exp(log_px + log_ratio))
    torch.testing.assert_close(terms.reconstruction, -log_px.mean(0))
    torch.testing.assert_close(terms.kl, gaussian_kl(mu, log_var))
    if n_samples == 1:
        # One draw: the beta-weighted single-sample ELBO with a Monte-Carlo KL.
        torch.testing.assert_close(terms.loss, -(log_px[0] + beta * log_ratio[0]))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_iwae_bound_not_below_the_mean_log_weight(likelihood):
    # log of a mean >= mean of the logs (Jensen), draw by draw: with the same
    # draws the IWAE bound is never below the average single-draw bound.
    model = small_vae(likelihood, seed=4)
    x = data(likelihood, 30, seed=62)
    eps = randn(8, 30, LATENT, seed=63)
    bound = negative_iwae(model, x, eps).bound
    single = torch.stack([negative_iwae(model, x, e[None]).bound for e in eps])
    assert torch.all(bound >= single.mean(0) - 1e-12)
    assert torch.all(bound > single.mean(0) + 1e-6)  # strictly, as weights differ


@pytest.mark.parametrize("n_samples", [1, 7])
def test_negative_iwae_exact_with_exact_posterior(n_samples):
    # With q = p(z|x) every weight is p(x): the loss is -log p(x) for any K.
    model = _linear_gaussian_vae()
    eps = randn(n_samples, len(LG_X), LATENT, seed=64)
    terms = negative_iwae(model, LG_X, eps)
    torch.testing.assert_close(terms.loss, -_lg_log_marginal(LG_X))
    torch.testing.assert_close(terms.bound, _lg_log_marginal(LG_X))


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objectives_share_one_shape(name):
    model = small_vae("bernoulli", seed=5)
    x = data("bernoulli", 7, seed=65)
    terms = OBJECTIVES[name](model, x, randn(3, 7, LATENT, seed=66), 1.0)
    assert all(t.shape == (7,) for t in terms)
    # At beta = 1 the loss is the negative of the bound.
    torch.testing.assert_close(terms.loss, -terms.bound)


# ------------------------------------------------------------------ missing values


def _hide(x, seed, share=0.4):
    """``x`` with about ``share`` of its entries NaN, row 0 complete and row 1
    empty; and the mask of the observed entries."""
    observed = torch.rand(x.shape, generator=gen(seed)) >= share
    observed[0], observed[1] = True, False
    return torch.where(observed, x, torch.nan), observed


def _observed_terms_reference(model, x, observed, z):
    """Each draw's sum over the observed features of log p(x_j | z), from
    torch.distributions, with the missing entries of x at 0."""
    heads = model.decode(z)
    if model.config.likelihood == "bernoulli":
        terms = TorchBernoulli(logits=heads[0]).log_prob(x.expand_as(heads[0]))
    else:
        mean, raw = heads
        std = torch.sqrt(GAUSSIAN_MIN_VARIANCE + torch.exp(raw))
        terms = Normal(mean, std).log_prob(x)
    return (terms * observed).sum(-1)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_elbo_leaves_missing_entries_out(likelihood):
    model = small_vae(likelihood)
    x = data(likelihood, 8, seed=50)
    x_nan, observed = _hide(x, seed=51)
    eps = randn(3, 8, LATENT, seed=52)
    log_px, kl = elbo(model, x_nan, eps)
    # The encoder sees missing entries as 0.
    x0 = torch.where(observed, x, 0.0)
    mu, log_var = model.encode(x0)
    z = mu + torch.exp(0.5 * log_var) * eps
    ref = _observed_terms_reference(model, x0, observed, z).mean(0)
    torch.testing.assert_close(log_px, ref)
    torch.testing.assert_close(kl, gaussian_kl(mu, log_var))
    assert log_px[1] == 0.0  # nothing observed: log p(x_obs | z) = log 1
    # A complete row scores as it does in a batch without NaN.
    complete = elbo(model, x[:1], eps[:, :1])
    torch.testing.assert_close(log_px[0], complete[0][0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_importance_log_likelihood_of_the_observed_part(likelihood):
    model = small_vae(likelihood, seed=3)
    x = data(likelihood, 8, seed=53)
    x_nan, observed = _hide(x, seed=54)
    eps = randn(5, 1, LATENT, seed=55)
    got = importance_log_likelihood(model, x_nan, eps)
    x0 = torch.where(observed, x, 0.0)
    mu, log_var = model.encode(x0)
    q = Normal(mu, torch.exp(0.5 * log_var))
    z = q.mean + q.stddev * eps
    log_w = (
        _observed_terms_reference(model, x0, observed, z)
        + Normal(0.0, 1.0).log_prob(z).sum(-1)
        - q.log_prob(z).sum(-1)
    )
    torch.testing.assert_close(got, torch.logsumexp(log_w, 0) - math.log(5))


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_missing_entries_give_finite_gradients(name):
    model = small_vae("gaussian", seed=4)
    x_nan, _ = _hide(data("gaussian", 8, seed=56), seed=57)
    terms = OBJECTIVES[name](model, x_nan, randn(3, 8, LATENT, seed=58), 1.0)
    terms.loss.sum().backward()
    assert torch.isfinite(terms.loss).all()
    for p in model.parameters():
        assert torch.isfinite(p.grad).all()
