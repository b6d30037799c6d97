"""Where one skvae training epoch spends its time: a torch.profiler table.

    python -m benchmarks.profile_epoch [--likelihood bernoulli] [--latent 2]
                                       [--rows 20000] [--top 20]

Fits the MNIST model (784-500-latent, tanh, batch 100) for one warm-up epoch on 2,000
rows, then profiles one ``partial_fit`` epoch on ``--rows`` rows and prints the
operators by self CPU time, with the share of the matmuls (``aten::mm``,
``aten::addmm``) and of the optimizer. Synthetic uniform data stand in for MNIST
when its directory is missing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from torch.profiler import ProfilerActivity, profile

from benchmarks.mnist_data import DEFAULT_DIR, ENV_VAR, read_mnist_dir
from skvae import VAETransformer


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


if __name__ == "__main__":
    main()
