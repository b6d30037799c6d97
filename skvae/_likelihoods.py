"""Decoder distributions p(x | z), chosen by name.

Each likelihood turns the decoder's output heads into a distribution over x. Adding one
is one class here and one word in the estimator's parameter constraints.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)

#: How far outside a likelihood's support X may lie and still be accepted (then
#: clipped into it): rounding leaves MinMaxScaler's output at 1.0000000000000002.
SUPPORT_TOLERANCE = 1e-6

#: Smallest variance the Gaussian decoder can express, unless told otherwise (the
#: estimators' ``min_variance``). Without a floor, a feature that is constant in the
#: data (MNIST's all-zero border pixels) lets the decoder shrink its variance without
#: bound: log p(x|z) -> +inf and the loss -> NaN. With the floor, each such feature
#: contributes at most -0.5 * log(2 * pi * 1e-3) = 2.53 nats.
GAUSSIAN_MIN_VARIANCE = 1e-3


class Likelihood(ABC):
    """A factorised distribution p(x | z) over the features of x.

    A new likelihood needs :meth:`log_prob_terms` (each feature's log p(x_j | z)),
    :meth:`mean` and :meth:`sample`; training differentiates their sum,
    :meth:`log_prob`, with autograd. One that defines :meth:`log_prob` instead of
    the terms trains on complete data only (missing values need the terms, see
    :meth:`masked_log_prob`). :meth:`log_prob_and_grad` may be overridden with a
    closed form, which the hand-written training pass then uses.
    """

    #: Name used by ``VAETransformer(likelihood=...)``.
    name: str
    #: How many outputs per feature the decoder produces (its heads).
    n_heads: int
    #: The interval x lies in; X within SUPPORT_TOLERANCE of it is clipped into it.
    support: tuple[float, float] = (-math.inf, math.inf)

    def log_prob_terms(self, x: Tensor, heads: tuple[Tensor, ...]) -> Tensor:
        """Return each feature's log p(x_j | z), broadcasting x against heads."""
        raise NotImplementedError(
            f"The {self.name!r} likelihood defines no log_prob_terms, which learning "
            "from missing values needs: it gives log p(x | z) of complete rows only."
        )

    def log_prob(self, x: Tensor, heads: tuple[Tensor, ...]) -> Tensor:
        """Return log p(x | z) summed over features, broadcasting x against heads."""
        return self.log_prob_terms(x, heads).sum(-1)

    def masked_log_prob(
        self, x: Tensor, heads: tuple[Tensor, ...], observed: Tensor
    ) -> Tensor:
        """Return log p(x_obs | z): the terms of the features ``observed`` (a bool
        mask shaped like ``x``) summed; missing entries of ``x`` must hold finite
        placeholders, whose terms are dropped."""
        terms = self.log_prob_terms(x, heads)
        return torch.where(observed, terms, terms.new_zeros(())).sum(-1)

    @abstractmethod
    def mean(self, heads: tuple[Tensor, ...]) -> Tensor:
        """Return E[x | z]."""

    @abstractmethod
    def sample(self, heads: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        """Draw x ~ p(x | z)."""

    def log_prob_and_grad(self, x: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
        """Return :meth:`log_prob` and its gradient with respect to ``out``.

        ``out`` is the decoder's output, its heads side by side on the last axis
        (shape (..., n_heads * n_features)); the gradient has its shape. This default
        differentiates :meth:`log_prob` with autograd; a subclass may override it
        with a closed form (see :attr:`closed_form_gradient`).
        """
        with torch.enable_grad():
            out = out.detach().requires_grad_()
            log_p = self.log_prob(x, out.chunk(self.n_heads, dim=-1))
            (grad,) = torch.autograd.grad(log_p.sum(), out)
        return log_p.detach(), grad

    @property
    def closed_form_gradient(self) -> bool:
        """Whether :meth:`log_prob_and_grad` is a closed form, not autograd's."""
        return type(self).log_prob_and_grad is not Likelihood.log_prob_and_grad

    def support_error(self, x_min: float, x_max: float) -> str | None:
        """Return why data in [x_min, x_max] is outside the support, or None."""
        low, high = self.support
        if x_min >= low - SUPPORT_TOLERANCE and x_max <= high + SUPPORT_TOLERANCE:
            return None
        return (
            f"likelihood={self.name!r} needs X in [{low:g}, {high:g}], but X has "
            f"values in [{x_min!r}, {x_max!r}]."
        )


class Gaussian(Likelihood):
    """N(x; mu(z), diag sigma^2(z)), both functions of z (the seed's decoder).

    The log-variance head is floored smoothly at ``log(min_variance)``:
    ``log_var = floor + softplus(raw - floor)``, which is ``raw`` well above the floor
    and keeps a gradient near it (a hard clamp would not); the variance is then
    ``min_variance + exp(raw)``.
    """

    name = "gaussian"
    n_heads = 2

    def __init__(self, min_variance: float = GAUSSIAN_MIN_VARIANCE) -> None:
        self.min_log_var = math.log(min_variance)

    def log_var(self, raw: Tensor) -> Tensor:
        return self.min_log_var + F.softplus(raw - self.min_log_var)

    def log_prob_terms(self, x: Tensor, heads: tuple[Tensor, ...]) -> Tensor:
        mean, raw = heads
        log_var = self.log_var(raw)
        sq = (x - mean).square() * torch.exp(-log_var)
        return -0.5 * (_LOG_2PI + log_var + sq)

    def log_prob_and_grad(self, x: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
        n_features = out.shape[-1] // 2
        mean, raw = out[..., :n_features], out[..., n_features:]
        shifted = raw - self.min_log_var
        log_var = F.softplus(shifted).add_(self.min_log_var)
        diff = x - mean
        grad_mean = diff * torch.exp(-log_var)  # d/dmean = (x - mean) / var
        sq = diff * grad_mean
        log_p = -0.5 * (log_var + sq).sum(-1) - 0.5 * _LOG_2PI * n_features
        grad = torch.empty_like(out)
        grad[..., :n_features] = grad_mean
        # d/dlog_var = ((x - mean)^2 / var - 1) / 2, and dlog_var/draw = sigmoid.
        torch.mul(
            sq.sub_(1.0).mul_(0.5), torch.sigmoid(shifted), out=grad[..., n_features:]
        )
        return log_p, grad

    def mean(self, heads: tuple[Tensor, ...]) -> Tensor:
        return heads[0]

    def sample(self, heads: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        mean, raw = heads
        noise = torch.randn(
            mean.shape, generator=generator, dtype=mean.dtype, device=mean.device
        )
        return mean + torch.exp(0.5 * self.log_var(raw)) * noise


class Bernoulli(Likelihood):
    """Bernoulli(x; sigmoid(logits(z))), the paper's MNIST decoder.

    ``log p = x * logits - softplus(logits)`` is the log-sigmoid form that
    ``binary_cross_entropy_with_logits`` uses: stable for any logit, and it accepts
    intensities in [0, 1] as well as binary x.
    """

    name = "bernoulli"
    n_heads = 1
    support = (0.0, 1.0)

    def log_prob_terms(self, x: Tensor, heads: tuple[Tensor, ...]) -> Tensor:
        (logits,) = heads
        return x * logits - F.softplus(logits)

    def log_prob_and_grad(self, x: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
        x = x.expand_as(out)
        log_p = -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        return log_p, x - torch.sigmoid(out)

    def mean(self, heads: tuple[Tensor, ...]) -> Tensor:
        return torch.sigmoid(heads[0])

    def sample(self, heads: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        return torch.bernoulli(self.mean(heads), generator=generator)

    def support_error(self, x_min: float, x_max: float) -> str | None:
        error = super().support_error(x_min, x_max)
        if error is None:
            return None
        prefix = "Negative values in data: " if x_min < 0.0 else ""
        return (
            f"{prefix}{error} Values within {SUPPORT_TOLERANCE:g} of [0, 1] are "
            "clipped into it; scale X into [0, 1] (e.g. MinMaxScaler, or divide "
            "pixel intensities by 255) or use likelihood='gaussian'."
        )


LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls for cls in (Gaussian, Bernoulli)
}


def get_likelihood(
    name: str, *, min_variance: float = GAUSSIAN_MIN_VARIANCE
) -> Likelihood:
    """Return the likelihood called ``name``; ``min_variance`` is the Gaussian
    decoder's variance floor, and the other likelihoods have no variance head."""
    try:
        cls = LIKELIHOODS[name]
    except KeyError:
        raise ValueError(
            f"Unknown likelihood {name!r}; choose from {sorted(LIKELIHOODS)}."
        ) from None
    return cls(min_variance) if issubclass(cls, Gaussian) else cls()
