"""Where one skvae training epoch spends its time: a torch.profiler table.

    python -m benchmarks.profile_epoch [--likelihood bernoulli] [--latent 2]
                                       [--rows 20000] [--top 20]

Fits the MNIST model (784-500-latent, tanh, batch 100) for one warm-up epoch on 2,000
rows, then profiles one ``partial_fit`` epoch on ``--rows`` rows and prints the
operators by self CPU time, with the share of the matmuls (``aten::mm``,
``aten::addmm``) and of the optimizer. Then times one Adam step alone on the same
parameters: skvae's (fused) against ``torch.optim.Adam``'s default, which the plain
loop uses. Synthetic uniform data stand in for MNIST when its directory is missing.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.mnist_data import DEFAULT_DIR, ENV_VAR, read_mnist_dir
from skvae import VAETransformer
from skvae._training import make_optimizer


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
    args = parser.parse_args(argv)
    directory = Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)
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
        random_state=0,
    ).partial_fit(X[:2000])
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

    # One Adam step alone: skvae's, and torch's default (a loop over parameters).
    modules = [copy.deepcopy(vae.module_) for _ in range(2)]
    for module in modules:
        for p in module.parameters():
            p.grad = torch.full_like(p, 1e-3)
    skvae_adam = make_optimizer(modules[0], "adam", 1e-3, vae.alpha, fused=True)
    default_adam = torch.optim.Adam(modules[1].parameters(), lr=1e-3)
    fused, default = step_ms(skvae_adam), step_ms(default_adam)
    print(
        f"one Adam step alone: skvae (fused) {fused:.3f} ms, torch.optim.Adam "
        f"default {default:.3f} ms ({fused / default:.2f}x)"
    )


if __name__ == "__main__":
    main()
