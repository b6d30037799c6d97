"""Whether the fast tanh of CPU inference pays: skvae against torch.tanh, in turns.

    python -m benchmarks.tanh_form [--rows 20000] [--score-rows 4000] [--rounds 6]

skvae's tanh layers (``skvae._model.Tanh``) compute tanh(x) = 2 * sigmoid(2x) - 1
under ``torch.inference_mode`` on the CPU, because torch's float32 ``tanh`` costs
several times its ``sigmoid`` on the CPUs here; training steps keep ``torch.tanh``.
This script measures what that rule buys where users wait, and what it changes. It
fits the MNIST model (784-500-2, Bernoulli, batch 100) for one ``partial_fit`` epoch
on 2,000 rows and makes a copy whose tanh layers always run ``torch.tanh`` (what
``nn.Tanh`` does); then, in ``--rounds`` rounds in alternating order, it times with
both: ``score_samples`` of ``--score-rows`` test rows, ``transform`` of the 10,000
test rows, and one ``partial_fit`` epoch on ``--rows`` rows (each from a fresh copy
of the same state; only the monitored loss between epochs runs in inference mode).
It prints the largest differences between the two copies' results and the paired
ratios (skvae / torch.tanh: the median over rounds of the ratio within a round,
lowest and highest in brackets). MNIST comes from
``benchmarks.mnist_data.load_mnist()``; uniform noise stands in when it is
missing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import types

import numpy as np
import torch
from torch import Tensor, nn

from benchmarks.mnist_data import MNISTNotFoundError, load_mnist
from skvae import VAETransformer


def _torch_tanh(self: nn.Module, x: Tensor) -> Tensor:
    return torch.tanh(x)


def with_torch_tanh(estimator: VAETransformer) -> VAETransformer:
    """A deep copy of a fitted ``estimator`` whose tanh layers always run
    ``torch.tanh``; the layers keep their class, so the hand-written training
    pass still runs."""
    twin = copy.deepcopy(estimator)
    for module in twin.module_.modules():
        if isinstance(module, nn.Tanh):
            module.forward = types.MethodType(_torch_tanh, module)
    return twin


def load(rows: int, test_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows in [0, 1], float32: MNIST's, or uniform noise."""
    try:
        data = load_mnist()
    except MNISTNotFoundError:
        rng = np.random.default_rng(0)
        return (
            rng.random((rows, 784), dtype=np.float32),
            rng.random((test_rows, 784), dtype=np.float32),
        )
    return data.X_train[:rows], data.X_test[:test_rows]


def paired(a: list[float], b: list[float]) -> str:
    """Median, lowest and highest of a[i] / b[i]."""
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f})"


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--score-rows", type=int, default=4_000)
    parser.add_argument("--test-rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    X, X_test = load(args.rows, args.test_rows)
    X_score = X_test[: args.score_rows]
    skvae = VAETransformer(
        hidden_layer_sizes=(500,),
        latent_dim=2,
        likelihood="bernoulli",
        batch_size=100,
        random_state=0,
    ).partial_fit(X[:2000])
    forms = {"skvae": skvae, "torch.tanh": with_torch_tanh(skvae)}
    for name, method, rows in [
        ("score_samples", "score_samples", X_score),
        ("transform", "transform", X_test),
    ]:
        ours, theirs = (getattr(forms[f], method)(rows) for f in forms)
        largest = np.abs(ours - theirs).max()
        relative = largest / np.abs(theirs).max()
        print(f"{name}: largest |difference| {largest:.3g} ({relative:.3g} of the max)")
    # Each operation: what it runs on (a fresh copy for an epoch, made before the
    # clock starts), and what it runs.
    operations = {
        "score_samples": (lambda est: est, lambda est: est.score_samples(X_score)),
        "transform": (lambda est: est, lambda est: est.transform(X_test)),
        "epoch": (copy.deepcopy, lambda est: est.partial_fit(X)),
    }
    seconds = {f"{op} {form}": [] for op in operations for form in forms}
    for round_ in range(args.rounds):
        order = list(forms) if round_ % 2 else list(reversed(forms))
        for op, (prepare, run) in operations.items():
            for form in order:
                target = prepare(forms[form])
                start = time.perf_counter()
                run(target)
                seconds[f"{op} {form}"].append(time.perf_counter() - start)
    for name, values in seconds.items():
        print(f"{name}: median {statistics.median(values):.4f} s")
    for op in operations:
        ratio = paired(seconds[f"{op} skvae"], seconds[f"{op} torch.tanh"])
        print(f"{op}: skvae / torch.tanh {ratio}")
    return seconds


if __name__ == "__main__":
    main()
