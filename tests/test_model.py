"""The VAE's networks and losses, checked against closed forms and torch.distributions.

Several checks use a linear-Gaussian VAE (no hidden layers, identity activation),
whose marginal p(x), exact posterior p(z | x) and ELBO are Gaussian closed forms.
"""

import math
from itertools import pairwise

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli as TorchBernoulli
from torch.distributions import MultivariateNormal, Normal, kl_divergence
from torch.nn.utils import parameters_to_vector

from skvae._likelihoods import GAUSSIAN_MIN_VARIANCE
from skvae._model import (
    ACTIVATIONS,
    VAE,
    VAEConfig,
    build_vae,
    elbo,
    gaussian_kl,
    importance_log_likelihood,
    negative_elbo,
)

N_FEATURES, LATENT = 4, 2
CONFIG = VAEConfig(n_features=N_FEATURES, latent_dim=LATENT, hidden_layer_sizes=(8,))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed, scale=1.0):
    return scale * torch.randn(shape, generator=_gen(seed), dtype=torch.float64)


def _model(likelihood="gaussian", seed=0, hidden=(8,), activation="tanh"):
    config = VAEConfig(N_FEATURES, LATENT, hidden, activation, likelihood)
    return build_vae(config, _gen(seed)).double()


def _data(likelihood, n_rows, seed):
    x = _randn(n_rows, N_FEATURES, seed=seed)
    return (x > 0).double() if likelihood == "bernoulli" else x


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
_Q, _ = torch.linalg.qr(_randn(N_FEATURES, LATENT, seed=100))
LG_SCALES = torch.tensor([1.5, 0.7], dtype=torch.float64)
LG_W = _Q * LG_SCALES  # (D, d), W^T W = diag(scales^2)
LG_B = _randn(N_FEATURES, seed=101)
LG_RAW = math.log(0.3)
LG_NOISE_VAR = GAUSSIAN_MIN_VARIANCE + math.exp(LG_RAW)
LG_POST_VAR = 1.0 / (1.0 + LG_SCALES.square() / LG_NOISE_VAR)  # (d,)
LG_A = LG_POST_VAR[:, None] * LG_W.T / LG_NOISE_VAR  # posterior mean = A (x - b)
LG_X = LG_B + _randn(5, N_FEATURES, seed=102, scale=1.5)


def _linear_gaussian_vae(mu_shift=0.0, log_var_shift=0.0):
    """The linear-Gaussian VAE; with zero shifts q(z|x) is the exact posterior."""
    config = VAEConfig(N_FEATURES, LATENT, (), "identity", "gaussian")
    model = build_vae(config, _gen(0)).double()
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
    eps = _randn(n_samples, 1 if shared else len(LG_X), LATENT, seed=n_samples)
    got = importance_log_likelihood(model, LG_X, eps)
    assert got.shape == (len(LG_X),)
    torch.testing.assert_close(got, _lg_log_marginal(LG_X), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shifts", [(0.0, 0.0), SHIFTS])
def test_elbo_matches_closed_form(shifts):
    model = _linear_gaussian_vae(*shifts)
    n_draws = 20_000
    eps = _randn(n_draws, len(LG_X), LATENT, seed=7)
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
        est = importance_log_likelihood(model, x, _randn(k, len(x), LATENT, seed=k))
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

MU = _randn(6, 3, seed=20)
LOG_VAR = _randn(6, 3, seed=21, scale=1.5)


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
    z = mu + torch.exp(0.5 * log_var) * _randn(n, *mu.shape, seed=22)
    log_ratio = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1)  # (n, 2)
    tol = 5 * log_ratio.std(0) / math.sqrt(n)
    assert torch.all((log_ratio.mean(0) - gaussian_kl(mu, log_var)).abs() <= tol)


# ------------------------------------------------------------------ elbo


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("eps_rows", ["per_row", "shared"])
def test_elbo_shapes_and_reference(likelihood, eps_rows):
    model = _model(likelihood)
    x = _data(likelihood, 6, seed=30)
    n_draws = 3
    eps = _randn(n_draws, 6 if eps_rows == "per_row" else 1, LATENT, seed=31)
    log_px, kl = elbo(model, x, eps)
    assert log_px.shape == kl.shape == (6,)

    mu, log_var = model.encode(x)
    z = mu + torch.exp(0.5 * log_var) * eps  # (L, B, d)
    ref_log_px = _log_px_reference(model, x, z).mean(0)
    q = Normal(mu, torch.exp(0.5 * log_var))
    ref_kl = kl_divergence(q, Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(log_px, ref_log_px)
    torch.testing.assert_close(kl, ref_kl)

    # The module's forward is elbo().
    fwd = model(x, eps)
    torch.testing.assert_close(fwd[0], log_px, rtol=0, atol=0)
    torch.testing.assert_close(fwd[1], kl, rtol=0, atol=0)


def test_elbo_shared_draws_equal_expanded_draws():
    model = _model()
    x = _data("gaussian", 6, seed=32)
    eps = _randn(4, 1, LATENT, seed=33)
    shared = elbo(model, x, eps)
    expanded = elbo(model, x, eps.expand(4, 6, LATENT).contiguous())
    for a, b in zip(shared, expanded, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_elbo_row_does_not_depend_on_batch_with_shared_draws(likelihood):
    model = _model(likelihood)
    x = _data(likelihood, 9, seed=34)
    eps = _randn(5, 1, LATENT, seed=35)
    log_px, kl = elbo(model, x, eps)
    for i in (0, 4, 8):
        alone = elbo(model, x[i : i + 1], eps)
        torch.testing.assert_close(alone[0][0], log_px[i], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(alone[1][0], kl[i], rtol=1e-12, atol=1e-12)
    # ... nor on the other rows' values.
    other = x.clone()
    other[1:] = _data(likelihood, 8, seed=36)
    torch.testing.assert_close(elbo(model, other, eps)[0][0], log_px[0])


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0])
def test_negative_elbo_parts(beta):
    model = _model()
    x = _data("gaussian", 5, seed=37)
    eps = _randn(2, 5, LATENT, seed=38)
    log_px, kl = elbo(model, x, eps)
    loss, rec, kl2 = negative_elbo(model, x, eps, beta)
    torch.testing.assert_close(rec, -log_px)
    torch.testing.assert_close(kl2, kl)
    torch.testing.assert_close(loss, beta * kl - log_px)


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
    model = _model(likelihood, seed=1)
    x = _data(likelihood, 6, seed=40)
    eps = _randn(n_samples, 1 if shared else 6, LATENT, seed=41)
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
    model = _model(likelihood, seed=2)
    x = _data(likelihood, 200, seed=42)
    log_px, kl = elbo(model, x, _randn(256, 200, LATENT, seed=43))
    iwae = importance_log_likelihood(model, x, _randn(64, 200, LATENT, seed=44))
    diff = iwae - (log_px - kl)
    assert diff.mean() > 3 * diff.std() / math.sqrt(len(diff))


# ------------------------------------------------------------------ build_vae


def test_build_vae_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    build_vae(CONFIG, _gen(0))
    assert torch.equal(state, torch.random.get_rng_state())


def _weights(model):
    return parameters_to_vector(model.parameters()).detach()


def test_build_vae_reproducible_per_generator_seed():
    a, b, c = (build_vae(CONFIG, _gen(seed)) for seed in (3, 3, 4))
    assert torch.equal(_weights(a), _weights(b))
    assert not torch.equal(_weights(a), _weights(c))


def test_build_vae_uses_the_generator():
    gen = _gen(5)
    build_vae(CONFIG, gen)
    assert not torch.equal(gen.get_state(), _gen(5).get_state())


def _linears(module):
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("likelihood, n_heads", [("gaussian", 2), ("bernoulli", 1)])
@pytest.mark.parametrize("hidden", [(), (16,), (16, 8)])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_build_vae_architecture(likelihood, n_heads, hidden, activation):
    config = VAEConfig(5, 3, hidden, activation, likelihood)
    model = build_vae(config, _gen(0))
    assert isinstance(model, VAE) and model.config == config
    enc_sizes = (5, *hidden, 6)
    dec_sizes = (3, *reversed(hidden), n_heads * 5)
    for module, sizes in [(model.encoder, enc_sizes), (model.decoder, dec_sizes)]:
        linears = _linears(module)
        shapes = [(m.in_features, m.out_features) for m in linears]
        assert shapes == list(pairwise(sizes))
        # One activation after each hidden layer, none after the output head.
        acts = [m for m in module.modules() if isinstance(m, ACTIVATIONS[activation])]
        assert len(acts) == len(hidden)
    for p in model.parameters():
        assert p.dtype == torch.float32 and p.device.type == "cpu"
        assert torch.isfinite(p).all()

    z = torch.zeros(7, 3)
    heads = model.decode(z)
    assert len(heads) == n_heads
    assert all(h.shape == (7, 5) for h in heads)
    mu, log_var = model.encode(torch.zeros(7, 5))
    assert mu.shape == log_var.shape == (7, 3)


def test_build_vae_uses_nn_linear_initialisation():
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, as nn.Linear does.
    model = build_vae(VAEConfig(30, 10, (50, 20)), _gen(0))
    for linear in _linears(model):
        bound = 1.0 / math.sqrt(linear.in_features)
        for param in (linear.weight.detach(), linear.bias.detach()):
            assert torch.all(param.abs() <= bound)
        # Uniform(-a, a) has variance a^2 / 3; five standard errors of the sample
        # variance (fourth central moment a^4 / 5).
        w = linear.weight.detach()
        var_tol = 5 * math.sqrt((bound**4 / 5 - bound**4 / 9) / w.numel())
        assert abs(w.square().mean().item() - bound**2 / 3) <= var_tol
        assert linear.bias.detach().abs().max() > 0


# ------------------------------------------------------------------ small pieces


def test_reparameterize_exact():
    mu = _randn(4, 3, seed=50)
    log_var = _randn(4, 3, seed=51)
    eps = _randn(5, 4, 3, seed=52)
    z = VAE.reparameterize(mu, log_var, eps)
    assert z.shape == (5, 4, 3)
    assert torch.equal(z, mu + torch.exp(0.5 * log_var) * eps)
    # Per draw: mu + sigma * eps_l with sigma the standard deviation.
    torch.testing.assert_close(z[2], mu + torch.exp(log_var).sqrt() * eps[2])
    # Zero noise gives the mean; zero log-variance gives mu + eps.
    assert torch.equal(VAE.reparameterize(mu, log_var, torch.zeros(4, 3).double()), mu)
    zero = torch.zeros_like(log_var)
    assert torch.equal(VAE.reparameterize(mu, zero, eps), mu + eps)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_decode_mean(likelihood):
    model = _model(likelihood)
    z = _randn(6, LATENT, seed=53)
    heads = model.decode(z)
    mean = model.decode_mean(z)
    if likelihood == "gaussian":
        assert torch.equal(mean, heads[0])
    else:
        torch.testing.assert_close(mean, TorchBernoulli(logits=heads[0]).mean)
        assert torch.all((mean > 0) & (mean < 1))
