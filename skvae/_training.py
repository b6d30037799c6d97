"""Minibatch optimisation of the negative ELBO (torch only).

X is one pre-loaded tensor; each epoch slices it with a shuffled index permutation. Per
batch nothing is synchronised with the host: the epoch's sums stay on the device and are
read once at its end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from skvae._model import VAE, negative_elbo
from skvae._torch_utils import INFERENCE_BATCH_SIZE

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
}


def make_optimizer(
    model: VAE, name: str, learning_rate: float, alpha: float
) -> torch.optim.Optimizer:
    """``name``'s optimizer with an L2 penalty ``alpha`` on weights, not biases."""
    weights = [p for p in model.parameters() if p.ndim > 1]
    biases = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": weights, "weight_decay": alpha},
        {"params": biases, "weight_decay": 0.0},
    ]
    try:
        # One fused kernel per step instead of a Python loop over parameters.
        return OPTIMIZERS[name](groups, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError):  # torch too old for fused steps on this device
        return OPTIMIZERS[name](groups, lr=learning_rate)


def move_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Move the optimizer's state onto its parameters' current device.

    ``load_state_dict`` casts every state tensor to its parameter's device, handling
    each optimizer's special cases (such as Adam's step counter) the way torch does.
    """
    optimizer.load_state_dict(optimizer.state_dict())


@dataclass
class EpochResult:
    """Means over the epoch's rows of the loss and its two parts, in nats."""

    loss: float
    reconstruction: float
    kl: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.reconstruction)


def train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    X: Tensor,
    *,
    batch_size: int,
    beta: float,
    n_mc_samples: int,
    shuffle: bool,
    generator: torch.Generator,
) -> EpochResult:
    """One pass of minibatch steps over ``X`` (float32, on the model's device)."""
    n, device = len(X), X.device
    latent_dim = model.config.latent_dim
    order = (
        torch.randperm(n, generator=generator, device=device)
        if shuffle
        else torch.arange(n, device=device)
    )
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    model.train()
    for start in range(0, n, batch_size):
        xb = X[order[start : start + batch_size]]  # (B, n_features)
        eps = torch.randn(
            (n_mc_samples, len(xb), latent_dim),
            generator=generator,
            dtype=X.dtype,
            device=device,
        )
        loss, rec, kl = negative_elbo(model, xb, eps, beta)  # (B,) each
        optimizer.zero_grad(set_to_none=True)
        loss.mean().backward()
        optimizer.step()
        sums += torch.stack([loss.sum(), rec.sum(), kl.sum()]).detach()
    loss, rec, kl = (sums / n).tolist()
    return EpochResult(loss, rec, kl)


def mean_negative_elbo(
    model: VAE, X: Tensor, eps: Tensor, batch_size: int = INFERENCE_BATCH_SIZE
) -> float:
    """Mean negative ELBO over ``X`` with one fixed draw ``eps[i]`` per row.

    Holding the draws fixed makes this a deterministic function of the weights, so
    epoch-to-epoch changes in it reflect the model, not Monte-Carlo noise.
    """
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    with torch.inference_mode():
        for i in range(0, len(X), batch_size):
            eps_b = eps[i : i + batch_size].unsqueeze(0)  # (1, B, latent_dim)
            total += negative_elbo(model, X[i : i + batch_size], eps_b)[0].sum()
    return float(total) / len(X)


@dataclass
class History:
    """What the estimator reports; appended to epoch by epoch."""

    loss: list[float] = field(default_factory=list)
    reconstruction: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    validation: list[float] | None = None


@dataclass
class StopRule:
    """Stop once the monitored loss fails to improve by ``tol`` ``patience`` times."""

    tol: float
    patience: int
    best: float = float("inf")
    best_weights: Tensor | None = None
    stale: int = 0

    def update(self, value: float, model: VAE, keep_best: bool) -> bool:
        """Record ``value``; return True when training should stop."""
        self.stale = self.stale + 1 if value > self.best - self.tol else 0
        if value < self.best:
            self.best = value
            if keep_best:
                self.best_weights = parameters_to_vector(model.parameters())
        return self.stale >= self.patience


@dataclass
class Outcome:
    """How a call to :func:`train` ended."""

    epochs: int = 0
    converged: bool = False
    diverged: bool = False
    interrupted: bool = False


def train(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    X_train: Tensor,
    X_monitor: Tensor | None,
    eps_monitor: Tensor | None,
    *,
    max_epochs: int,
    stop_rule: StopRule | None,
    early_stopping: bool,
    history: History,
    epoch_kwargs: dict,
    log: Callable[[str], None] | None = None,
    first_epoch: int = 1,
) -> Outcome:
    """Run epochs until ``stop_rule`` fires, ``max_epochs`` pass, or the loss diverges.

    ``X_monitor`` is the validation set with ``early_stopping`` (its best weights are
    restored at the end), else a fixed subset of the training rows; with no monitor
    (``partial_fit``), no stopping rule applies. An epoch whose loss, weights or
    monitored loss is non-finite is undone: the weights of the last finite epoch come
    back and the optimizer's state is reset. A ``KeyboardInterrupt`` ends training
    with the weights of the last full epoch.
    """
    outcome = Outcome()
    last_good = parameters_to_vector(model.parameters())
    for epoch in range(first_epoch, first_epoch + max_epochs):
        start = time.perf_counter()
        try:
            result = train_epoch(model, optimizer, X_train, **epoch_kwargs)
            weights = parameters_to_vector(model.parameters())
            # The last step can break the weights after the loss was computed.
            finite = result.finite and bool(torch.isfinite(weights).all())
            monitored = 0.0
            if finite and X_monitor is not None:
                monitored = mean_negative_elbo(model, X_monitor, eps_monitor)
        except KeyboardInterrupt:
            outcome.interrupted = True
            vector_to_parameters(last_good, model.parameters())
            break
        if not (finite and math.isfinite(monitored)):
            vector_to_parameters(last_good, model.parameters())
            optimizer.state.clear()  # its moments hold the non-finite gradients
            outcome.diverged = True
            break
        last_good = weights
        outcome.epochs += 1
        history.loss.append(result.loss)
        history.reconstruction.append(result.reconstruction)
        history.kl.append(result.kl)
        if early_stopping:
            history.validation.append(-monitored)
        stop = stop_rule is not None and stop_rule.update(
            monitored, model, keep_best=early_stopping
        )
        if log is not None:
            line = f"Epoch {epoch}: loss = {result.loss:.6g} (KL {result.kl:.4g})"
            if early_stopping:
                line += f", validation ELBO = {-monitored:.6g}"
            log(f"{line}, {time.perf_counter() - start:.2f} s")
        if stop:
            outcome.converged = True
            break
    if early_stopping and stop_rule.best_weights is not None:
        vector_to_parameters(stop_rule.best_weights, model.parameters())
    return outcome
