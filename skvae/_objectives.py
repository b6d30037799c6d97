"""The losses over a :class:`~skvae._model.VAE`, as plain torch functions.

Training, scoring and the tests all compute a loss through these functions; training
differentiates them with autograd (the general path), so a new objective is a new
function here and one word in ``OBJECTIVES``, never a derivation. Every function
takes draws ``eps`` of shape (L, B or 1, latent_dim): L draws per row, or L draws
shared by every row.

Rows may have missing entries, as NaN: they are left out of log p(x|z), so every
objective becomes its bound on log p(x_obs), the observed part's likelihood
(Mattei & Frellsen, 2019, "MIWAE"); the encoder sees them as 0 (see
:func:`split_missing`). A batch without NaN is computed exactly as before. Where
the caller knows its rows are ``complete`` (it scanned them once, as the estimator
does), the functions that take that flag skip the search for NaN in every batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor

from skvae._model import VAE


class LossTerms(NamedTuple):
    """One objective's value per row, with the parts the estimator reports (all (B,)).

    ``loss`` is what training minimises (with ``beta``); ``reconstruction`` is
    -(1/L) sum_l log p(x|z_l) and ``kl`` the analytic KL(q(z|x) || p(z)), the two
    parts of the negative ELBO; ``bound`` is the objective's lower bound on log p(x)
    (``beta`` = 1): the ELBO, or the importance-weighted bound.
    """

    loss: Tensor
    reconstruction: Tensor
    kl: Tensor
    bound: Tensor


def gaussian_kl_per_dimension(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu_j, exp(log_var_j)) || N(0, 1)) of each latent dimension j, per row."""
    return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var)


def gaussian_kl(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per row (the paper's Appendix B)."""
    return gaussian_kl_per_dimension(mu, log_var).sum(-1)


def split_missing(x: Tensor, complete: bool = False) -> tuple[Tensor, Tensor | None]:
    """``x`` with its missing entries (NaN) set to 0, and the mask of observed ones.

    The mask is None, and ``x`` itself comes back, where nothing is missing. Zero is
    the encoder's input for a missing entry, as in MIWAE: the column mean of the
    standardised data a Gaussian decoder is fitted to, the background of the images
    a Bernoulli one is; it needs no state, and changes nothing for complete rows.
    ``complete=True`` promises that ``x`` holds no NaN: ``x`` comes back unsearched.
    """
    if complete:
        return x, None
    missing = torch.isnan(x)
    if not bool(missing.any()):
        return x, None
    return x.masked_fill(missing, 0.0), ~missing


def encode_observed(
    model: VAE, x: Tensor, complete: bool = False
) -> tuple[Tensor, Tensor]:
    """q(z | x_obs)'s ``(mu, log_var)``: the encoder on ``x`` with NaN set to 0."""
    return model.encode(split_missing(x, complete)[0])


def _log_px(
    model: VAE, x: Tensor, observed: Tensor | None, heads: tuple[Tensor, ...]
) -> Tensor:
    """log p(x_obs | z) for the decoder's ``heads`` at each draw of z: (L, B)."""
    if observed is None:
        return model.likelihood.log_prob(x, heads)
    return model.likelihood.masked_log_prob(x, heads, observed)


def elbo(
    model: VAE, x: Tensor, eps: Tensor, complete: bool = False
) -> tuple[Tensor, Tensor]:
    """The two terms of the ELBO per row, with L draws ``eps`` of shape (L, B, latent).

    Returns ``(log_px, kl)``, each of shape (B,): the Monte-Carlo estimate
    (1/L) sum_l log p(x|z_l) and the analytic KL, so ELBO = log_px - kl (eq. 10 of
    Kingma & Welling, 2013). ``eps`` of shape (L, 1, latent) shares draws across rows.
    With missing entries in ``x``, ``log_px`` is that of the observed ones.
    """
    x, observed = split_missing(x, complete)
    mu, log_var = model.encode(x)  # (B, latent_dim)
    z = model.reparameterize(mu, log_var, eps)  # (L, B, latent_dim)
    log_px = _log_px(model, x, observed, model.decode(z))  # (L, B)
    return log_px.mean(0), gaussian_kl(mu, log_var)


def negative_elbo(
    model: VAE, x: Tensor, eps: Tensor, beta: float = 1.0, complete: bool = False
) -> LossTerms:
    """Per-row loss -E_q[log p(x|z)] + beta * KL (the paper's SGVB estimator B)."""
    log_px, kl = elbo(model, x, eps, complete)
    return LossTerms(beta * kl - log_px, -log_px, kl, log_px - kl)


def log_weights(
    model: VAE, x: Tensor, eps: Tensor, complete: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """log p(x|z_k) and log p(z_k) - log q(z_k|x) for z_k = mu + sigma * eps_k.

    Returns ``(log_px, log_ratio, kl)``: the first two of shape (K, B), their sum
    being the log importance weight of each draw; ``kl`` is the analytic KL, (B,).
    With missing entries in ``x``, ``log_px`` is that of the observed ones.
    """
    x, observed = split_missing(x, complete)
    mu, log_var = model.encode(x)  # (B, latent_dim)
    _, _, log_px, log_ratio = _draws(model, x, observed, mu, log_var, eps)
    return log_px, log_ratio, gaussian_kl(mu, log_var)


def _draws(
    model: VAE,
    x: Tensor,
    observed: Tensor | None,
    mu: Tensor,
    log_var: Tensor,
    eps: Tensor,
) -> tuple[Tensor, tuple[Tensor, ...], Tensor, Tensor]:
    """For z_k = mu + sigma * eps_k: z (K, B, latent), the decoder's heads,
    log p(x_obs | z_k) and log p(z_k) - log q(z_k | x), both (K, B)."""
    z = model.reparameterize(mu, log_var, eps)  # (K, B, latent_dim)
    heads = model.decode(z)
    log_px = _log_px(model, x, observed, heads)  # (K, B)
    # The 2*pi terms cancel, and (z - mu) / sigma is eps exactly.
    log_ratio = 0.5 * (log_var + eps.square() - z.square()).sum(-1)  # (K, B)
    return z, heads, log_px, log_ratio


def _log_mean_exp(values: Tensor) -> Tensor:
    return torch.logsumexp(values, dim=0) - math.log(values.shape[0])


def importance_log_likelihood(
    model: VAE, x: Tensor, eps: Tensor | Iterable[Tensor], complete: bool = False
) -> Tensor:
    """Importance-sampled log p(x) per row with q(z|x) as proposal (the IWAE bound).

    log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k = mu + sigma * eps_k,
    with ``eps`` of shape (K, B or 1, latent), or an iterable of such chunks of the K
    draws, combined by a running logsumexp, so that memory is bounded by a chunk
    whatever K. Never below the ELBO in expectation, and tighter as K grows (Burda et
    al., 2016). A NaN log weight, which only an overflow in a row far outside the
    training data produces, counts as a zero weight; a row whose weights are all
    zero gets -inf.
    """
    total, n_draws = None, 0
    for chunk in [eps] if isinstance(eps, Tensor) else eps:
        log_px, log_ratio, _ = log_weights(model, x, chunk, complete)
        log_w = torch.nan_to_num(log_px + log_ratio, nan=-math.inf)  # (k, B)
        part = torch.logsumexp(log_w, dim=0)
        total = part if total is None else torch.logaddexp(total, part)
        n_draws += chunk.shape[0]
    return total - math.log(n_draws)


def conditional_mean(model: VAE, x: Tensor, eps: Tensor | Iterable[Tensor]) -> Tensor:
    """E[x | x_obs] per row, by self-normalised importance sampling (MIWAE).

    sum_k w_k E[x | z_k] / sum_k w_k, with w_k = p(x_obs | z_k) p(z_k) / q(z_k | x)
    and z_k = mu + sigma * eps_k (Mattei & Frellsen, 2019, eq. 9), for ``eps`` of
    shape (K, B or 1, latent) or an iterable of chunks of the K draws, combined
    with a running maximum so that memory is bounded by a chunk. Shape (B,
    n_features); observed entries are the model's too (the caller keeps the data's).
    A row whose weights all vanish or overflow gets the decoder's mean at mu.
    """
    x, observed = split_missing(x)
    mu, log_var = model.encode(x)  # (B, latent_dim)
    top = total = weighted = None
    for chunk in [eps] if isinstance(eps, Tensor) else eps:
        _, heads, log_px, log_ratio = _draws(model, x, observed, mu, log_var, chunk)
        log_w = torch.nan_to_num(log_px + log_ratio, nan=-math.inf)  # (k, B)
        means = model.likelihood.mean(heads)  # (k, B, n_features)
        new_top = (
            log_w.max(0).values
            if top is None
            else torch.maximum(top, log_w.max(0).values)
        )
        safe_top = torch.where(torch.isfinite(new_top), new_top, 0.0)
        w = torch.exp(log_w - safe_top)  # (k, B), at most 1
        part, part_weighted = w.sum(0), torch.einsum("kb,kbf->bf", w, means)
        if top is None:
            total, weighted = part, part_weighted
        else:
            scale = torch.exp(
                torch.where(torch.isfinite(top), top, -math.inf) - safe_top
            )
            total = total * scale + part
            weighted = weighted * scale.unsqueeze(-1) + part_weighted
        top = new_top
    result = weighted / total.unsqueeze(-1)
    fallback = ~(torch.isfinite(result).all(-1) & (total > 0))
    if bool(fallback.any()):
        at_mu = model.likelihood.mean(model.decode(mu))
        result = torch.where(fallback.unsqueeze(-1), at_mu, result)
    return result


def completed(model: VAE, x: Tensor, n_steps: int) -> Tensor:
    """``x`` with its missing entries filled in by ``n_steps`` rounds of
    x_mis <- E[x_mis | z = mu(x)], the decoder's mean at the encoder's: an input
    whose q(z | x) is a proposal near the observed part's posterior, for an
    encoder that was trained on complete rows only (for which a row with zeros
    in place of its missing entries lies off the data)."""
    x0, observed = split_missing(x)
    if observed is None:
        return x
    filled = x0
    for _ in range(n_steps):
        mean = model.decode_mean(model.encode(filled)[0])
        filled = torch.where(observed, x0, mean)
    return filled


def importance_resample(
    model: VAE,
    x: Tensor,
    n_draws: int,
    generator: torch.Generator,
    chunk: int,
    proposal: Tensor | None = None,
) -> Tensor:
    """One z per row from the model's p(z | x_obs), by sampling importance
    resampling: ``n_draws`` proposals z_k ~ q(z | x) (or q(z | ``proposal``), an
    input such as :func:`completed` gives), ``chunk`` at a time, all from
    ``generator``; one of them picked with probability w_k / sum_j w_j, with
    w_k = p(x_obs | z_k) p(z_k) / q(z_k | .) (the Gumbel-max trick, so that only
    the running winner is kept). Shape (B, latent).
    """
    x, observed = split_missing(x)
    mu, log_var = model.encode(x if proposal is None else proposal)  # (B, latent)
    best_key = best_z = None
    for start in range(0, n_draws, chunk):
        k = min(chunk, n_draws - start)
        eps = torch.randn(
            (k, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device
        )
        z, _, log_px, log_ratio = _draws(model, x, observed, mu, log_var, eps)
        log_w = torch.nan_to_num(log_px + log_ratio, nan=-math.inf)  # (k, B)
        u = torch.rand(
            log_w.shape, generator=generator, dtype=mu.dtype, device=mu.device
        )
        tiny = torch.finfo(mu.dtype).tiny
        keys = log_w - torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-16)))
        key, winner = keys.max(0)  # (B,)
        z_win = z.gather(0, winner.view(1, -1, 1).expand(1, *mu.shape))[0]
        if best_key is None:
            best_key, best_z = key, z_win
        else:
            better = key > best_key
            best_key = torch.where(better, key, best_key)
            best_z = torch.where(better.unsqueeze(-1), z_win, best_z)
    # A row whose weights all vanished keeps the first chunk's argmax, a draw of q.
    return best_z


def conditional_sample(
    model: VAE, x: Tensor, n_draws: int, generator: torch.Generator, chunk: int
) -> Tensor:
    """One draw per row from the model's p(x | x_obs) (MIWAE's multiple
    imputation): z by :func:`importance_resample`, then x ~ p(x | z), observation
    noise included. Shape (B, n_features)."""
    z = importance_resample(model, x, n_draws, generator, chunk)
    return model.likelihood.sample(model.decode(z), generator)


def negative_iwae(
    model: VAE, x: Tensor, eps: Tensor, beta: float = 1.0, complete: bool = False
) -> LossTerms:
    """Per-row loss -log (1/K) sum_k w_k, the importance-weighted bound's negative.

    Burda, Grosse & Salakhutdinov (2016), eq. 8, with K = L draws per row and
    log w_k = log p(x|z_k) + beta * (log p(z_k) - log q(z_k|x)): ``beta`` weighs the
    prior against the posterior inside each weight, so that K = 1 is, in
    expectation, the beta-weighted negative ELBO. ``bound`` is the bound at beta = 1.
    """
    log_px, log_ratio, kl = log_weights(model, x, eps, complete)
    bound = _log_mean_exp(log_px + log_ratio)
    loss = -bound if beta == 1.0 else -_log_mean_exp(log_px + beta * log_ratio)
    return LossTerms(loss, -log_px.mean(0), kl, bound)


#: The training objectives by name: (model, x, eps, beta, complete) -> LossTerms.
OBJECTIVES: dict[str, Callable[[VAE, Tensor, Tensor, float, bool], LossTerms]] = {
    "elbo": negative_elbo,
    "iwae": negative_iwae,
}
