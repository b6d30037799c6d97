"""Speed and memory of skvae, side by side with plain torch, skorch and a FLOP floor.

    python -m benchmarks.speed [--quick] [--epochs N] [--data-dir DIR] [--out DIR]
                               [--only SECTION]

Sections (``--only`` runs one):

- ``training``: seconds per epoch of ``VAETransformer.partial_fit`` with each
  gradient path (``gradient="closed_form"`` and ``gradient="autograd"``), of the plain
  torch loop in ``benchmarks/reference.py`` and of the same model in
  ``skorch.NeuralNet`` (skipped when skorch is missing), on 60000x784 float32 rows,
  784-500-latent, tanh, batch 100; against the measured time of the matmuls alone.
- ``inference``: ``transform`` (float32 and float64), ``inverse_transform`` and
  ``score_samples`` of 10,000 rows against their matmul floors; PCA for reference.
- ``scaling``: seconds per epoch at 10k, 30k and 60k rows; ``transform`` of 10^6
  rows in a subprocess, with its peak memory.
- ``overheads``: what ``import skvae`` adds, one ``check_estimator``, a small fit.
- ``memory``: peak RSS of a fit on the training data, in a subprocess.

The data are MNIST's IDX files (``--data-dir``, else ``$SKVAE_MNIST_DIR``, else
``../shared/data/mnist``), or synthetic uniform [0, 1] float32 data of the same shape
when that directory is missing. Results go to ``speed.md`` and ``speed.json`` in
``--out`` (default ``benchmarks/results``; with ``--quick``, a new temporary folder).
The report holds measured numbers and their ratios only, no targets: what counts as
fast enough is an issue's business, not the benchmark's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks._report import (
    Column,
    col,
    fmt,
    resolve_quick,
    table,
    text_col,
    versions_line,
)
from benchmarks._report import stamp as stamp_of
from benchmarks._report import write_report as write_files
from benchmarks.mnist_data import load_mnist, mnist_directory
from skvae import VAETransformer

SECTIONS = ("training", "inference", "scaling", "overheads", "memory")
REPO_ROOT = Path(__file__).resolve().parents[1]
N_FEATURES, HIDDEN, BATCH = 784, 500, 100
FULL_SHAPES = {"train": (60000, N_FEATURES), "test": (10000, N_FEATURES)}
MIB = 2**20

# The inference floors are a fixed yardstick, in the benchmark's own constants
# (skvae's private ones may change without notice): the forward matmuls of the
# operation in batches of 4096 rows, and for score_samples, which averages over
# "128 quasi-random draws" (its docstring), of 32 rows x 128 draws (4096 decoded
# rows) a batch. skvae may batch otherwise: whatever it gains by that is its own.
INFERENCE_ROWS = 4096
SCORE_DRAWS = 128
SCORE_BATCH_ROWS = 32


# ---------------------------------------------------------------- settings and data


@dataclass(frozen=True)
class Settings:
    """Sizes and repeats of one run; ``quick`` shrinks them to a smoke test."""

    quick: bool
    epochs: int
    n_train: int | None  # None: all rows
    n_test: int | None
    matmul_seconds: float
    repeats: int
    scaling_sizes: tuple[int, ...]
    scaling_repeats: int
    big_rows: int
    import_repeats: int
    small_fit_repeats: int
    check_estimator: bool


def make_settings(quick: bool, epochs: int | None) -> Settings:
    """Full-size settings, or tiny ones for ``--quick``."""
    if quick:
        return Settings(
            quick=True,
            epochs=epochs or 1,
            n_train=2000,
            n_test=500,
            matmul_seconds=0.02,
            repeats=2,
            scaling_sizes=(500, 1000, 2000),
            scaling_repeats=1,
            big_rows=100_000,
            import_repeats=1,
            small_fit_repeats=1,
            check_estimator=False,
        )
    return Settings(
        quick=False,
        epochs=epochs or 5,
        n_train=None,
        n_test=None,
        matmul_seconds=0.5,
        repeats=5,
        scaling_sizes=(10000, 30000, 60000),
        scaling_repeats=5,
        big_rows=1_000_000,
        import_repeats=3,
        small_fit_repeats=3,
        check_estimator=True,
    )


@dataclass
class Data:
    """Training and test rows (float32, C-contiguous) and where they came from."""

    X_train: np.ndarray
    X_test: np.ndarray
    source: str


def load_data(
    data_dir: str | None, n_train: int | None = None, n_test: int | None = None
) -> Data:
    """MNIST from its IDX directory, else synthetic U[0, 1] float32 of MNIST's shape.

    Never falls back to the digits: their 64 features would time another model.
    ``n_train`` and ``n_test`` keep the first rows only (copies: the rest is freed).
    """
    directory = mnist_directory(data_dir)
    if directory.is_dir():
        mnist = load_mnist(directory)
        X_train, X_test, source = mnist.X_train, mnist.X_test, mnist.source
    else:
        print(f"No MNIST directory {directory}: synthetic data.", file=sys.stderr)
        rng = np.random.default_rng(0)
        X_train = rng.random(FULL_SHAPES["train"], dtype=np.float32)
        X_test = rng.random(FULL_SHAPES["test"], dtype=np.float32)
        # No path: reports name no directory of the machine.
        source = "synthetic uniform [0, 1] float32 (no MNIST directory)"
    if n_train is not None:
        X_train = X_train[:n_train].copy()
    if n_test is not None:
        X_test = X_test[:n_test].copy()
    return Data(X_train, X_test, source)


# ------------------------------------------------------------------ measuring tools


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median seconds of ``repeats`` calls after one warm-up call, and all of them."""
    fn()
    seconds = [timed(fn) for _ in range(repeats)]
    return statistics.median(seconds), seconds


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM, ...) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_snapshot() -> dict[str, float]:
    """Current and peak RSS in MiB: VmRSS, VmHWM and ``ru_maxrss``.

    ``ru_maxrss`` of a child process starts at its parent's RSS (Linux carries the
    peak of the address space replaced at exec into it), so peaks are read from
    VmHWM, which belongs to this process's own address space.
    """
    return {
        "rss_mib": status_kib("VmRSS") / 1024,
        "peak_mib": status_kib("VmHWM") / 1024,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


@dataclass(frozen=True)
class MatMul:
    """One matmul of a linear layer ``n_in -> n_out`` applied to ``rows`` rows.

    ``op`` is ``"forward"`` (``addmm(b, x, w.T)``, as ``nn.Linear`` does),
    ``"grad_input"`` (``g @ w``) or ``"grad_weight"`` (``g.T @ x``): the same FLOPs,
    different memory layouts.
    """

    op: str
    rows: int
    n_in: int
    n_out: int
    dtype: torch.dtype = torch.float32

    @property
    def flops(self) -> int:
        return 2 * self.rows * self.n_in * self.n_out


class MatMulTimer:
    """Seconds per call of each matmul shape, measured once here and cached."""

    def __init__(self, seconds: float, blocks: int = 5) -> None:
        self.seconds = seconds
        self.blocks = blocks
        self._generator = torch.Generator().manual_seed(0)
        self._cache: dict[MatMul, float] = {}

    def __call__(self, mm: MatMul) -> float:
        if mm not in self._cache:
            self._cache[mm] = self._measure(mm)
        return self._cache[mm]

    def _rand(self, *shape: int, dtype: torch.dtype) -> torch.Tensor:
        return torch.rand(shape, generator=self._generator, dtype=dtype)

    def _call(self, mm: MatMul) -> Callable[[], torch.Tensor]:
        r, dt = self._rand, mm.dtype
        if mm.op == "forward":
            x, w = r(mm.rows, mm.n_in, dtype=dt), r(mm.n_out, mm.n_in, dtype=dt)
            b = r(mm.n_out, dtype=dt)
            out = torch.empty(mm.rows, mm.n_out, dtype=dt)
            return lambda: torch.addmm(b, x, w.t(), out=out)
        g = r(mm.rows, mm.n_out, dtype=dt)
        if mm.op == "grad_input":
            w = r(mm.n_out, mm.n_in, dtype=dt)
            out = torch.empty(mm.rows, mm.n_in, dtype=dt)
            return lambda: torch.mm(g, w, out=out)
        x = r(mm.rows, mm.n_in, dtype=dt)
        out = torch.empty(mm.n_out, mm.n_in, dtype=dt)
        return lambda: torch.mm(g.t(), x, out=out)

    def _measure(self, mm: MatMul) -> float:
        call = self._call(mm)
        call()
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < self.seconds / 20:
            call()
            calls += 1
        per_call = (time.perf_counter() - start) / calls
        per_block = max(1, round(self.seconds / self.blocks / per_call))
        blocks = []
        for _ in range(self.blocks):
            start = time.perf_counter()
            for _ in range(per_block):
                call()
            blocks.append((time.perf_counter() - start) / per_block)
        return statistics.median(blocks)

    def floor(self, matmuls: Iterable[MatMul]) -> tuple[float, int]:
        """Seconds and FLOPs of running exactly ``matmuls`` at the measured rates."""
        seconds = flops = 0
        for mm in matmuls:
            seconds += self(mm)
            flops += mm.flops
        return seconds, flops


class MatMulRun:
    """One call runs exactly ``matmuls``, in order, on operands prepared once.

    The floor as a runner: timed in the same rounds as what it is the floor of, so
    that a slow spell of the machine slows both alike and their ratio, taken
    within a round, divides it out (a floor measured once, before or after, moved
    the ratios by as much as the machine's mood).
    """

    def __init__(self, matmuls: Iterable[MatMul], timer: MatMulTimer) -> None:
        prepared: dict[MatMul, Callable[[], torch.Tensor]] = {}
        self.calls = []
        for mm in matmuls:
            if mm not in prepared:
                prepared[mm] = timer._call(mm)
            self.calls.append(prepared[mm])

    def __call__(self) -> None:
        for call in self.calls:
            call()


def batch_sizes(n: int, batch: int) -> list[int]:
    """Row counts of the batches that cover ``n`` rows."""
    return [min(batch, n - start) for start in range(0, n, batch)]


def vae_layers(latent: int, heads: int) -> list[tuple[int, int]]:
    """(n_in, n_out) of the encoder, its mu/log-var head, the decoder and its head."""
    return [
        (N_FEATURES, HIDDEN),
        (HIDDEN, 2 * latent),
        (latent, HIDDEN),
        (HIDDEN, heads * N_FEATURES),
    ]


def forward_matmuls(
    rows: int, layers: list[tuple[int, int]], dtype: torch.dtype = torch.float32
) -> list[MatMul]:
    return [MatMul("forward", rows, n_in, n_out, dtype) for n_in, n_out in layers]


def training_matmuls(rows: int, layers: list[tuple[int, int]]) -> list[MatMul]:
    """Forward and backward matmuls of one step; the input needs no gradient."""
    matmuls = forward_matmuls(rows, layers)
    for i, (n_in, n_out) in enumerate(layers):
        if i > 0:
            matmuls.append(MatMul("grad_input", rows, n_in, n_out))
        matmuls.append(MatMul("grad_weight", rows, n_in, n_out))
    return matmuls


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


# ----------------------------------------------------------------------- training


def skvae_estimator(latent: int, likelihood: str, gradient: str) -> VAETransformer:
    """The VAETransformer timed, with its gradient path asked for explicitly."""
    return VAETransformer(
        latent_dim=latent,
        hidden_layer_sizes=(HIDDEN,),
        likelihood=likelihood,
        batch_size=BATCH,
        gradient=gradient,
        random_state=0,
    )


def plain_epoch(X: np.ndarray, latent: int, likelihood: str) -> Callable[[], object]:
    """One epoch of the hand-written torch loop, per call."""
    from benchmarks.reference import PlainTrainer

    trainer = PlainTrainer(
        torch.from_numpy(X),
        hidden=HIDDEN,
        latent=latent,
        likelihood=likelihood,
        batch_size=BATCH,
    )
    return trainer.epoch


def skorch_epoch(
    make_net: Callable, X: np.ndarray, latent: int, likelihood: str
) -> Callable[[], object]:
    """One warm-started ``NeuralNet.fit`` call (one epoch), per call."""
    net = make_net(N_FEATURES, HIDDEN, latent, likelihood, BATCH)
    return lambda: net.fit(X, y=None)


#: The implementations timed against each other, in table order: skvae with each
#: gradient path (``VAETransformer(gradient=...)``), the plain loop, skorch.
RUNNERS = ("closed_form", "autograd", "plain", "skorch")
#: skvae's runners: the ``gradient`` each asks for, which its ``gradient_`` must be.
SKVAE_RUNNERS = ("closed_form", "autograd")
#: What the report calls each runner; SHORT_NAMES in ratios' headers.
RUNNER_NAMES = {
    "closed_form": "skvae closed form",
    "autograd": "skvae autograd",
    "plain": "plain",
    "skorch": "skorch",
}
SHORT_NAMES = {**RUNNER_NAMES, "closed_form": "closed form", "autograd": "autograd"}
#: Ratios of paired epochs (numerator, denominator), in table order.
PAIRED_RATIOS = (
    ("closed_form", "autograd"),
    ("closed_form", "plain"),
    ("autograd", "plain"),
    ("closed_form", "skorch"),
    ("autograd", "skorch"),
)


def interleaved_epochs(
    runners: dict[str, Callable[[], object]], epochs: int
) -> dict[str, list[float]]:
    """Seconds of 1 + ``epochs`` epochs of each runner, taken in turns.

    Round k runs one epoch of every runner, in an order rotated by k, so a slow
    spell of the (shared, noisy) machine falls on all of them alike instead of on
    whichever happened to be running; the first round is the warm-up.
    """
    names = list(runners)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for k in range(epochs + 1):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            seconds[name].append(timed(runners[name]))
    return seconds


def import_skorch() -> Callable | None:
    """``make_net`` from the skorch baseline, or None (with a message) without it."""
    try:
        from benchmarks._skorch_vae import make_net
    except ImportError as exc:
        print(f"skorch is not available ({exc}): its rows are skipped.", flush=True)
        return None
    return make_net


def paired_ratio(a: list[float] | None, b: list[float] | None) -> float | None:
    """Median over the measured rounds of ``a[k] / b[k]`` (round 0 is the warm-up).

    Both epochs of a pair ran in the same round, a minute apart at most, so the
    machine's slow spells, which last minutes, divide out.
    """
    ratios = round_ratios(a, b)
    return None if ratios is None else statistics.median(ratios)


def round_ratios(a: list[float] | None, b: list[float] | None) -> list[float] | None:
    """``a[k] / b[k]`` for every measured round k (round 0 is the warm-up)."""
    if a is None or b is None:
        return None
    return [x / y for x, y in zip(a[1:], b[1:], strict=True)]


def epoch_matmuls(n: int, likelihood: str, latent: int) -> list[MatMul]:
    """The forward and backward matmuls of one epoch over ``n`` rows, in order."""
    layers = vae_layers(latent, 2 if likelihood == "gaussian" else 1)
    return [mm for b in batch_sizes(n, BATCH) for mm in training_matmuls(b, layers)]


def training_section(data: Data, settings: Settings, timer: MatMulTimer) -> dict:
    """Seconds per epoch of skvae (both gradient paths), plain torch and skorch, and
    of the matmul floor (the epoch's matmuls alone, run as one more runner).

    Every configuration's runners share the rounds: each round runs one epoch of all
    of them, so each configuration meets the same mix of the machine's fast and slow
    spells (measured one configuration after another, a ratio moved by 0.2 between
    runs).
    """
    X = data.X_train
    n = len(X)
    make_net = import_skorch()
    configs = [(lik, latent) for lik in ("bernoulli", "gaussian") for latent in (2, 20)]
    runners: dict[str, Callable[[], object]] = {}
    estimators: dict[str, VAETransformer] = {}
    for likelihood, latent in configs:
        key = f"{likelihood} {latent}"
        for gradient in SKVAE_RUNNERS:
            vae = skvae_estimator(latent, likelihood, gradient)
            estimators[f"{key} {gradient}"] = vae
            runners[f"{key} {gradient}"] = partial(vae.partial_fit, X)
        runners[f"{key} plain"] = plain_epoch(X, latent, likelihood)
        if make_net is not None:
            runners[f"{key} skorch"] = skorch_epoch(make_net, X, latent, likelihood)
        runners[f"{key} floor"] = MatMulRun(epoch_matmuls(n, likelihood, latent), timer)
    measured = interleaved_epochs(runners, settings.epochs)
    # Which path each skvae column timed, as the fitted estimator says; a silent
    # fallback would time one path under the other's name.
    paths = {name: vae.gradient_ for name, vae in estimators.items()}
    for name, path in paths.items():
        if path != name.rsplit(" ", 1)[1]:
            raise RuntimeError(f"{name}: trained with gradient_={path!r}")
    del runners, estimators
    gc.collect()
    rows = []
    for likelihood, latent in configs:
        key = f"{likelihood} {latent}"
        flops = sum(mm.flops for mm in epoch_matmuls(n, likelihood, latent))
        floor_epochs = measured[f"{key} floor"]
        floor_s = statistics.median(floor_epochs[1:])
        raw = {name: measured.get(f"{key} {name}") for name in RUNNERS}
        row: dict = {"likelihood": likelihood, "latent": latent, "rows": n}
        for name in SKVAE_RUNNERS:
            row[f"{name}_gradient_"] = paths[f"{key} {name}"]
        for name, seconds in raw.items():
            median = None if seconds is None else statistics.median(seconds[1:])
            row[f"{name}_s"] = median
            row[f"{name}_epochs_s"] = seconds
            row[f"{name}_rows_per_s"] = ratio(n, median)
            row[f"{name}_gflops"] = ratio(flops / 1e9, median)
            row[f"{name}_vs_floor"] = paired_ratio(seconds, floor_epochs)
            row[f"{name}_vs_floor_rounds"] = round_ratios(seconds, floor_epochs)
        row.update(
            floor_s=floor_s,
            floor_epochs_s=floor_epochs,
            floor_gflops=flops / 1e9 / floor_s,
            gflop_per_epoch=flops / 1e9,
            mflop_per_row=flops / n / 1e6,
        )
        for a, b in PAIRED_RATIOS:
            row[f"{a}_vs_{b}"] = paired_ratio(raw[a], raw[b])
            row[f"{a}_vs_{b}_rounds"] = round_ratios(raw[a], raw[b])
        rows.append(row)
        print(
            f"training {likelihood:9s} latent {latent:2d}: "
            + ", ".join(
                f"{k} {row[k + '_s']:.3f} s" if row[k + "_s"] else f"{k} skipped"
                for k in (*RUNNERS, "floor")
            ),
            flush=True,
        )
    return {"epochs": settings.epochs, "skorch": make_net is not None, "rows": rows}


# ---------------------------------------------------------------------- inference


def inference_section(data: Data, settings: Settings, timer: MatMulTimer) -> dict:
    """Inference against its matmul floor, for a model trained one epoch."""
    from sklearn.decomposition import PCA

    vae = VAETransformer(
        latent_dim=2,
        hidden_layer_sizes=(HIDDEN,),
        likelihood="bernoulli",
        batch_size=BATCH,
        random_state=0,
    ).partial_fit(data.X_train)
    pca = PCA(2)
    X32 = data.X_test
    X64 = X32.astype(np.float64)
    Z = vae.transform(X32)
    n = len(X32)
    encoder, decoder = vae_layers(2, 1)[:2], vae_layers(2, 1)[2:]
    batches = batch_sizes(n, INFERENCE_ROWS)

    def encode_floor(dtype: torch.dtype) -> list[MatMul]:
        return [mm for b in batches for mm in forward_matmuls(b, encoder, dtype)]

    score_floor = [
        mm
        for b in batch_sizes(n, SCORE_BATCH_ROWS)
        for mm in forward_matmuls(b, encoder)
        + forward_matmuls(SCORE_DRAWS * b, decoder)
    ]
    cases: list[tuple[str, Callable[[], object], list[MatMul]]] = [
        ("transform float32", lambda: vae.transform(X32), encode_floor(torch.float32)),
        ("transform float64", lambda: vae.transform(X64), encode_floor(torch.float64)),
        (
            "inverse_transform float32",
            lambda: vae.inverse_transform(Z),
            [mm for b in batches for mm in forward_matmuls(b, decoder)],
        ),
        ("score_samples float32", lambda: vae.score_samples(X32), score_floor),
    ]
    # Each operation and its floor (its matmuls alone) take turns in rotated rounds.
    runners: dict[str, Callable[[], object]] = {}
    for name, fn, matmuls in cases:
        runners[name] = fn
        runners[f"{name} floor"] = MatMulRun(matmuls, timer)
    measured = interleaved_epochs(runners, settings.repeats)
    rows = []
    for name, _, matmuls in cases:
        seconds, floor = measured[name], measured[f"{name} floor"]
        median = statistics.median(seconds[1:])
        rows.append(
            {
                "operation": name,
                "rows": n,
                "seconds": median,
                "repeats_s": seconds,
                "rows_per_s": n / median,
                "floor_s": statistics.median(floor[1:]),
                "floor_repeats_s": floor,
                "gflop": sum(mm.flops for mm in matmuls) / 1e9,
                "vs_floor": paired_ratio(seconds, floor),
                "vs_floor_rounds": round_ratios(seconds, floor),
            }
        )
        print(f"inference {name}: {median:.4f} s", flush=True)
    # Last, outside the rounds: for ~0.1 s after a BLAS call numpy's threads hold
    # the cores, which slowed a torch transform that followed PCA's fit 5-fold.
    for name, fn in [
        ("PCA(2).fit (training rows)", lambda: pca.fit(data.X_train)),
        ("PCA(2).transform float32", lambda: pca.transform(X32)),
    ]:
        seconds, all_seconds = median_seconds(fn, settings.repeats)
        n_rows = len(data.X_train) if name.startswith("PCA(2).fit") else n
        rows.append(
            {
                "operation": name,
                "rows": n_rows,
                "seconds": seconds,
                "repeats_s": all_seconds,
                "rows_per_s": n_rows / seconds,
                "floor_s": None,
                "vs_floor": None,
            }
        )
        print(f"inference {name}: {seconds:.4f} s", flush=True)
    return {
        "repeats": settings.repeats,
        "batch_rows": INFERENCE_ROWS,
        "score_batch_rows": SCORE_BATCH_ROWS,
        "score_draws": SCORE_DRAWS,
        "rows": rows,
    }


# ------------------------------------------------------------------------ scaling


def scaling_section(data: Data, settings: Settings) -> dict:
    """Cost per row of an epoch at growing sizes; transform of 10^6 rows.

    The sizes take their epochs in turns, like the training section's runners, so
    that the machine's slow spells do not pass for a cost that grows with the rows.
    """
    runners = {}
    for n in settings.scaling_sizes:
        vae = VAETransformer(
            latent_dim=2,
            hidden_layer_sizes=(HIDDEN,),
            likelihood="bernoulli",
            batch_size=BATCH,
            random_state=0,
        )
        runners[n] = partial(vae.partial_fit, data.X_train[:n])
    rows = []
    for n, seconds in interleaved_epochs(runners, settings.scaling_repeats).items():
        median = statistics.median(seconds[1:])
        rows.append(
            {
                "rows": n,
                "seconds_per_epoch": median,
                "epochs_s": seconds,
                "seconds_per_1000_rows": median / n * 1000,
            }
        )
        print(f"scaling {n} rows: {median:.3f} s/epoch", flush=True)
    per_1000 = [r["seconds_per_1000_rows"] for r in rows]
    big = run_child("transform_big", {"rows": settings.big_rows})
    print(f"scaling transform of {settings.big_rows} rows: {big['seconds']:.2f} s")
    return {
        "repeats": settings.scaling_repeats,
        "rows": rows,
        "spread": max(per_1000) / min(per_1000) - 1,
        "transform_big": big,
    }


def child_transform_big(rows: int) -> dict:
    """In a fresh process: transform ``rows`` synthetic rows; time and peak RSS."""
    rng = np.random.default_rng(0)
    vae = VAETransformer(
        latent_dim=2,
        hidden_layer_sizes=(HIDDEN,),
        likelihood="bernoulli",
        random_state=0,
    )
    vae.partial_fit(rng.random((1000, N_FEATURES), dtype=np.float32))
    X = rng.random((rows, N_FEATURES), dtype=np.float32)
    before = memory_snapshot()
    reset = reset_peak_rss()
    seconds = timed(lambda: vae.transform(X))
    after = memory_snapshot()
    return {
        "rows": rows,
        "input_mib": X.nbytes / MIB,
        "rss_before_mib": before["rss_mib"],
        "peak_mib": after["peak_mib"],
        "extra_mib": after["peak_mib"] - before["rss_mib"],
        "ru_maxrss_mib": after["ru_maxrss_mib"],
        "peak_reset": reset,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
    }


# ---------------------------------------------------------------------- overheads


def import_seconds(statement: str, setup: str = "") -> tuple[float, float]:
    """Seconds of ``statement`` after ``setup`` in a fresh interpreter, and of the
    whole process."""
    code = (
        f"import time\n{setup}\nt = time.perf_counter()\n{statement}\n"
        "print(time.perf_counter() - t)"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return float(out.stdout.split()[-1]), time.perf_counter() - start


def overheads_section(settings: Settings) -> dict:
    """Import cost of skvae, one check_estimator, a default fit on small data."""
    from sklearn.exceptions import ConvergenceWarning

    statements = {  # name: (statement, setup)
        "torch_sklearn": ("import torch, sklearn", ""),
        "skvae": ("import skvae", ""),
        # What skvae adds once torch and sklearn are loaded, in the same process.
        "skvae_after_torch_sklearn": ("import skvae", "import torch, sklearn"),
    }
    if not settings.quick:
        import_seconds("import skvae")  # warm the file cache
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in statements}
    for _ in range(settings.import_repeats):
        for name, (statement, setup) in statements.items():
            runs[name].append(import_seconds(statement, setup))
    imports = {
        name: {
            "import_s": statistics.median(r[0] for r in values),
            "process_s": statistics.median(r[1] for r in values),
            "runs": values,
        }
        for name, values in runs.items()
    }
    added = imports["skvae"]["import_s"] - imports["torch_sklearn"]["import_s"]
    print(f"overheads: import skvae adds {added:.3f} s", flush=True)

    check = None
    if settings.check_estimator:
        check = run_child(
            "check_estimator",
            {},
            env={"SCIPY_ARRAY_API": "1", "PYTHONWARNINGS": "ignore"},
        )
        print(f"overheads: check_estimator {check['seconds']:.1f} s", flush=True)

    X = np.random.default_rng(0).standard_normal((200, 10))
    n_iter = []

    def small_fit() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            n_iter.append(VAETransformer(random_state=0).fit(X).n_iter_)

    small = [timed(small_fit) for _ in range(settings.small_fit_repeats)]
    print(f"overheads: small fit {statistics.median(small):.2f} s", flush=True)
    return {
        "imports": imports,
        "import_added_s": added,
        "check_estimator": check,
        "small_fit": {
            "shape": [200, 10],
            "seconds": statistics.median(small),
            "runs_s": small,
            "n_iter": n_iter,
        },
    }


def child_check_estimator() -> dict:
    """In a fresh process: one full ``check_estimator`` of the default estimator."""
    warnings.simplefilter("ignore")
    from sklearn.utils.estimator_checks import check_estimator

    start = time.perf_counter()
    results = check_estimator(VAETransformer(), on_fail=None, on_skip=None)
    seconds = time.perf_counter() - start
    statuses = [r["status"] for r in results]
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    return {
        "seconds": seconds,
        "checks": len(statuses),
        "passed": statuses.count("passed"),
        "skipped": statuses.count("skipped"),
        "failed": failed,
    }


# ------------------------------------------------------------------------- memory


def memory_section(settings: Settings, data_dir: str | None) -> dict:
    """Peak RSS of a fit on the training data against the runtime baseline.

    The baseline is the fresh fitting process itself once it has imported torch and
    skvae and loaded the data, before fitting: a process that only does that.
    """
    fit = run_child("memory_fit", {"data_dir": data_dir, "n_train": settings.n_train})
    baseline = fit["rss_loaded_mib"]
    print(f"memory: fit peak {fit['peak_mib']:.0f} MiB", flush=True)
    return {
        "data_mib": fit["data_mib"],
        "fit": fit,
        "baseline_mib": baseline,
        "excess_over_baseline_mib": fit["peak_mib"] - baseline,
        "excess_over_data": (fit["peak_mib"] - baseline) / fit["data_mib"],
    }


def child_memory_fit(data_dir: str | None, n_train: int | None) -> dict:
    """In a fresh process: load the training rows, then fit on them; RSS of each."""
    from sklearn.exceptions import ConvergenceWarning

    imports = memory_snapshot()
    X = load_data(data_dir, n_train).X_train
    loaded = memory_snapshot()
    # The fit's own peak, not the transient of decoding the IDX files.
    reset = reset_peak_rss()
    vae = VAETransformer(
        hidden_layer_sizes=(HIDDEN,), likelihood="bernoulli", max_iter=2, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        seconds = timed(lambda: vae.fit(X))
    after = memory_snapshot()
    return {
        "data_mib": X.nbytes / MIB,
        "rss_imports_mib": imports["rss_mib"],
        "rss_loaded_mib": loaded["rss_mib"],
        "peak_loading_mib": loaded["peak_mib"],
        "peak_reset": reset,
        "seconds": seconds,
        "peak_mib": after["peak_mib"],
        "ru_maxrss_mib": after["ru_maxrss_mib"],
    }


# ----------------------------------------------------------------- subprocesses


CHILDREN: dict[str, Callable[..., dict]] = {
    "transform_big": child_transform_big,
    "check_estimator": child_check_estimator,
    "memory_fit": child_memory_fit,
}


def run_child(name: str, kwargs: dict, env: dict[str, str] | None = None) -> dict:
    """Run ``CHILDREN[name](**kwargs)`` in a fresh interpreter; return its dict."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.speed",
        "--child",
        name,
        "--child-args",
        json.dumps(kwargs),
    ]
    start = time.perf_counter()
    out = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {name} failed with exit status {out.returncode}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


# ------------------------------------------------------------------------ report


def make_stamp(argv: list[str], data: Data, settings: Settings) -> dict:
    return {
        **stamp_of("benchmarks.speed", argv),
        "data": data.source,
        "train_shape": list(data.X_train.shape),
        "test_shape": list(data.X_test.shape),
        "settings": asdict(settings),
    }


def ratio_col(header: str, key: str) -> Column:
    """A column of the ratio ``row[key]`` in bold ("-" where not measured)."""
    return header, lambda r: "-" if r.get(key) is None else f"**{r[key]:.2f}x**"


def spread_col(header: str, key: str) -> Column:
    """A column of the median ratio ``row[key]`` in bold, with the lowest and
    highest of its rounds (``row[key + "_rounds"]``) beside it."""

    def cell(r: dict) -> str:
        if r.get(key) is None:
            return "-"
        rounds = r[f"{key}_rounds"]
        return f"**{r[key]:.2f}x** ({min(rounds):.2f}-{max(rounds):.2f})"

    return header, cell


def markdown(stamp: dict, sections: dict) -> list[str]:
    """The report: stamp, then small tables per section."""
    s = stamp
    lines = ["# skvae: speed and memory", ""]
    if s["settings"]["quick"]:
        lines += ["**Quick mode: tiny sizes, a smoke test, not results.**", ""]
    missing = [name for name in s["sections_planned"] if name not in sections]
    if missing:
        lines += [f"**Incomplete: {', '.join(missing)} not (yet) measured.**", ""]
    lines += [
        f"{versions_line(s, 'skorch')} · {s['cpu']}, {s['cpu_count']} CPUs, "
        f"{s['torch_threads']} torch threads · load average "
        f"{s['load_average_start'][0]:.2f} at start, {s['load_average_end'][0]:.2f} "
        f"at end · data: {s['data']}, train {s['train_shape']}, test "
        f"{s['test_shape']} · {s['total_seconds']:.0f} s in all.",
        "",
    ]
    renderers = {
        "training": training_markdown,
        "inference": inference_markdown,
        "scaling": scaling_markdown,
        "overheads": overheads_markdown,
        "memory": memory_markdown,
    }
    for name, render in renderers.items():
        if name in sections:
            lines += render(sections[name])
    return lines


def training_markdown(section: dict) -> list[str]:
    rows = section["rows"]
    names, short = RUNNER_NAMES, SHORT_NAMES
    lines = ["## Training", ""]
    if not section["skorch"]:
        lines += ["skorch is not installed: its columns are skipped.", ""]
    # Which path each skvae column measured, as its fitted estimators recorded it.
    paths = "; ".join(
        f'{names[name]} = VAETransformer(gradient="{name}"), fitted gradient_ '
        + " / ".join(sorted({f'"{r[name + "_gradient_"]}"' for r in rows}))
        for name in SKVAE_RUNNERS
    )
    config = [text_col("likelihood", "likelihood"), text_col("latent", "latent")]
    lines += table(
        [
            *config,
            *(col(f"{names[name]} s", f"{name}_s") for name in RUNNERS),
            col("floor s", "floor_s"),
        ],
        rows,
        f"Seconds per epoch (median of {section['epochs']} rounds after 1 warm-up) "
        f"on {rows[0]['rows']}x{N_FEATURES} float32 rows, {N_FEATURES}-{HIDDEN}-"
        f"latent, tanh, batch {BATCH}, one partial_fit call an epoch: {paths}. "
        "Each round runs one epoch of every implementation and configuration, in "
        "an order rotated by one per round. Floor = the epoch's matmuls alone "
        "(forward and backward, at the shapes of its batches), run as one more "
        "implementation in the same rounds.",
    )
    lines += table(
        [
            *config,
            *(
                spread_col(f"{short[name]}/floor", f"{name}_vs_floor")
                for name in RUNNERS
            ),
            *(
                spread_col(f"{short[a]}/{short[b]}", f"{a}_vs_{b}")
                for a, b in PAIRED_RATIOS
            ),
        ],
        rows,
        "Paired ratios of seconds per epoch (closed form and autograd are skvae's "
        "paths): the median over the measured rounds of the ratio of the two epochs "
        "run in the same round, with the lowest and highest round in brackets; "
        "below 1, the first is faster.",
    )
    lines += table(
        [
            *config,
            col("MFLOP/row", "mflop_per_row", ".2f"),
            *(
                col(f"{short[name]} rows/s", f"{name}_rows_per_s", ".0f")
                for name in RUNNERS
            ),
            *(
                col(f"{short[name]} GFLOP/s", f"{name}_gflops", ".1f")
                for name in RUNNERS
            ),
            col("floor GFLOP/s", "floor_gflops", ".1f"),
        ],
        rows,
        "Throughput: rows/s, and GFLOP/s counting the forward and backward matmuls "
        "(the floor's rate is the matmuls' own).",
    )
    return lines


def inference_markdown(section: dict) -> list[str]:
    lines = ["## Inference", ""]
    lines += table(
        [
            text_col("operation", "operation"),
            col("rows", "rows", "d"),
            col("seconds", "seconds", ".4f"),
            col("rows/s", "rows_per_s", ".0f"),
            col("floor s", "floor_s", ".4f"),
            spread_col("vs floor", "vs_floor"),
        ],
        section["rows"],
        f"Median of {section['repeats']} rounds after a warm-up; model trained one "
        "epoch (Bernoulli, latent 2). Floor = the operation's forward matmuls "
        f"alone, in batches of {section['batch_rows']} rows (score_samples: "
        f"{section['score_batch_rows']} rows x {section['score_draws']} draws a "
        "batch), a fixed yardstick whatever batches skvae uses; each round runs "
        "every operation and every floor once, in rotated order; vs floor = the "
        "median over rounds of the ratio within a round (lowest and highest round "
        "in brackets). PCA is timed after the rounds, outside them.",
    )
    return lines


def scaling_markdown(section: dict) -> list[str]:
    lines = ["## Scaling", ""]
    lines += table(
        [
            col("rows", "rows", "d"),
            col("s/epoch", "seconds_per_epoch"),
            col("s per 1000 rows", "seconds_per_1000_rows", ".4f"),
        ],
        section["rows"],
        f"skvae seconds per epoch (median of {section['repeats']} after a warm-up; "
        "one epoch of each size in turn, in rotating order) by number of training "
        "rows.",
    )
    lines += [f"Cost per row, max/min - 1: **{section['spread']:.1%}**.", ""]
    lines += table(
        [
            col("rows", "rows", "d"),
            col("input MiB", "input_mib", ".0f"),
            col("RSS before MiB", "rss_before_mib", ".0f"),
            col("peak MiB", "peak_mib", ".0f"),
            ("peak - before MiB", lambda r: f"**{r['extra_mib']:.0f}**"),
            col("seconds", "seconds", ".2f"),
            col("rows/s", "rows_per_s", ".0f"),
        ],
        [section["transform_big"]],
        "transform of synthetic float32 rows in a fresh process: RSS (VmRSS) after "
        "creating the input, and the peak (VmHWM) during transform.",
    )
    return lines


def overheads_markdown(section: dict) -> list[str]:
    imports, check = section["imports"], section["check_estimator"]
    small = section["small_fit"]
    if check is None:
        check_cell = "skipped (--quick)"
    else:
        check_cell = (
            f"**{check['seconds']:.1f}** ({check['passed']} passed, "
            f"{check['skipped']} skipped, {len(check['failed'])} failed; whole "
            f"process {check['process_s']:.1f})"
        )
        if check["failed"]:
            check_cell += "; failed: " + ", ".join(check["failed"])
    rows = [
        ("import torch, sklearn", fmt(imports["torch_sklearn"]["import_s"])),
        ("import skvae", fmt(imports["skvae"]["import_s"])),
        (
            "import skvae adds (difference of the two)",
            f"**{section['import_added_s']:.3f}**",
        ),
        (
            "import skvae after torch, sklearn (one process)",
            fmt(imports["skvae_after_torch_sklearn"]["import_s"]),
        ),
        ("check_estimator(VAETransformer())", check_cell),
        (
            "VAETransformer(random_state=0).fit on 200x10 N(0, 1) "
            f"({small['n_iter'][0]} epochs)",
            fmt(small["seconds"], ".2f"),
        ),
    ]
    headers = ("measure", "seconds")
    lines = ["## Overheads", ""]
    lines += table(
        [text_col(h, h) for h in headers],
        [dict(zip(headers, row, strict=True)) for row in rows],
        "Fixed costs: imports in fresh interpreters (median), one full check_estimator "
        "in a subprocess (SCIPY_ARRAY_API=1), a default fit on small data.",
    )
    return lines


def memory_markdown(section: dict) -> list[str]:
    row = {
        **section["fit"],
        "baseline": section["baseline_mib"],
        "excess": section["excess_over_baseline_mib"],
        "copies": section["excess_over_data"],
    }
    lines = ["## Memory", ""]
    lines += table(
        [
            col("data MiB (float32)", "data_mib", ".0f"),
            col("RSS after imports", "rss_imports_mib", ".0f"),
            col("baseline: imports + data", "baseline", ".0f"),
            ("peak of fit", lambda r: f"**{r['peak_mib']:.0f}**"),
            col("peak - baseline", "excess", ".0f"),
            col("(peak - baseline) / data", "copies", ".2f"),
        ],
        [row],
        "RSS in MiB of a fresh process that imports torch and skvae, loads the "
        "training rows (the baseline), then fits VAETransformer(hidden (500,), "
        "bernoulli, max_iter=2) on them. Peak = VmHWM, reset after loading (a "
        "child's ru_maxrss starts at its parent's RSS).",
    )
    return lines


# -------------------------------------------------------------------------- main


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke test")
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="measured epochs per training config, after 1 warm-up (default 5; "
        "--quick: 1)",
    )
    parser.add_argument("--data-dir", default=None, help="MNIST IDX directory")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default benchmarks/results; --quick: a temporary one)",
    )
    parser.add_argument("--only", choices=SECTIONS, default=None)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-args", default="{}", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](**json.loads(args.child_args))))
        return
    started = time.perf_counter()
    settings = make_settings(args.quick, args.epochs)
    resolve_quick(args, "speed")
    data = load_data(args.data_dir, settings.n_train, settings.n_test)
    stamp = make_stamp(argv, data, settings)
    print(f"data: {data.source}; {stamp['torch_threads']} torch threads", flush=True)
    timer = MatMulTimer(settings.matmul_seconds)
    run = {
        "training": lambda: training_section(data, settings, timer),
        "inference": lambda: inference_section(data, settings, timer),
        "scaling": lambda: scaling_section(data, settings),
        "overheads": lambda: overheads_section(settings),
        "memory": lambda: memory_section(settings, args.data_dir),
    }
    sections: dict[str, dict] = {}
    stamp["section_seconds"] = {}
    stamp["sections_planned"] = [n for n in SECTIONS if args.only in (None, n)]
    for name in stamp["sections_planned"]:
        start = time.perf_counter()
        sections[name] = run[name]()
        stamp["section_seconds"][name] = time.perf_counter() - start
        print(f"-- {name}: {stamp['section_seconds'][name]:.1f} s", flush=True)
        gc.collect()
        # After every section, so that a failure later keeps what was measured.
        stamp["total_seconds"] = time.perf_counter() - started
        save_report(args.out, stamp, sections)
    print(
        f"\nwrote {args.out}/speed.md and speed.json ({stamp['total_seconds']:.0f} s)"
    )


def save_report(out: Path, stamp: dict, sections: dict) -> None:
    """Write speed.json and speed.md into ``out``."""
    stamp["load_average_end"] = os.getloadavg()
    report = {"stamp": stamp, "sections": sections}
    write_files(out, "speed", report, markdown(stamp, sections))


if __name__ == "__main__":
    main()
