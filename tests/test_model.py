"""The VAE's networks: architecture, initialisation, reparameterisation, decoding."""

import math
from itertools import pairwise

import pytest
import torch
from small_vae import LATENT, N_FEATURES, data, gen, randn, small_vae
from torch import nn
from torch.distributions import Bernoulli as TorchBernoulli
from torch.nn.utils import parameters_to_vector

from skvae._model import ACTIVATIONS, VAE, Tanh, VAEConfig, build_vae, sigmoid_tanh

CONFIG = VAEConfig(n_features=N_FEATURES, latent_dim=LATENT, hidden_layer_sizes=(8,))


# ------------------------------------------------------------------ build_vae


def test_build_vae_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    build_vae(CONFIG, gen(0))
    assert torch.equal(state, torch.random.get_rng_state())


def _weights(model):
    return parameters_to_vector(model.parameters()).detach()


def test_build_vae_reproducible_per_generator_seed():
    a, b, c = (build_vae(CONFIG, gen(seed)) for seed in (3, 3, 4))
    assert torch.equal(_weights(a), _weights(b))
    assert not torch.equal(_weights(a), _weights(c))


def test_build_vae_uses_the_generator():
    generator = gen(5)
    build_vae(CONFIG, generator)
    assert not torch.equal(generator.get_state(), gen(5).get_state())


def _linears(module):
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("likelihood, n_heads", [("gaussian", 2), ("bernoulli", 1)])
@pytest.mark.parametrize("hidden", [(), (16,), (16, 8)])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_build_vae_architecture(likelihood, n_heads, hidden, activation):
    config = VAEConfig(5, 3, hidden, activation, likelihood)
    model = build_vae(config, gen(0))
    assert isinstance(model, VAE) and model.config == config
    enc_sizes = (5, *hidden, 6)
    dec_sizes = (3, *reversed(hidden), n_heads * 5)
    for module, sizes in [(model.encoder, enc_sizes), (model.decoder, dec_sizes)]:
        linears = _linears(module)
        shapes = [(m.in_features, m.out_features) for m in linears]
        assert shapes == list(pairwise(sizes))
        # One activation after each hidden layer, none after the output head.
        acts = [
            m for m in module.modules() if isinstance(m, ACTIVATIONS[activation].module)
        ]
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
    model = build_vae(VAEConfig(30, 10, (50, 20)), gen(0))
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
    mu = randn(4, 3, seed=50)
    log_var = randn(4, 3, seed=51)
    eps = randn(5, 4, 3, seed=52)
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
    model = small_vae(likelihood)
    z = randn(6, LATENT, seed=53)
    heads = model.decode(z)
    mean = model.decode_mean(z)
    if likelihood == "gaussian":
        assert torch.equal(mean, heads[0])
    else:
        torch.testing.assert_close(mean, TorchBernoulli(logits=heads[0]).mean)
        assert torch.all((mean > 0) & (mean < 1))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_forward_decodes_the_reparameterised_draws(likelihood):
    model = small_vae(likelihood)
    x = data(likelihood, 5, seed=54)
    eps = randn(3, 5, LATENT, seed=55)
    heads, mu, log_var = model(x, eps)
    assert torch.equal(torch.stack(model.encode(x)), torch.stack([mu, log_var]))
    expected = model.decode(mu + torch.exp(0.5 * log_var) * eps)
    for got, want in zip(heads, expected, strict=True):
        assert got.shape == (3, 5, N_FEATURES)
        assert torch.equal(got, want)


# ------------------------------------------------------------------ tanh's fast path


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_tanh_is_tanh_to_a_few_ulps(dtype):
    x = torch.linspace(-30.0, 30.0, 600_001, dtype=dtype)
    error = (sigmoid_tanh(x) - torch.tanh(x)).abs().max().item()
    assert error <= 3 * torch.finfo(dtype).eps
    ends = torch.tensor([-30.0, 0.0, 30.0], dtype=dtype)
    assert sigmoid_tanh(ends).tolist() == [-1.0, 0.0, 1.0]


def test_tanh_takes_the_fast_path_only_in_cpu_inference():
    layer = ACTIVATIONS["tanh"].module()
    assert type(layer) is Tanh and isinstance(layer, nn.Tanh)
    x = randn(64, 500, seed=7).float() * 3
    with torch.inference_mode():
        assert torch.equal(layer(x), sigmoid_tanh(x))
    assert not torch.equal(sigmoid_tanh(x), torch.tanh(x))  # the test can tell them
    with torch.no_grad():  # the hand-written training pass
        assert torch.equal(layer(x), torch.tanh(x))
    leaf = x.clone().requires_grad_()
    layer(leaf).sum().backward()
    torch.testing.assert_close(leaf.grad, 1 - torch.tanh(x).square())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("gradient", ["closed_form", "autograd"])
def test_fast_tanh_leaves_the_fitted_model_unchanged(monkeypatch, gradient):
    # Training steps run torch.tanh, and the monitored loss that decides when to
    # stop differs by rounding only: the same weights as with nn.Tanh's forward.
    from skvae import VAETransformer

    X = data("gaussian", 200, seed=8).numpy()

    def fit():
        vae = VAETransformer(latent_dim=2, gradient=gradient, random_state=0)
        return vae.fit(X)

    fast = fit()
    monkeypatch.setattr(Tanh, "forward", lambda self, input: torch.tanh(input))
    plain = fit()
    x = randn(64, 50, seed=9).float() * 3
    with torch.inference_mode():
        assert torch.equal(Tanh()(x), torch.tanh(x))  # the patch took
    assert fast.n_iter_ == plain.n_iter_
    assert torch.equal(_weights(fast.module_), _weights(plain.module_))
