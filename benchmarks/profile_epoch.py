"""Where one skvae training epoch spends its time: a torch.profiler table.

    python -m benchmarks.profile_epoch [--likelihood bernoulli] [--latent 2]
                                       [--rows 20000] [--top 20]
                                       [--gradient {closed_form,autograd}]

Fits the MNIST model (784-500-latent, tanh, batch 100) with the gradient path
``--gradient`` for one warm-up epoch on 2,000 rows, then profiles one ``partial_fit``
epoch on ``--rows`` rows and prints the operators by self CPU time, with the share of
the matmuls (``aten::mm``, ``aten::addmm``) and of the optimizer. Then times one Adam
step alone on the same parameters: the fitted estimator's own ``optimizer_`` against
``torch.optim.Adam``'s default, which the plain loop uses. The MNIST directory is
``benchmarks.mnist_data.mnist_directory()``'s; synthetic uniform data stand in for
MNIST when it is missing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.mnist_data import mnist_directory, read_mnist_dir
from skvae import VAETransformer


def step_ms(optimizer: torch.optim.Optimizer, repeats: int = 200) -> float:
    """Median milliseconds of one ``optimizer.step()``, in blocks of 20 steps."""
    for _ in range(20):
        optimizer.step()
    blocks = []
    for _ in range(repeats // 20):
        start = time.perf_counter()
        for _ in range(20):
            optimizer.step()
        blocks.append((time.perf_counter() - start) / 20 * 1e3)
    return statistics.median(blocks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--likelihood", default="bernoulli")
    parser.add_argument("--latent", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument(
        "--gradient",
        choices=("closed_form", "autograd"),
        default="closed_form",
        help="VAETransformer's gradient path to profile (default closed_form)",
    )
    args = parser.parse_args(argv)
    directory = mnist_directory()
    if directory.is_dir():
        images, _ = read_mnist_dir(directory)["train"]
        X = images[: args.rows].reshape(-1, 784).astype(np.float32) / 255
    else:
        X = np.random.default_rng(0).random((args.rows, 784), dtype=np.float32)
    vae = VAETransformer(
        hidden_layer_sizes=(500,),
        latent_dim=args.latent,
        likelihood=args.likelihood,
        batch_size=100,
        gradient=args.gradient,
        random_state=0,
    ).partial_fit(X[:2000])
    print(f"gradient_: {vae.gradient_}")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        vae.partial_fit(X)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)

    def share(*names: str) -> float:
        return sum(e.self_cpu_time_total for e in events if e.key in names) / total

    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top))
    print(f"matmuls (aten::mm, aten::addmm): {share('aten::mm', 'aten::addmm'):.1%}")
    adam = share("aten::_fused_adam_", "Optimizer.step#Adam.step")
    print(f"Adam (fused kernel and the Python step around it): {adam:.1%}")

    # One Adam step alone: the estimator's own optimizer_ (on a deep copy, whose
    # optimizer_ steps the copy's module_), and torch's default (a loop over
    # parameters) on another copy of the weights.
    twin = copy.deepcopy(vae)
    default_module = copy.deepcopy(vae.module_)
    for module in (twin.module_, default_module):
        for p in module.parameters():
            p.grad = torch.full_like(p, 1e-3)
    default_adam = torch.optim.Adam(default_module.parameters(), lr=1e-3)
    own, default = step_ms(twin.optimizer_), step_ms(default_adam)
    fused = any(group.get("fused") for group in twin.optimizer_.param_groups)
    print(
        f"one Adam step alone: skvae's optimizer_ ({'fused' if fused else 'not fused'}"
        f") {own:.3f} ms, torch.optim.Adam default {default:.3f} ms "
        f"({own / default:.2f}x)"
    )


if __name__ == "__main__":
    main()
