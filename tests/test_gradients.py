"""The hand-written forward and backward pass, held to autograd's."""

import copy
import itertools

import pytest
import torch
from torch import nn

from skvae._gradients import (
    UnsupportedModelError,
    negative_elbo_backward,
    unsupported_reason,
)
from skvae._likelihoods import LIKELIHOODS
from skvae._model import ACTIVATIONS, VAE, VAEConfig, build_vae
from skvae._objectives import negative_elbo
from skvae._training import autograd_step

N_FEATURES, LATENT, BATCH = 9, 3, 11


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _model(likelihood="gaussian", activation="tanh", hidden=(7,), seed=0):
    config = VAEConfig(N_FEATURES, LATENT, hidden, activation, likelihood)
    return build_vae(config, _gen(seed)).double()


def _batch(seed, n_draws=1, shared=False):
    g = _gen(seed)
    x = torch.rand(BATCH, N_FEATURES, generator=g, dtype=torch.float64)
    eps = torch.randn(n_draws, 1 if shared else BATCH, LATENT, generator=g).double()
    return x, eps


def _autograd(model, x, eps, beta):
    """Gradients of the batch's mean loss and the per-row parts, by autograd."""
    model.zero_grad(set_to_none=True)
    loss, rec, kl, _ = negative_elbo(model, x, eps, beta)
    loss.mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return grads, rec.detach(), kl.detach()


@pytest.mark.parametrize(
    "likelihood, activation, hidden",
    list(
        itertools.product(sorted(LIKELIHOODS), sorted(ACTIVATIONS), [(), (7,), (6, 5)])
    ),
)
@pytest.mark.parametrize("n_draws, shared", [(1, False), (3, False), (4, True)])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_gradients_equal_autograd(
    likelihood, activation, hidden, n_draws, shared, beta
):
    # In float64 the two differ only by rounding.
    model = _model(likelihood, activation, hidden)
    x, eps = _batch(1, n_draws, shared)
    expected, expected_rec, expected_kl = _autograd(model, x, eps, beta)
    rec, kl = negative_elbo_backward(model, x, eps, beta)
    for (name, p), grad in zip(model.named_parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, grad, rtol=1e-10, atol=1e-12, msg=name)
    torch.testing.assert_close(rec, expected_rec, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kl, expected_kl, rtol=1e-12, atol=1e-12)
    assert rec.shape == kl.shape == (BATCH,)
    assert not rec.requires_grad and not kl.requires_grad


def test_gradients_overwrite_not_accumulate():
    # A second call replaces the first call's gradients, in the same buffers.
    model = _model()
    negative_elbo_backward(model, *_batch(1), 1.0)
    buffers = [p.grad.data_ptr() for p in model.parameters()]
    x, eps = _batch(2)
    expected, _, _ = _autograd(copy.deepcopy(model), x, eps, 1.0)
    negative_elbo_backward(model, x, eps, 1.0)
    for p, grad in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, grad, rtol=1e-10, atol=1e-12)
    assert [p.grad.data_ptr() for p in model.parameters()] == buffers


def test_float32_gradients_near_float64():
    # Training runs in float32: its gradients agree with the float64 ones to
    # float32's precision, relative to the largest entry of each gradient.
    model64 = _model("bernoulli")
    model32 = _model("bernoulli").float()
    x, eps = _batch(3, n_draws=2)
    negative_elbo_backward(model64, x, eps, 1.0)
    negative_elbo_backward(model32, x.float(), eps.float(), 1.0)
    for p32, p64 in zip(model32.parameters(), model64.parameters(), strict=True):
        scale = p64.grad.abs().max().item()
        assert p32.grad.dtype == torch.float32
        assert (p32.grad.double() - p64.grad).abs().max().item() <= 1e-5 * scale


def test_does_not_record_a_graph():
    model = _model()
    negative_elbo_backward(model, *_batch(4), 1.0)
    assert all(p.grad.grad_fn is None for p in model.parameters())


def test_training_steps_agree():
    # The two training steps set the same gradients and report the same parts.
    model = _model("bernoulli", "relu", (6, 5))
    x, eps = _batch(5, n_draws=2)
    loss, rec, kl = autograd_step("elbo")(model, x, eps, 0.7)
    expected = [p.grad.clone() for p in model.parameters()]
    rec2, kl2 = negative_elbo_backward(model, x, eps, 0.7)
    for p, grad in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rec2, rec, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kl2, kl, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss, rec + 0.7 * kl, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- what it refuses


def _with_dropout(model):
    model.encoder.body.insert(1, nn.Dropout(0.0))
    return model


def _with_other_activation(model):
    model.decoder.body[1] = nn.ReLU()  # configured: tanh
    return model


def _with_extra_child(model):
    model.encoder.norm = nn.LayerNorm(N_FEATURES)
    return model


def _with_other_head(model):
    model.decoder.head = nn.Sequential(model.decoder.head)
    return model


class _SubclassedVAE(VAE):
    def encode(self, x):
        mu, log_var = super().encode(x)
        return mu, log_var - 1.0


def _subclassed(model):
    model.__class__ = _SubclassedVAE
    return model


@pytest.mark.parametrize(
    "change",
    [
        _with_dropout,
        _with_other_activation,
        _with_extra_child,
        _with_other_head,
        _subclassed,
    ],
)
def test_refuses_a_model_it_does_not_know(change):
    # It never skips a module: anything but skvae's own MLP VAE is an error, and
    # the rule that picks the fast path says why.
    model = change(_model())
    with pytest.raises(UnsupportedModelError, match="hand-written pass computes"):
        negative_elbo_backward(model, *_batch(6), 1.0)
    assert "hand-written pass computes" in unsupported_reason("elbo", model)


def test_supports_exactly_the_elbo():
    assert unsupported_reason("elbo", _model()) is None
    assert "objective='iwae'" in unsupported_reason("iwae")
