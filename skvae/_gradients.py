"""The negative ELBO and its gradient in one hand-written pass (torch only).

Training needs, per minibatch, the loss and the gradient of its mean with respect to
every weight. Autograd gets there by recording a graph of some forty small operations
and replaying it backwards; for this fixed family of models (MLP encoder and decoder,
reparameterised Gaussian posterior, analytic KL) the backward pass is a handful of
matmuls and elementwise products that can be written down once. Doing so skips the
graph, its saved tensors and its bookkeeping, and fuses the elementwise steps:
``benchmarks/speed.py`` measures the effect, and ``tests/test_gradients.py`` holds the
result to autograd's on every architecture the estimator can build.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skvae._model import VAE

_Fn = Callable[[Tensor], Tensor]

#: f(a) from the pre-activation, and f'(a) from the activation's output f(a) (None
#: where f' is 1).
_ACTIVATIONS: dict[str, tuple[_Fn, _Fn | None]] = {
    "identity": (lambda a: a, None),
    "logistic": (torch.sigmoid, lambda y: y * (1.0 - y)),
    "tanh": (torch.tanh, lambda y: 1.0 - y.square()),
    "relu": (F.relu, lambda y: (y > 0).to(y.dtype)),
}


def _linears(mlp: nn.Sequential) -> list[nn.Linear]:
    return [m for m in mlp if isinstance(m, nn.Linear)]


def _forward(
    layers: list[nn.Linear], head: nn.Linear, h: Tensor, act: _Fn
) -> tuple[list[Tensor], Tensor]:
    """Inputs of every layer (``h`` first) and the head's output."""
    inputs = [h]
    for layer in layers:
        inputs.append(act(torch.addmm(layer.bias, inputs[-1], layer.weight.t())))
    return inputs, torch.addmm(head.bias, inputs[-1], head.weight.t())


def _set_grad(param: Tensor, fn: Callable[..., Tensor], *args: object) -> None:
    """Set ``param.grad = fn(*args)``, reusing the buffer of the existing gradient.

    Reusing the buffer spares the allocator a multi-megabyte block per weight per
    step, which glibc otherwise returns to the system and faults back in, page by page.
    """
    if param.grad is None:
        param.grad = fn(*args)
    else:
        fn(*args, out=param.grad)


def _backward(
    layers: list[nn.Linear],
    head: nn.Linear,
    inputs: list[Tensor],
    grad_out: Tensor,
    act_grad: _Fn | None,
    need_input_grad: bool,
) -> Tensor | None:
    """Set the gradients of ``layers`` and ``head`` from that of the head's output.

    ``inputs`` are what :func:`_forward` returned; gives the gradient with respect to
    its first input when ``need_input_grad``.
    """
    grad = grad_out
    for i, layer in reversed(list(enumerate([*layers, head]))):
        _set_grad(layer.weight, torch.mm, grad.t(), inputs[i])
        _set_grad(layer.bias, torch.sum, grad, 0)
        if i == 0 and not need_input_grad:
            return None
        grad = grad.mm(layer.weight)
        if i > 0 and act_grad is not None:  # through the activation of inputs[i]
            grad = grad.mul_(act_grad(inputs[i]))
    return grad


@torch.no_grad()
def negative_elbo_backward(
    model: VAE, x: Tensor, eps: Tensor, beta: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Set ``p.grad`` of every parameter to the gradient of the batch's mean loss.

    The loss of a row is ``-(1/L) sum_l log p(x|z_l) + beta * KL``, with ``eps`` of
    shape (L, B, latent) and z_l = mu + sigma * eps_l, exactly
    :func:`skvae._model.negative_elbo`. Returns its two parts per row, ``(rec, kl)``,
    each of shape (B,), detached.
    """
    encoder, decoder = model.encoder, model.decoder
    act, act_grad = _ACTIVATIONS[model.config.activation]
    enc_layers, dec_layers = _linears(encoder.body), _linears(decoder.body)
    n_draws, batch, latent = eps.shape[0], len(x), model.config.latent_dim

    # Forward: q(z|x), z = mu + sigma * eps, the decoder's heads.
    enc_inputs, enc_out = _forward(enc_layers, encoder.head, x, act)
    mu, log_var = enc_out[:, :latent], enc_out[:, latent:]  # (B, latent) each
    std = torch.exp(0.5 * log_var)
    z = torch.addcmul(mu, std, eps).reshape(-1, latent)  # (L * B, latent)
    dec_inputs, dec_out = _forward(dec_layers, decoder.head, z, act)
    log_px, grad_log_px = model.likelihood.log_prob_and_grad(
        x, dec_out.view(n_draws, batch, -1)
    )  # (L, B), (L, B, n_heads * n_features)
    rec = -log_px.mean(0)  # (B,)
    var = std.square()
    kl = 0.5 * (mu.square() + var - 1.0 - log_var).sum(-1)  # (B,)

    # Backward, for the mean over the batch: d/d(dec_out) of -(1/(L B)) sum log p.
    scale = 1.0 / batch
    grad_z = _backward(
        dec_layers,
        decoder.head,
        dec_inputs,
        grad_log_px.view(n_draws * batch, -1).mul_(-scale / n_draws),
        act_grad,
        need_input_grad=True,
    ).reshape(n_draws, batch, latent)
    grad_enc_out = torch.empty_like(enc_out)
    # d/dmu: sum over draws of dz/dmu = 1, plus beta * dKL/dmu = beta * mu.
    torch.add(grad_z.sum(0), mu, alpha=beta * scale, out=grad_enc_out[:, :latent])
    # d/dlog_var: through sigma = exp(log_var / 2), plus beta * (var - 1) / 2.
    torch.addcmul(
        (var - 1.0).mul_(0.5 * beta * scale),
        (grad_z * eps).sum(0),
        std,
        value=0.5,
        out=grad_enc_out[:, latent:],
    )
    _backward(
        enc_layers,
        encoder.head,
        enc_inputs,
        grad_enc_out,
        act_grad,
        need_input_grad=False,
    )
    return rec, kl
