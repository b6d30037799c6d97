"""Minibatch optimisation of a training objective (torch only).

X is one pre-loaded tensor; each epoch slices it with a shuffled index permutation. A
step's gradient comes from autograd over the objective's loss (the general path), or,
where :func:`choose_gradient`'s rule picks it, from the hand-written pass of
``skvae._gradients``. Per batch nothing is synchronised with the host: the epoch's
sums stay on the device and are read once at its end.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from skvae._gradients import negative_elbo_backward, unsupported_reason
from skvae._model import VAE
from skvae._objectives import OBJECTIVES

#: What each objective's bound is called in progress lines.
BOUND_NAMES = {"elbo": "ELBO", "iwae": "IWAE bound"}
#: How a training step gets its gradient.
GRADIENTS = ("auto", "autograd", "closed_form")
#: Rows per batch of the monitored loss. Inference batches are smaller (see
#: ``skvae._torch_utils.INFERENCE_BATCH_SIZE``), but float32 sums over other
#: batches round differently, which could move a stopping decision: this one keeps
#: the batches every fitted model so far was stopped by.
MONITOR_BATCH_SIZE = 4096

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
}


def make_optimizer(
    model: VAE, name: str, learning_rate: float, alpha: float, fused: bool = False
) -> torch.optim.Optimizer:
    """``name``'s optimizer with an L2 penalty ``alpha`` on weights, not biases.

    Parameter group 0 holds the weights, group 1 the biases. ``fused`` asks for one
    fused kernel per step (CPU support arrived in torch 2.4; older versions fall back
    to the default implementation).
    """
    weights = [p for p in model.parameters() if p.ndim > 1]
    biases = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": weights, "weight_decay": alpha},
        {"params": biases, "weight_decay": 0.0},
    ]
    if fused:
        try:
            return OPTIMIZERS[name](groups, lr=learning_rate, fused=True)
        except (RuntimeError, TypeError):
            pass
    return OPTIMIZERS[name](groups, lr=learning_rate)


def set_hyperparameters(
    optimizer: torch.optim.Optimizer, learning_rate: float, alpha: float
) -> None:
    """Apply a new step size and weight penalty to an optimizer from make_optimizer."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    optimizer.param_groups[0]["weight_decay"] = alpha


def move_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Move the optimizer's state onto its parameters' current device.

    ``load_state_dict`` casts every state tensor to its parameter's device, handling
    each optimizer's special cases (such as Adam's step counter) the way torch does.
    """
    optimizer.load_state_dict(optimizer.state_dict())


#: One training step's gradient: sets ``p.grad`` of every parameter to the gradient
#: of the batch's mean loss; returns the per-row (loss, reconstruction, kl), detached.
Step = Callable[[VAE, Tensor, Tensor, float], tuple[Tensor, Tensor, Tensor]]


def autograd_step(objective: str, complete: bool = False) -> Step:
    """The general step: autograd through ``OBJECTIVES[objective]``; ``complete``
    promises batches without missing values (NaN), so none is searched for."""
    loss_fn = OBJECTIVES[objective]

    def step(model: VAE, x: Tensor, eps: Tensor, beta: float):
        for p in model.parameters():
            p.grad = None
        terms = loss_fn(model, x, eps, beta, complete)
        terms.loss.mean().backward()
        return terms.loss.detach(), terms.reconstruction.detach(), terms.kl.detach()

    return step


def closed_form_step(model: VAE, x: Tensor, eps: Tensor, beta: float):
    """The fast step for the ELBO: :func:`skvae._gradients.negative_elbo_backward`."""
    rec, kl = negative_elbo_backward(model, x, eps, beta)
    return rec + beta * kl, rec, kl


def choose_gradient(
    requested: str,
    model: VAE,
    objective: str,
    device: torch.device,
    complete: bool = True,
) -> str:
    """Resolve ``requested`` (one of :data:`GRADIENTS`) to "autograd" or "closed_form".

    The rule for "auto": the hand-written pass where it computes exactly this model
    and objective (the ELBO of skvae's own MLP VAE), the likelihood's gradient is a
    closed form, the data are ``complete`` (no missing values), and the device is
    the CPU, where ``benchmarks/speed.py`` measures its gain; autograd everywhere
    else. "closed_form" where the pass does not apply raises ``ValueError`` saying
    why.
    """
    reason = unsupported_reason(objective, model)
    if reason is None and not complete:
        reason = "the data have missing values, which only autograd trains"
    if requested == "closed_form":
        if reason is not None:
            raise ValueError(f"gradient='closed_form' cannot be used: {reason}.")
        return "closed_form"
    if requested == "auto" and reason is None and device.type == "cpu":
        if model.likelihood.closed_form_gradient:
            return "closed_form"
    return "autograd"


#: Below this many matmul FLOPs per training step, the rule trains on one intra-op
#: thread. Measured with ``benchmarks/threads.py`` on 2 cores: a digits-sized step
#: (12 MFLOP) gains nothing from a second thread on a quiet machine (0.36 against
#: 0.37 s) but runs 2.7x slower with two threads than with one beside one busy
#: process; an MNIST-sized step (about 490 MFLOP) gains 1.6x from the second thread
#: when the machine is quiet, enough to keep torch's setting. The rule depends on
#: the model only, never on the machine's load, so fits stay reproducible.
SINGLE_THREAD_BELOW_FLOPS = 5e7


def step_flops(model: VAE, batch_size: int, n_draws: int) -> float:
    """Matmul FLOPs of one training step: forward and the backward's two matmuls."""

    def layer_flops(module: torch.nn.Module, rows: int) -> float:
        return sum(
            2.0 * rows * m.in_features * m.out_features
            for m in module.modules()
            if isinstance(m, torch.nn.Linear)
        )

    forward = layer_flops(model.encoder, batch_size)
    forward += layer_flops(model.decoder, batch_size * n_draws)
    return 3.0 * forward


def choose_threads(
    requested: int | None, model: VAE, batch_size: int, n_draws: int
) -> int | None:
    """The intra-op threads a fit uses: ``requested``, or by rule (None: torch's).

    ``requested`` bounds torch's own setting and never raises it (with
    ``OMP_NUM_THREADS=1``, 2 requested is 1). The rule for None: one thread where a
    step is too small for a second thread to pay
    (:data:`SINGLE_THREAD_BELOW_FLOPS`), torch's own setting otherwise.
    """
    if requested is not None:
        return min(requested, torch.get_num_threads())
    if step_flops(model, batch_size, n_draws) < SINGLE_THREAD_BELOW_FLOPS:
        return 1
    return None


def make_step(gradient: str, objective: str, complete: bool = False) -> Step:
    """The step for a resolved ``gradient`` ("autograd" or "closed_form");
    ``complete`` as :func:`autograd_step`'s (the closed form needs complete rows)."""
    if gradient == "closed_form":
        return closed_form_step
    return autograd_step(objective, complete)


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
    step: Step,
    batch_size: int,
    beta: float,
    n_mc_samples: int,
    shuffle: bool,
    generator: torch.Generator,
) -> EpochResult:
    """One pass of minibatch ``step``s over ``X`` (float32, on the model's device)."""
    n, device = len(X), X.device
    latent_dim = model.config.latent_dim
    order = (
        torch.randperm(n, generator=generator, device=device)
        if shuffle
        else torch.arange(n, device=device)
    )
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, rec, kl
    model.train()
    for start in range(0, n, batch_size):
        # index_select copies whole rows; X[idx] took 3.5x as long (28 against 8 us).
        xb = X.index_select(0, order[start : start + batch_size])  # (B, n_features)
        eps = torch.randn(
            (n_mc_samples, len(xb), latent_dim),
            generator=generator,
            dtype=X.dtype,
            device=device,
        )
        loss, rec, kl = step(model, xb, eps, beta)  # (B,) each; sets the gradients
        optimizer.step()
        sums += torch.stack([loss.sum(), rec.sum(), kl.sum()])
    return EpochResult(*(sums / n).tolist())


def monitored_loss(
    model: VAE,
    X: Tensor,
    eps: Tensor,
    objective: str,
    beta: float,
    batch_size: int = MONITOR_BATCH_SIZE,
    complete: bool = False,
) -> tuple[float, float]:
    """Means over ``X`` of the objective's loss and of its bound (beta = 1).

    ``eps`` of shape (L, len(X), latent) holds fixed draws for each row: held fixed,
    both are deterministic functions of the weights, so epoch-to-epoch changes in
    them reflect the model, not Monte-Carlo noise. ``complete`` promises rows
    without missing values.
    """
    loss_fn = OBJECTIVES[objective]
    sums = torch.zeros(2, dtype=torch.float64, device=X.device)
    with torch.inference_mode():
        for i in range(0, len(X), batch_size):
            terms = loss_fn(
                model,
                X[i : i + batch_size],
                eps[:, i : i + batch_size],
                beta,
                complete,
            )
            sums += torch.stack([terms.loss.sum(), terms.bound.sum()])
    loss, bound = (sums / len(X)).tolist()
    return loss, bound


@dataclass
class History:
    """What the estimator reports; appended to epoch by epoch."""

    loss: list[float] = field(default_factory=list)
    reconstruction: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    validation: list[float] | None = None

    def append(self, result: EpochResult, bound: float | None) -> None:
        self.loss.append(result.loss)
        self.reconstruction.append(result.reconstruction)
        self.kl.append(result.kl)
        if bound is not None:
            self.validation.append(bound)

    def truncate(self, n_entries: dict[str, int]) -> None:
        """Cut every list back to its length in ``n_entries`` (see :meth:`lengths`)."""
        for name, n in n_entries.items():
            del getattr(self, name)[n:]

    def lengths(self) -> dict[str, int]:
        names = ["loss", "reconstruction", "kl"]
        names += [] if self.validation is None else ["validation"]
        return {name: len(getattr(self, name)) for name in names}


@dataclass
class StopRule:
    """Stop once the best monitored loss gains at most ``tol`` an epoch, on average.

    After each epoch the rule compares the lowest loss so far with the lowest one
    ``patience`` epochs earlier: training stops when it has fallen by at most
    ``patience * tol``. Judging the record over a window, not each epoch against the
    last record, lets neither one lucky epoch keep training alive nor a few flat ones
    end a fit that is still gaining; ``tol=0`` stops after ``patience`` epochs with
    no improvement at all.
    """

    tol: float
    patience: int
    #: The lowest loss after each of the last ``patience + 1`` epochs.
    bests: deque[float] = field(init=False)

    def __post_init__(self) -> None:
        self.bests = deque(maxlen=self.patience + 1)

    @property
    def best(self) -> float:
        return self.bests[-1] if self.bests else math.inf

    def update(self, value: float) -> bool:
        """Record ``value``; return True when training should stop."""
        self.bests.append(min(self.best, value))
        full = len(self.bests) == self.bests.maxlen
        return full and self.bests[0] - self.bests[-1] <= self.patience * self.tol


#: How far above its lowest value so far the training loss may rise before the fit
#: counts as diverged: DIVERGENCE_FACTOR * (|lowest| + n_features) nats per row.
#: Epoch-to-epoch noise stays orders of magnitude below; an exploding step size
#: does not (learning_rate_init=10 on 200 rows of 5 features: from 1.9e5 to 2.7e13).
DIVERGENCE_FACTOR = 10.0


def exploded(loss: float, lowest: float, n_features: int) -> bool:
    """Whether a finite ``loss`` has run away from the ``lowest`` one so far."""
    return loss > lowest + DIVERGENCE_FACTOR * (abs(lowest) + n_features)


@dataclass
class Outcome:
    """How a call to :func:`train` ended."""

    epochs: int = 0
    #: With early stopping, the bound at the epoch with the best monitored loss,
    #: whose weights were kept.
    best_bound: float | None = None
    converged: bool = False
    #: Why training stopped early as diverged ("non-finite" or "exploded"), or None.
    diverged: str | None = None
    #: The epoch (1-based within the call; 0 before any) whose weights a divergence
    #: restored: the best one (lowest monitored loss, else training loss).
    restored_epoch: int = 0
    interrupted: bool = False
    #: The training loss of the diverged epoch, when it was finite.
    diverged_loss: float | None = None


def _duration(seconds: float) -> str:
    """``seconds`` as "42 s", "3 min 05 s" or "1 h 02 min"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


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
    objective: str = "elbo",
    log: Callable[[str], None] | None = None,
    first_epoch: int = 1,
    complete: bool = False,
) -> Outcome:
    """Run epochs until ``stop_rule`` fires, ``max_epochs`` pass, or the loss diverges.

    ``X_monitor`` is the validation set with ``early_stopping`` (its best weights are
    restored at the end), else a fixed subset of the training rows (``complete``:
    none of them has a missing value); with no monitor
    (``partial_fit``), no stopping rule applies. The stopping rule watches the
    training objective's loss on the monitor rows (with ``beta``), with the fixed
    draws ``eps_monitor``; the history records their bound (ELBO or IWAE bound).

    Divergence: an epoch whose loss, weights or monitored loss is non-finite, or
    whose training loss has :func:`exploded`, ends training, and the best weights so
    far come back (of the epoch with the lowest monitored loss, or training loss
    without a monitor; the initial ones if no epoch finished); the caller should
    rebuild the optimizer, whose state holds the runaway steps. A
    ``KeyboardInterrupt`` anywhere in the loop ends training with the weights and
    history of the last full epoch (the best epoch's weights, with
    ``early_stopping``).
    """
    beta = epoch_kwargs["beta"]
    n_features = X_train.shape[1]
    outcome = Outcome()
    weights = parameters_to_vector(model.parameters())
    # What the last full epoch left: (epochs, weights, history lengths, best), where
    # best = (monitored loss, or training loss without a monitor; its epoch; its
    # weights; its bound). Replaced in one assignment, so that an interrupt anywhere
    # finds a consistent state to return to.
    committed = (0, weights, history.lengths(), (math.inf, 0, weights, None))
    lowest_loss = math.inf  # the training loss an explosion is judged against
    started = time.perf_counter()
    try:
        for epoch in range(first_epoch, first_epoch + max_epochs):
            start = time.perf_counter()
            result = train_epoch(model, optimizer, X_train, **epoch_kwargs)
            weights = parameters_to_vector(model.parameters())
            # The last step can break the weights after the loss was computed.
            finite = result.finite and bool(torch.isfinite(weights).all())
            monitored = bound = 0.0
            if finite and X_monitor is not None:
                monitored, bound = monitored_loss(
                    model, X_monitor, eps_monitor, objective, beta, complete=complete
                )
            if not (finite and math.isfinite(monitored)):
                outcome.diverged = "non-finite"
            elif exploded(result.loss, lowest_loss, n_features):
                outcome.diverged, outcome.diverged_loss = "exploded", result.loss
            if outcome.diverged:
                break
            history.append(result, bound if early_stopping else None)
            n_done, best = committed[0] + 1, committed[3]
            score = result.loss if X_monitor is None else monitored
            if score < best[0]:
                best = (score, n_done, weights, bound)
            committed = (n_done, weights, history.lengths(), best)
            lowest_loss = min(lowest_loss, result.loss)
            stop = stop_rule is not None and stop_rule.update(monitored)
            if log is not None:
                line = f"Epoch {epoch}: loss = {result.loss:.6g} (KL {result.kl:.4g})"
                if early_stopping:
                    line += f", validation {BOUND_NAMES[objective]} = {bound:.6g}"
                line += f", {time.perf_counter() - start:.2f} s"
                if n_done < max_epochs and not stop:
                    per_epoch = (time.perf_counter() - started) / n_done
                    line += f", at most {_duration(per_epoch * (max_epochs - n_done))}"
                    line += " left"
                log(line)
            if stop:
                outcome.converged = True
                break
    except KeyboardInterrupt:
        outcome.interrupted = True
    outcome.epochs, weights, lengths, best = committed
    history.truncate(lengths)  # an interrupted epoch's partial record
    if outcome.diverged:
        weights, outcome.restored_epoch = best[2], best[1]
    if early_stopping and outcome.epochs > 0:
        weights, outcome.best_bound = best[2], best[3]
    vector_to_parameters(weights, model.parameters())
    optimizer.zero_grad(set_to_none=True)  # the fitted module carries no gradients
    return outcome
