"""Intra-op threads: what one and two cost, on a quiet machine and beside a busy one.

    python -m benchmarks.threads [--repeats N] [--out DIR]
    python -m benchmarks.threads --parallel [--repeats N] [--out DIR]

Fits two models with ``n_threads`` = 1, 2 and None (skvae's rule), each with the
machine quiet and beside one busy process (a Python loop spinning on one core for
as long as the measurements run):

- ``small``: scikit-learn's digits, standardised (1797 x 64), the default hidden
  layer (100), latent 2, 20 epochs: a 12 MFLOP training step;
- ``mnist``: 10,000 rows of 784 features (MNIST's first training images, or uniform
  [0, 1] data when the MNIST directory is missing), hidden 500, latent 20, 2 epochs:
  a 490 MFLOP step.

and ``GridSearchCV(n_jobs=2)`` over two hidden sizes of the small model (joblib's
workers each get one thread). Seconds are the fastest of ``--repeats`` fits. Results
go to ``threads.md`` and ``threads.json`` in ``--out`` (default
``benchmarks/results``).

``--parallel`` times the MNIST-sized model when two fits share the 2 cores:
``GridSearchCV(n_jobs=2)`` over two hidden sizes (cv=2, so 4 fits and a refit) with
the estimator's ``n_threads`` at None (skvae's rule: torch's setting, which joblib's
workers already hold at one thread), 1 and 2 (two threads in each worker: 4 on 2
cores); and two fits in two separate processes at once, with ``n_threads`` None
(torch's 2 threads each) and 1, against the same two fits one after the other. Into
``threads_parallel.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from benchmarks._report import col, stamp, stamp_line, table, text_col, write_report
from benchmarks.mnist_data import load_mnist, mnist_directory
from skvae import VAETransformer

REPO_ROOT = Path(__file__).resolve().parents[1]


def models() -> dict[str, tuple[np.ndarray, dict]]:
    """The two models timed: their data and VAETransformer parameters."""
    X_small = StandardScaler().fit_transform(load_digits().data)
    if mnist_directory().is_dir():
        X_mnist = load_mnist().X_train[:10_000]
    else:
        X_mnist = np.random.default_rng(0).random((10_000, 784), dtype=np.float32)
    return {
        "small": (X_small, {"latent_dim": 2, "max_iter": 20}),
        "mnist": (
            X_mnist,
            {"latent_dim": 20, "hidden_layer_sizes": (500,), "max_iter": 2},
        ),
    }


def fit_seconds(X: np.ndarray, params: dict, n_threads: int | None) -> tuple:
    """Seconds of one fit (every epoch run), and the thread limit it used."""
    est = VAETransformer(
        **params, n_iter_no_change=params["max_iter"], n_threads=n_threads
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(random_state=0).fit(X)
    return time.perf_counter() - start, est.n_threads_


def search_seconds(X: np.ndarray) -> float:
    """Seconds of GridSearchCV(n_jobs=2) over two hidden sizes of the small model."""
    search = GridSearchCV(
        VAETransformer(latent_dim=2, max_iter=20, n_iter_no_change=20, random_state=0),
        {"hidden_layer_sizes": [(50,), (100,)]},
        cv=3,
        n_jobs=2,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X)
    return time.perf_counter() - start


def mnist_search_seconds(X: np.ndarray, params: dict, n_threads) -> float:
    """Seconds of GridSearchCV(n_jobs=2) over two hidden sizes of the MNIST model."""
    est = VAETransformer(
        **params,
        n_iter_no_change=params["max_iter"],
        n_threads=n_threads,
        random_state=0,
    )
    search = GridSearchCV(est, {"hidden_layer_sizes": [(250,), (500,)]}, cv=2, n_jobs=2)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X)
    return time.perf_counter() - start


#: One MNIST-sized fit in a fresh process: it loads, says so, waits for a line on
#: stdin (so that two processes start fitting together), fits, prints its seconds.
_FIT_IN_A_PROCESS = """
import sys, time, warnings
from benchmarks.threads import models
from skvae import VAETransformer
X, params = models()["mnist"]
n_threads = None if sys.argv[1] == "None" else int(sys.argv[1])
est = VAETransformer(**params, n_iter_no_change=params["max_iter"],
                     n_threads=n_threads, random_state=0)
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    est.fit(X)
print(time.perf_counter() - start, flush=True)
"""


def process_fits(n_threads, together: bool) -> tuple[float, list[float]]:
    """Two fits in two processes, at once or one after the other: the seconds
    from the first fit's start to the last one's end (each process's imports and
    data loading left out), and each fit's own seconds."""
    command = [sys.executable, "-c", _FIT_IN_A_PROCESS, str(n_threads)]

    def ready():
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        assert process.stdout.readline().strip() == "ready"
        return process

    def go(processes):
        start = time.perf_counter()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        fits = [float(p.communicate()[0].split()[-1]) for p in processes]
        return time.perf_counter() - start, fits

    if together:
        return go([ready(), ready()])
    spans, fits = zip(*(go([ready()]) for _ in range(2)), strict=True)
    return sum(spans), [f for pair in fits for f in pair]


def measure_parallel(repeats: int) -> list[dict]:
    X, params = models()["mnist"]
    rows = []
    for n_threads in (None, 1, 2):
        seconds = [mnist_search_seconds(X, params, n_threads) for _ in range(repeats)]
        rows.append(
            {
                "case": "GridSearchCV(n_jobs=2), 5 fits",
                "n_threads": str(n_threads),
                "seconds": min(seconds),
                "runs_s": seconds,
            }
        )
        print(rows[-1], flush=True)
    for n_threads in (None, 1):
        for together in (False, True):
            runs = [process_fits(n_threads, together) for _ in range(repeats)]
            best = min(runs)
            rows.append(
                {
                    "case": "2 fits in 2 processes, "
                    + ("at once" if together else "one after the other"),
                    "n_threads": str(n_threads),
                    "seconds": best[0],
                    "fit_seconds": best[1],
                    "runs_s": [r[0] for r in runs],
                }
            )
            print(rows[-1], flush=True)
    return rows


def busy_neighbour() -> subprocess.Popen:
    """A process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(repeats: int) -> list[dict]:
    rows = []
    cases = models()
    for neighbour in ("quiet", "busy"):
        process = busy_neighbour() if neighbour == "busy" else None
        try:
            time.sleep(0.5)
            for name, (X, params) in cases.items():
                for n_threads in (1, 2, None):
                    runs = [fit_seconds(X, params, n_threads) for _ in range(repeats)]
                    rows.append(
                        {
                            "machine": neighbour,
                            "model": name,
                            "n_threads": "None (rule)"
                            if n_threads is None
                            else n_threads,
                            "used": "torch's" if runs[0][1] is None else runs[0][1],
                            "seconds": min(s for s, _ in runs),
                            "runs_s": [s for s, _ in runs],
                        }
                    )
                    print(rows[-1], flush=True)
            seconds = [search_seconds(cases["small"][0]) for _ in range(repeats)]
            rows.append(
                {
                    "machine": neighbour,
                    "model": "small, GridSearchCV(n_jobs=2), 6 fits",
                    "n_threads": "None (rule)",
                    "used": "1 per worker",
                    "seconds": min(seconds),
                    "runs_s": seconds,
                }
            )
            print(rows[-1], flush=True)
        finally:
            if process is not None:
                process.kill()
                process.wait()
    quiet = {
        (r["model"], r["n_threads"]): r["seconds"]
        for r in rows
        if r["machine"] == "quiet"
    }
    for r in rows:
        reference = quiet.get((r["model"], 2), quiet.get((r["model"], "None (rule)")))
        r["vs_quiet"] = r["seconds"] / reference
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results"
    )
    parser.add_argument(
        "--parallel", action="store_true", help="time two fits sharing the cores"
    )
    args = parser.parse_args(argv)
    s = stamp("benchmarks.threads", argv)
    if args.parallel:
        rows = measure_parallel(args.repeats)
        lines = ["# skvae: two MNIST-sized fits sharing 2 cores", "", stamp_line(s), ""]
        lines += table(
            [
                text_col("case", "case"),
                text_col("n_threads", "n_threads"),
                col("seconds (fastest)", "seconds", ".2f"),
            ],
            rows,
            f"Fastest of {args.repeats}; 10,000 rows of 784 features, hidden 500 "
            "(250 and 500 in the search), latent 20, 2 epochs. For processes, the "
            "seconds span the two fits (at once: from their common start to the "
            "last end; one after the other: the sum), imports and data loading "
            "left out.",
        )
        write_report(args.out, "threads_parallel", {"stamp": s, "rows": rows}, lines)
        print("\n".join(lines))
        return
    rows = measure(args.repeats)
    lines = [
        "# skvae: intra-op threads, quiet and beside a busy process",
        "",
        stamp_line(s),
        "",
    ]
    lines += table(
        [
            text_col("machine", "machine"),
            text_col("model", "model"),
            text_col("n_threads", "n_threads"),
            text_col("threads used", "used"),
            col("seconds (fastest)", "seconds", ".2f"),
            col("/ quiet, 2 threads", "vs_quiet", ".2f", "x"),
        ],
        rows,
        f"Fastest of {args.repeats} fits after a warm-up; the busy machine has one "
        "more process spinning on one of the 2 cores. Torch's own setting here: "
        f"{torch.get_num_threads()} threads. The last column divides by the same "
        "model's time with 2 threads on the quiet machine (for the grid search, by "
        "its own time on the quiet machine).",
    )
    write_report(args.out, "threads", {"stamp": s, "rows": rows}, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
