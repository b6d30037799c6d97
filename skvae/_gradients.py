"""The negative ELBO and its gradient in one hand-written pass: training's fast path.

Autograd (``skvae._training``, over the losses of ``skvae._objectives``) is the general
training path: it trains any model and objective. For one exact case, the ELBO of the
estimator's own model (MLP encoder and decoder of ``nn.Linear`` layers and one of the
registered activations, reparameterised Gaussian posterior, analytic KL), the
backward pass is a handful of matmuls and elementwise products that can be written
down once. Doing so skips recording and replaying autograd's graph and fuses the
elementwise steps. :func:`unsupported_reason` says whether a model and objective are
that case, and :func:`negative_elbo_backward` refuses anything else rather than
skip a module it does not know. The likelihood's gradient comes from its
``log_prob_and_grad`` (a closed form where one is written, autograd otherwise).
``benchmarks/speed.py`` measures what the pass saves, and ``tests/test_gradients.py``
holds it to autograd on every architecture the estimator can build.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from skvae._model import ACTIVATIONS, VAE, Decoder, Encoder

_Fn = Callable[[Tensor], Tensor]
_Layers = list[tuple[nn.Linear, nn.Module]]


class UnsupportedModelError(ValueError):
    """A model or objective the hand-written pass does not compute."""


def _layers(mlp: nn.Module, activation: str, where: str) -> _Layers:
    """The ``(linear, activation)`` pairs of ``mlp``, which must hold nothing else."""
    expected = ACTIVATIONS[activation].module
    modules = list(mlp.children())
    pairs = list(zip(modules[::2], modules[1::2], strict=False))
    if (
        type(mlp) is not nn.Sequential
        or len(modules) % 2
        or any(
            type(lin) is not nn.Linear or type(f) is not expected for lin, f in pairs
        )
    ):
        found = ", ".join(type(m).__name__ for m in modules) or "nothing"
        raise UnsupportedModelError(
            f"The hand-written pass computes {where} as Linear and "
            f"{expected.__name__} layers in turn; it holds {found}."
        )
    return pairs


def _parts(model: VAE) -> tuple[_Layers, nn.Linear, _Layers, nn.Linear]:
    """The encoder's and decoder's layers and heads, checked to be what the pass knows.

    Raises :class:`UnsupportedModelError` for any other model: a subclass, another
    module, an activation other than the configured one.
    """
    for part, cls in [(model, VAE), (model.encoder, Encoder), (model.decoder, Decoder)]:
        if type(part) is not cls:
            raise UnsupportedModelError(
                f"The hand-written pass computes skvae's own {cls.__name__}, not a "
                f"{type(part).__name__}."
            )
    activation = model.config.activation
    for name, part in [("encoder", model.encoder), ("decoder", model.decoder)]:
        children = dict(part.named_children())
        if set(children) != {"body", "head"} or type(part.head) is not nn.Linear:
            raise UnsupportedModelError(
                f"The hand-written pass computes the {name} as a body and one "
                f"nn.Linear head; it holds {sorted(children)}."
            )
    return (
        _layers(model.encoder.body, activation, "the encoder"),
        model.encoder.head,
        _layers(model.decoder.body, activation, "the decoder"),
        model.decoder.head,
    )


def unsupported_reason(objective: str, model: VAE | None = None) -> str | None:
    """Why the hand-written pass cannot train ``objective`` (and ``model``), or None."""
    if objective != "elbo":
        return (
            f"it computes the ELBO's gradient only, not objective={objective!r}, "
            "which autograd trains"
        )
    if model is not None:
        try:
            _parts(model)
        except UnsupportedModelError as exc:
            return str(exc)
    return None


def _forward(
    layers: _Layers, head: nn.Linear, h: Tensor
) -> tuple[list[Tensor], Tensor]:
    """Inputs of every layer (``h`` first) and the head's output."""
    inputs = [h]
    for linear, activation in layers:
        inputs.append(
            activation(torch.addmm(linear.bias, inputs[-1], linear.weight.t()))
        )
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
    layers: _Layers,
    head: nn.Linear,
    inputs: list[Tensor],
    grad_out: Tensor,
    derivative: _Fn | None,
    need_input_grad: bool,
) -> Tensor | None:
    """Set the gradients of ``layers`` and ``head`` from that of the head's output.

    ``inputs`` are what :func:`_forward` returned; gives the gradient with respect to
    its first input when ``need_input_grad``.
    """
    grad = grad_out
    linears = [linear for linear, _ in layers] + [head]
    for i in reversed(range(len(linears))):
        linear = linears[i]
        _set_grad(linear.weight, torch.mm, grad.t(), inputs[i])
        _set_grad(linear.bias, torch.sum, grad, 0)
        if i == 0 and not need_input_grad:
            return None
        grad = grad.mm(linear.weight)
        if i > 0 and derivative is not None:  # through the activation of inputs[i]
            grad = grad.mul_(derivative(inputs[i]))
    return grad


@torch.no_grad()
def negative_elbo_backward(
    model: VAE, x: Tensor, eps: Tensor, beta: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Set ``p.grad`` of every parameter to the gradient of the batch's mean loss.

    The loss of a row is ``-(1/L) sum_l log p(x|z_l) + beta * KL``, with ``eps`` of
    shape (L, B, latent) and z_l = mu + sigma * eps_l, exactly
    :func:`skvae._objectives.negative_elbo`. Returns its two parts per row,
    ``(rec, kl)``, each of shape (B,), detached. Raises
    :class:`UnsupportedModelError` for a model it does not know.
    """
    enc_layers, enc_head, dec_layers, dec_head = _parts(model)
    derivative = ACTIVATIONS[model.config.activation].derivative
    n_draws, batch, latent = eps.shape[0], len(x), model.config.latent_dim

    # Forward: q(z|x), z = mu + sigma * eps, the decoder's heads.
    enc_inputs, enc_out = _forward(enc_layers, enc_head, x)
    mu, log_var = enc_out[:, :latent], enc_out[:, latent:]  # (B, latent) each
    std = torch.exp(0.5 * log_var)
    z = torch.addcmul(mu, std, eps).reshape(-1, latent)  # (L * B, latent)
    dec_inputs, dec_out = _forward(dec_layers, dec_head, z)
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
        dec_head,
        dec_inputs,
        grad_log_px.view(n_draws * batch, -1).mul_(-scale / n_draws),
        derivative,
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
        enc_head,
        enc_inputs,
        grad_enc_out,
        derivative,
        need_input_grad=False,
    )
    return rec, kl
