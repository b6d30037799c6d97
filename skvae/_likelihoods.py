"""Decoder distributions p(x | z), chosen by name.

Each likelihood turns the decoder's output heads into a distribution over x. Adding one
is one class here and one word in the estimator's parameter constraints.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

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

    def n_outputs(self, n_features: int) -> int:
        """How many outputs the decoder produces for ``n_features`` features."""
        return self.n_heads * n_features

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


class Categorical(Likelihood):
    """One categorical column as a one-hot block: softmax(logits(z)) over its levels.

    x holds the block (one 1 among ``n_levels`` entries); each entry's term is
    x_j * log softmax(logits)_j, so their sum is the log-probability of the level,
    and a missing level (every entry missing) drops out entry by entry.
    """

    name = "categorical"
    n_heads = 1
    support = (0.0, 1.0)

    def log_prob_terms(self, x: Tensor, heads: tuple[Tensor, ...]) -> Tensor:
        (logits,) = heads
        return x * torch.log_softmax(logits, dim=-1)

    def mean(self, heads: tuple[Tensor, ...]) -> Tensor:
        return torch.softmax(heads[0], dim=-1)

    def sample(self, heads: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        probs = self.mean(heads)
        flat = probs.reshape(-1, probs.shape[-1])
        levels = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
        return F.one_hot(levels, probs.shape[-1]).to(probs.dtype)


class _Constants:
    """Per-column constants as tensors on the device and in the dtype asked for,
    made once each (a likelihood is built on torch's meta device, and used in
    float32 for training and float64 for inference)."""

    def __init__(self, **values: tuple[float, ...]) -> None:
        self.values = values
        self._made: dict[tuple[torch.device, torch.dtype], dict[str, Tensor]] = {}

    def on(self, like: Tensor) -> dict[str, Tensor]:
        key = (like.device, like.dtype)
        if key not in self._made:
            self._made[key] = {
                name: torch.tensor(v, dtype=like.dtype, device=like.device)
                for name, v in self.values.items()
            }
        return self._made[key]

    def __getstate__(self) -> dict:
        return {"values": self.values, "_made": {}}  # tensors are remade on use


class Poisson(Likelihood):
    """Poisson(c; exp(log_rate(z))) for counts c, held in x as (c - shift) / scale.

    The affine map (one ``shift`` and ``scale`` per column) lets a table
    standardise its count columns for the encoder as it standardises continuous
    ones; the probabilities are those of the counts themselves (a count has no
    Jacobian), and :meth:`mean` and :meth:`sample` come back in x's units.
    """

    name = "poisson"
    n_heads = 1
    support = (0.0, math.inf)

    def __init__(self, shift: tuple[float, ...], scale: tuple[float, ...]) -> None:
        self.constants = _Constants(shift=tuple(shift), scale=tuple(scale))

    def log_prob_terms(self, x: Tensor, heads: tuple[Tensor, ...]) -> Tensor:
        (log_rate,) = heads
        k = self.constants.on(x)
        # Rounded: x * scale + shift recovers a count to within float rounding.
        counts = torch.round(x * k["scale"] + k["shift"])
        return counts * log_rate - torch.exp(log_rate) - torch.lgamma(counts + 1.0)

    def mean(self, heads: tuple[Tensor, ...]) -> Tensor:
        k = self.constants.on(heads[0])
        return (torch.exp(heads[0]) - k["shift"]) / k["scale"]

    def sample(self, heads: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        k = self.constants.on(heads[0])
        draws = torch.poisson(torch.exp(heads[0]), generator=generator)
        return (draws - k["shift"]) / k["scale"]


@dataclass(frozen=True)
class ColumnModel:
    """How one column of a table is modelled, as :class:`Mixed` needs to know it.

    ``kind`` names a likelihood of :data:`LIKELIHOODS`; ``width`` is the column's
    entries in x (a categorical column's levels, 1 otherwise); ``shift`` and
    ``scale`` the affine map x = (value - shift) / scale by which a continuous or
    count column was standardised.
    """

    kind: str
    width: int = 1
    shift: float = 0.0
    scale: float = 1.0


class Mixed(Likelihood):
    """A likelihood per column of a table: p(x | z) = prod_j p_j(x_j | z).

    x is the table as numbers, each column's entries side by side (a categorical
    column's one-hot block); the decoder's output holds each column's heads in the
    same order. Runs of neighbouring columns of the same elementwise kind share one
    piece (a table that groups its columns by kind needs a handful), computed by
    that kind's own likelihood over its slices; a categorical column is a piece of
    its own. Continuous columns, modelled standardised, add their log-Jacobian
    -log(scale), so that :meth:`log_prob` is the log-density of the row in the
    user's units (with respect to Lebesgue measure for continuous columns and
    counting measure for the others).
    """

    name = "mixed"
    n_heads = 1

    def __init__(
        self,
        columns: tuple[ColumnModel, ...],
        min_variance: float = GAUSSIAN_MIN_VARIANCE,
    ) -> None:
        self.columns = tuple(columns)
        runs: list[list[ColumnModel]] = []
        for column in self.columns:
            if runs and column.kind == runs[-1][0].kind != "categorical":
                runs[-1].append(column)
            else:
                runs.append([column])
        #: (likelihood, x's slice, the output's slice) per piece.
        self.pieces: list[tuple[Likelihood, slice, slice]] = []
        x_at = out_at = 0
        for run in runs:
            piece = _piece(run, min_variance)
            width = sum(c.width for c in run)
            n_out = piece.n_outputs(width)
            self.pieces.append(
                (piece, slice(x_at, x_at + width), slice(out_at, out_at + n_out))
            )
            x_at, out_at = x_at + width, out_at + n_out
        self._n_outputs = out_at
        jacobian = [
            -math.log(c.scale) if c.kind == "gaussian" else 0.0
            for c in self.columns
            for _ in range(c.width)
        ]
        self._jacobian = _Constants(log_jacobian=tuple(jacobian))
        self._has_jacobian = any(jacobian)

    def n_outputs(self, n_features: int) -> int:
        return self._n_outputs

    def log_prob_terms(self, x: Tensor, heads: tuple[Tensor, ...]) -> Tensor:
        (out,) = heads
        terms = torch.cat(
            [
                piece.log_prob_terms(x[..., xs], out[..., os].chunk(piece.n_heads, -1))
                for piece, xs, os in self.pieces
            ],
            dim=-1,
        )
        if self._has_jacobian:
            terms = terms + self._jacobian.on(terms)["log_jacobian"]
        return terms

    def mean(self, heads: tuple[Tensor, ...]) -> Tensor:
        (out,) = heads
        return torch.cat(
            [
                piece.mean(out[..., os].chunk(piece.n_heads, -1))
                for piece, _, os in self.pieces
            ],
            dim=-1,
        )

    def sample(self, heads: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        (out,) = heads
        return torch.cat(
            [
                piece.sample(out[..., os].chunk(piece.n_heads, -1), generator)
                for piece, _, os in self.pieces
            ],
            dim=-1,
        )


#: The likelihoods of a numeric array's every column, which ``likelihood=`` names.
LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls for cls in (Gaussian, Bernoulli)
}
#: The likelihood of a table's column by its ``ColumnModel.kind``: the array
#: likelihoods, and those that need what a table knows (levels, scales).
COLUMN_LIKELIHOODS: dict[str, type[Likelihood]] = {
    **LIKELIHOODS,
    **{cls.name: cls for cls in (Categorical, Poisson)},
}


def get_likelihood(
    name: str,
    *,
    min_variance: float = GAUSSIAN_MIN_VARIANCE,
    columns: tuple[ColumnModel, ...] = (),
) -> Likelihood:
    """Return the likelihood called ``name``; ``min_variance`` is the Gaussian
    decoder's variance floor (the other likelihoods have no variance head). With
    ``columns``, ``name`` must be ``"mixed"``: a table's likelihood per column."""
    if name == Mixed.name and columns:
        return Mixed(columns, min_variance)
    try:
        cls = LIKELIHOODS[name]
    except KeyError:
        raise ValueError(
            f"Unknown likelihood {name!r}; choose from {sorted(LIKELIHOODS)}."
        ) from None
    return cls(min_variance) if issubclass(cls, Gaussian) else cls()


def _piece(run: list[ColumnModel], min_variance: float) -> Likelihood:
    """The likelihood of a run of neighbouring columns of one kind."""
    cls = COLUMN_LIKELIHOODS[run[0].kind]
    if cls is Poisson:
        return Poisson(tuple(c.shift for c in run), tuple(c.scale for c in run))
    return cls(min_variance) if issubclass(cls, Gaussian) else cls()
