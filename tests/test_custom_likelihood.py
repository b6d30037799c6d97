"""A likelihood written with only log_prob, mean and sample trains and scores.

``Laplace`` below is what a user adding a decoder distribution would write: three
methods over ``torch.distributions``, no gradient. Autograd trains it, the
hand-written pass takes its gradient from autograd too, and the estimator fits,
scores and samples with it once it is registered.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import StrOptions

import skvae._likelihoods
from skvae import VAETransformer
from skvae._gradients import negative_elbo_backward
from skvae._likelihoods import Likelihood
from skvae._model import VAEConfig, build_vae
from skvae._training import autograd_step, choose_gradient


class Laplace(Likelihood):
    """Laplace(x; mu(z), b(z)) with b = softplus(raw) + 1e-3."""

    name = "laplace"
    n_heads = 2

    def _dist(self, heads):
        loc, raw = heads
        return torch.distributions.Laplace(loc, F.softplus(raw) + 1e-3)

    def log_prob(self, x, heads):
        return self._dist(heads).log_prob(x).sum(-1)

    def mean(self, heads):
        return heads[0]

    def sample(self, heads, generator):
        # Inverse CDF of uniform draws from the caller's generator.
        u = torch.rand(heads[0].shape, generator=generator, dtype=heads[0].dtype)
        return self._dist(heads).icdf(u.clamp(1e-7, 1 - 1e-7))


N_FEATURES, LATENT = 6, 2


def _model(hidden=(5,)):
    config = VAEConfig(N_FEATURES, LATENT, hidden, "tanh", "gaussian")
    model = build_vae(config, torch.Generator().manual_seed(0)).double()
    model.likelihood = Laplace()  # same heads as the Gaussian decoder
    return model


def _batch(seed, rows=9, draws=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, N_FEATURES, generator=g, dtype=torch.float64)
    return x, torch.randn(draws, rows, LATENT, generator=g, dtype=torch.float64)


def test_gradient_defaults_to_autograd():
    likelihood = Laplace()
    assert not likelihood.closed_form_gradient
    assert skvae._likelihoods.Gaussian().closed_form_gradient
    x, _ = _batch(1)
    out = torch.randn(3, 9, 2 * N_FEATURES, dtype=torch.float64, requires_grad=True)
    expected = likelihood.log_prob(x, out.chunk(2, dim=-1))
    (expected_grad,) = torch.autograd.grad(expected.sum(), out)
    with torch.no_grad():  # as the hand-written pass calls it
        log_p, grad = likelihood.log_prob_and_grad(x, out)
    assert not log_p.requires_grad and not grad.requires_grad
    torch.testing.assert_close(log_p, expected.detach(), rtol=0, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)


@pytest.mark.parametrize("hidden", [(), (5,), (5, 4)])
def test_both_training_paths_agree(hidden):
    model = _model(hidden)
    x, eps = _batch(2)
    _, rec, kl = autograd_step("elbo")(model, x, eps, 1.0)
    expected = [p.grad.clone() for p in model.parameters()]
    rec2, kl2 = negative_elbo_backward(model, x, eps, 1.0)
    torch.testing.assert_close(kl2, kl)
    for p, grad in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rec2, rec)
    # With no closed form for the likelihood, "auto" keeps to autograd.
    assert choose_gradient("auto", model, "elbo", torch.device("cpu")) == "autograd"


@pytest.fixture
def laplace_registered(monkeypatch):
    """Laplace as one class among the likelihoods and one word in the constraints."""
    monkeypatch.setitem(skvae._likelihoods.LIKELIHOODS, "laplace", Laplace)
    names = set(skvae._likelihoods.LIKELIHOODS)
    monkeypatch.setitem(
        VAETransformer._parameter_constraints, "likelihood", [StrOptions(names)]
    )


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_estimator_fits_scores_and_samples(laplace_registered, objective):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 2))
    X = z @ rng.standard_normal((2, N_FEATURES)) + rng.laplace(size=(300, 6)) * 0.1
    est = VAETransformer(
        likelihood="laplace",
        objective=objective,
        n_mc_samples=3,
        hidden_layer_sizes=(16,),
        learning_rate_init=0.01,
        max_iter=60,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    assert est.gradient_ == "autograd"
    assert isinstance(est.module_.likelihood, Laplace)
    elbo = est.score_samples(X)
    assert np.isfinite(elbo).all()
    # The features share a 2-d latent cause: the fitted ELBO, a lower bound,
    # beats the best model of independent Laplace features (median, mean absolute
    # deviation) by far (-3.0 and -4.4 nats against -9.5).
    median = np.median(X, axis=0)
    scale = np.abs(X - median).mean(axis=0)
    independent = (-np.abs(X - median) / scale - np.log(2 * scale)).sum(1).mean()
    assert est.score(X) > independent + 4
    samples = est.sample(50, random_state=0, observation_noise=True)
    assert samples.shape == (50, N_FEATURES) and np.isfinite(samples).all()
    assert np.array_equal(
        samples, est.sample(50, random_state=0, observation_noise=True)
    )
