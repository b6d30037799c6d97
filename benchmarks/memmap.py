"""Data larger than memory: fitting a memory-mapped file, and the same data in RAM.

    python -m benchmarks.memmap [--rows N] [--epochs E] [--rounds R] [--out DIR]

Writes ``--rows`` (default 720,000) rows of 784 float32 features to a temporary
file (2.26 GB by default): MNIST's 60,000 training images, tiled, each tile shifted
one pixel further to the right (uniform [0, 1] data where the MNIST directory is
missing). Then, each case in a fresh process, with the paper's MNIST model
(784-500-2, tanh, Bernoulli decoder, batch 100, ``likelihood="auto"``):

- ``memmap``: ``partial_fit`` ``--epochs`` times over ``np.memmap(mode="r")``;
- ``memmap, early stopping``: ``fit(max_iter=E, early_stopping=True)`` over the
  same map (a 10% validation split, held as row numbers and scored every epoch);
- ``in memory``: the file read whole into memory (``np.fromfile``), then the same
  ``partial_fit`` calls.

Each process samples its ``/proc/self/status`` every 10 ms. RssAnon is the memory
the process itself holds; the file's pages, once read, sit in the page cache and
count as RssFile, which the kernel may drop under pressure and re-read. "Above the
baseline" subtracts RssAnon after imports and a warm-up fit on 1,000 rows (torch's
allocator arenas, the model's weights and Adam's state). ``--rounds`` repeats the
three processes, alternating their order. Results go to ``memmap.md`` and
``memmap.json`` in ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks._report import col, stamp, stamp_line, table, text_col, write_report

REPO_ROOT = Path(__file__).resolve().parents[1]
N_FEATURES = 784
PARAMS = dict(latent_dim=2, hidden_layer_sizes=(500,), batch_size=100, random_state=0)
CASES = ("memmap", "memmap, early stopping", "in memory")


def write_data(path: Path, n_rows: int) -> None:
    """``n_rows`` MNIST-like rows into ``path`` (float32), one tile at a time."""
    from benchmarks.mnist_data import load_mnist, mnist_directory

    if mnist_directory().is_dir():
        images = load_mnist().X_train
    else:
        images = np.random.default_rng(0).random((60_000, N_FEATURES), np.float32)
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, N_FEATURES))
    grid = images.reshape(-1, 28, 28)
    for shift, start in enumerate(range(0, n_rows, len(images))):
        stop = min(start + len(images), n_rows)
        tile = np.roll(grid, shift, axis=2).reshape(-1, N_FEATURES)
        out[start:stop] = tile[: stop - start]
    out.flush()
    del out


class Memory:
    """Peak RssAnon and RssFile of this process, sampled every 10 ms."""

    def __init__(self):
        self.peak = {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @staticmethod
    def now() -> dict[str, int]:
        """RssAnon and RssFile now, in bytes."""
        values = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) * 1024
        return values

    def _watch(self):
        while not self._stop.is_set():
            for key, value in self.now().items():
                self.peak[key] = max(self.peak[key], value)
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_case(case: str, path: Path, n_rows: int, epochs: int) -> dict:
    """One case, in this process: seconds per epoch and memory (bytes)."""
    from sklearn.exceptions import ConvergenceWarning

    from skvae import VAETransformer

    warnings.simplefilter("ignore", ConvergenceWarning)
    mapped = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, N_FEATURES))
    VAETransformer(**PARAMS).partial_fit(np.array(mapped[:1000]))  # warm-up
    baseline = Memory.now()["RssAnon"]
    result = {"case": case, "baseline": baseline}
    with Memory() as memory:
        X, result["load_seconds"] = mapped, None
        if case == "in memory":
            start = time.perf_counter()
            X = np.fromfile(path, dtype=np.float32).reshape(n_rows, N_FEATURES)
            result["load_seconds"] = time.perf_counter() - start
        est = VAETransformer(**PARAMS)
        if case == "memmap, early stopping":
            est.set_params(max_iter=epochs, early_stopping=True, verbose=0)
            start = time.perf_counter()
            est.fit(X)
            result["epoch_seconds"] = [(time.perf_counter() - start) / epochs]
            result["n_iter"] = est.n_iter_
        else:
            result["epoch_seconds"] = []
            for _ in range(epochs):
                start = time.perf_counter()
                est.partial_fit(X)
                result["epoch_seconds"].append(time.perf_counter() - start)
        result["loss"] = est.loss_curve_[-1]
    result["peak_anon"] = memory.peak["RssAnon"]
    result["peak_file"] = memory.peak["RssFile"]
    return result


def measure(n_rows: int, epochs: int, rounds: int) -> list[dict]:
    """Every case in a fresh process, ``rounds`` times, alternating their order."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "X.f32"
        write_data(path, n_rows)
        for r in range(rounds):
            order = CASES if r % 2 == 0 else CASES[::-1]
            for case in order:
                command = [
                    sys.executable,
                    "-m",
                    "benchmarks.memmap",
                    "--child",
                    case,
                    str(path),
                    "--rows",
                    str(n_rows),
                    "--epochs",
                    str(epochs),
                ]
                done = subprocess.run(
                    command, cwd=REPO_ROOT, capture_output=True, text=True, check=True
                )
                result = json.loads(done.stdout.strip().splitlines()[-1])
                result["round"] = r + 1
                print(json.dumps(result), flush=True)
                rows.append(result)
    return rows


def summary(rows: list[dict], n_rows: int) -> list[dict]:
    """Per case: medians over rounds, in MB and seconds, and the ratio of epochs."""
    out = []
    for case in CASES:
        mine = [r for r in rows if r["case"] == case]
        # The first partial_fit also resolves likelihood="auto" (a scan of X).
        later = [s for r in mine for s in r["epoch_seconds"][1:]] or [
            s for r in mine for s in r["epoch_seconds"]
        ]
        out.append(
            {
                "case": case,
                "first": statistics.median(r["epoch_seconds"][0] for r in mine),
                "later": statistics.median(later),
                "anon": statistics.median(r["peak_anon"] for r in mine) / 1e6,
                "above": statistics.median(r["peak_anon"] - r["baseline"] for r in mine)
                / 1e6,
                "file": statistics.median(r["peak_file"] for r in mine) / 1e6,
            }
        )
    memory = out[CASES.index("in memory")]
    for entry in out:
        entry["vs_memory"] = entry["later"] / memory["later"]
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=720_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results"
    )
    parser.add_argument(
        "--child", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        case, path = args.child
        print(json.dumps(run_case(case, Path(path), args.rows, args.epochs)))
        return
    s = stamp("benchmarks.memmap", argv)
    started = time.perf_counter()
    rows = measure(args.rows, args.epochs, args.rounds)
    s["seconds"] = time.perf_counter() - started
    gb = args.rows * N_FEATURES * 4 / 1e9
    lines = ["# skvae: fitting a memory-mapped file", "", stamp_line(s), ""]
    lines += table(
        [
            text_col("case", "case"),
            col("first epoch s", "first", ".1f"),
            col("later epochs s", "later", ".1f"),
            col("/ in memory", "vs_memory", ".2f", "x"),
            col("peak RssAnon MB", "anon", ".0f"),
            col("above baseline MB", "above", ".0f"),
            col("peak RssFile MB", "file", ".0f"),
        ],
        summary(rows, args.rows),
        f"{args.rows:,} rows x {N_FEATURES} float32 features ({gb:.2f} GB), "
        f"784-500-2, batch 100; medians over {args.rounds} rounds of fresh "
        "processes. Epoch seconds are per partial_fit call (the first also "
        "resolves likelihood='auto' by a scan of X); with early stopping, a fit's "
        "seconds over its epochs, validation included. The ratio divides later "
        "epochs by those in memory. Baseline: RssAnon after imports and a warm-up "
        "fit on 1,000 rows.",
    )
    write_report(args.out, "memmap", {"stamp": s, "rows": rows}, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
