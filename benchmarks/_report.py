"""Every benchmark report's parts: its stamp (command, date, versions, machine), its
Markdown tables, and the pair of files it is written to.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sklearn
import torch

import skvae

_REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(package: str) -> str | None:
    """The installed version of ``package``, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The checkout's commit (``+changes`` where skvae/ differs from it), or None."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(_REPO_ROOT), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", "skvae")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


def public_argv(argv: list[str]) -> list[str]:
    """``argv`` naming no absolute path of the machine: reports get committed.

    A path inside the repository becomes relative to it, any other ``<path>``.
    """

    def public(value: str) -> str:
        if not os.path.isabs(value):
            return value
        path = Path(value).resolve()
        if path.is_relative_to(_REPO_ROOT):
            return str(path.relative_to(_REPO_ROOT))
        return "<path>"

    out = []
    for arg in argv:
        option, equals, value = arg.partition("=")
        out.append(f"{option}={public(value)}" if equals else public(arg))
    return out


def stamp(module: str, argv: list[str]) -> dict:
    """The command that ran ``module`` with ``argv``, the date, versions and machine.

    The command names no absolute path of the machine (:func:`public_argv`).
    """
    return {
        "command": shlex.join(["python", "-m", module, *public_argv(argv)]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "skvae": skvae.__version__,
        "commit": git_commit(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "skorch": version("skorch"),
        "matplotlib": version("matplotlib"),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": os.getloadavg(),
    }


def versions_line(s: dict, *extra: str) -> str:
    """The command, date, skvae's commit and the library versions of ``s``.

    ``extra`` names more packages to list ("not installed" where missing).
    """
    libraries = [f"torch {s['torch']}", f"scikit-learn {s['scikit-learn']}"]
    libraries += [f"numpy {s['numpy']}"]
    libraries += [f"{name} {s[name] or 'not installed'}" for name in extra]
    return (
        f"`{s['command']}` · {s['date']} · skvae {s['skvae']} "
        f"(commit {s.get('commit')}), {', '.join(libraries)}, Python {s['python']}"
    )


def stamp_line(s: dict) -> str:
    """One Markdown line naming the command, versions and machine of ``s``."""
    return (
        f"{versions_line(s)} · {s['cpu']}, {s['cpu_count']} CPUs, "
        f"{s['torch_threads']} torch threads · load average at start "
        + ", ".join(f"{x:.2f}" for x in s["load_average_start"])
    )


def write_report(out: Path, name: str, payload: dict, markdown: list[str]) -> None:
    """Write ``name``.json (``payload``) and ``name``.md (``markdown`` lines)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(markdown) + "\n")


# ---------------------------------------------------------------------- tables

#: A table column: its header, and how one row (a dict) renders in it.
Column = tuple[str, Callable[[dict], str]]


def fmt(value: float | None, spec: str = ".3f", suffix: str = "") -> str:
    """``value`` formatted with ``spec``, or "-" where it was not measured (None)."""
    return "-" if value is None else f"{value:{spec}}{suffix}"


def col(header: str, key: str, spec: str = ".3f", suffix: str = "") -> Column:
    """A column of ``row[key]`` formatted with ``spec`` ("-" where absent or None)."""
    return header, lambda r: fmt(r.get(key), spec, suffix)


def text_col(header: str, key: str) -> Column:
    """A column of ``row[key]`` as it is."""
    return header, lambda r: str(r[key])


def pm_col(header: str, key: str, error_key: str, spec: str = ".2f") -> Column:
    """A column of ``row[key] ± row[error_key]`` ("-" where ``key`` is absent)."""

    def cell(r: dict) -> str:
        if r.get(key) is None:
            return "-"
        return f"{r[key]:{spec}} ± {r[error_key]:{spec}}"

    return header, cell


def means_by(
    rows: list[dict], by: tuple[str, ...], fields: tuple[str, ...], low: tuple = ()
) -> list[dict]:
    """One entry per group of ``rows`` with equal ``by`` values, in first-seen order.

    Each entry holds the ``by`` values, the group's size ``n``, the mean of each of
    ``fields`` that its rows have, and for the fields in ``low`` their minimum too
    (as ``<field>_min``).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    entries = []
    for key, sel in groups.items():
        entry = {**dict(zip(by, key, strict=True)), "n": len(sel)}
        for name in fields:
            values = [r[name] for r in sel if r.get(name) is not None]
            if values:
                entry[name] = float(np.mean(values))
                if name in low:
                    entry[f"{name}_min"] = float(np.min(values))
        entries.append(entry)
    return entries


def resolve_quick(args, name: str, **defaults: tuple) -> None:
    """Fill in the options of ``args`` left at None: each of ``defaults`` from its
    pair (a full run's value, ``--quick``'s value), and ``out``: a new temporary
    folder for a quick run, whose results are not the committed ones, else
    ``benchmarks/results``."""
    for option, (full, quick) in defaults.items():
        if getattr(args, option) is None:
            setattr(args, option, quick if args.quick else full)
    if args.out is None:
        args.out = (
            Path(tempfile.mkdtemp(prefix=f"skvae-{name}-"))
            if args.quick
            else _REPO_ROOT / "benchmarks" / "results"
        )


def paired_ratios(
    rows: list[dict],
    pair: tuple[str, ...],
    group: tuple[str, ...],
    value: str,
    peer: Callable[[dict], str],
) -> dict[tuple, list[float]]:
    """Each row's ``value`` over its peer's, per ``group``: the peer is the row of
    method ``peer(row)`` with the same ``pair`` fields (the same draw or mask of
    the same run, measured one after the other, so that a slow spell of the
    machine falls on both). Rows without a peer in ``rows`` are left out."""
    seconds = {(r["method"], *(r[k] for k in pair)): r[value] for r in rows}
    ratios: dict[tuple, list[float]] = {}
    for r in rows:
        other = seconds.get((peer(r), *(r[k] for k in pair)))
        if r["method"] != peer(r) and other:
            key = tuple(r[k] for k in group)
            ratios.setdefault(key, []).append(r[value] / other)
    return ratios


def ratio_cell(median: float | None, low_high: list[float] | None) -> str:
    """A paired ratio's median in bold, with its lowest and highest ("-" if none)."""
    if median is None:
        return "-"
    low, high = low_high
    return f"**{median:.2f}x** ({low:.2f}-{high:.2f})"


def table(columns: list[Column], rows: list[dict], caption: str = "") -> list[str]:
    """A Markdown table (under its one-line caption, if any), then a blank line."""
    lines = [caption, ""] if caption else []
    lines.append("| " + " | ".join(header for header, _ in columns) + " |")
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in rows]
    return [*lines, ""]


def grouped_bars(
    per_set: list[dict],
    panel_key: str,
    panels: tuple[str, ...],
    value_key: str,
    colours: str = "tab10",
    axes=None,
):
    """One panel per value of ``panel_key``: a group of bars per data set, one bar
    per method, of ``value_key`` (NaN where absent). Returns (fig, axes); the
    caller labels, saves and closes it. matplotlib is imported here, headless.
    Drawn into ``axes`` (one per panel) where given, else into a new figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(e["data"] for e in per_set))
    methods = list(dict.fromkeys(e["method"] for e in per_set))
    values = {(e[panel_key], e["data"], e["method"]): e[value_key] for e in per_set}
    if axes is None:
        fig, axes = plt.subplots(
            1, len(panels), figsize=(13, 4.2), sharey=True, squeeze=False
        )
        axes = axes[0]
    fig = axes[0].figure
    width = 0.8 / len(methods)
    palette = plt.get_cmap(colours).colors
    for ax, panel in zip(axes, panels, strict=True):
        for i, method in enumerate(methods):
            heights = [values.get((panel, n, method), np.nan) for n in names]
            ax.bar(
                np.arange(len(names)) + i * width,
                heights,
                width,
                label=method,
                color=palette[i % len(palette)],
            )
        ax.set_xticks(np.arange(len(names)) + width * (len(methods) - 1) / 2)
        ax.set_xticklabels(names, rotation=20, fontsize=8)
        ax.set_title(panel)
    return fig, axes
