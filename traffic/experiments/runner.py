"""Run an experiment: every grid point x trials on a fresh chain, one CSV row each, progress bar.

A point that fails (an NF that does not start, a timeout) becomes a row with its ``error`` and the
sweep goes on: a 40-point sweep should not be lost to one bad point. The CSV is rewritten after
every point, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import csv
import itertools
import logging
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lab.netns import Topology
from traffic.experiments.catalog import Experiment
from traffic.experiments.chain import Chain, PointConfig

log = logging.getLogger(__name__)

PARAMS = [f.name for f in fields(PointConfig)]
RESULT_COLUMNS = [
    "sent", "achieved_pps", "delivered", "delivered_pps", "loss", "loss_pct", "reordered", "duplicates",
    "e2e_p50_ms", "e2e_p99_ms", "nf_throughput_pps", "nf_latency_ms", "nf_latency_p99_ms", "nf_dropped",
    "nf_in_buffer_ms", "nf_out_buffer_ms", "nf_commit_ms", "nf_batch_mean", "nf_max_share", "lb_moves",
    "error",
]
COLUMNS = ["experiment", "trial", *PARAMS, *RESULT_COLUMNS]


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["rate_pps=3000", "flows=10"]`` -> typed overrides; errors name the bad item."""
    out: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(PointConfig)}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or key not in types:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(PARAMS)}")
        kind = str(types[key])
        try:
            out[key] = float(val) if "float" in kind else int(val) if "int" in kind else val
        except ValueError as exc:
            raise ValueError(f"--set {item!r}: {val!r} is not a {kind}") from exc
    return out


def points(exp: Experiment, smoke: bool, sets: dict[str, Any]) -> list[PointConfig]:
    """The grid's points (x varies fastest within each series value), with fixed and overrides."""
    grid = {k: v for k, v in (exp.smoke if smoke else exp.grid).items() if k not in sets}
    fixed = {**exp.fixed, **(exp.smoke_fixed if smoke else {}), **sets}
    keys = list(grid)
    out = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        out.append(PointConfig(**{**fixed, **dict(zip(keys, combo, strict=True))}))
    return out


def measure(cfg: PointConfig, tag: str) -> dict[str, Any]:
    """One point on a fresh chain; returns the result columns."""
    with Topology(f"tx{tag}") as topo, tempfile.TemporaryDirectory(prefix="tx-") as tmp:
        chain = Chain(topo, Path(tmp), cfg)
        try:
            chain.start_nfs()
            gen, sink = chain.run_traffic()
            nfm = chain.nf_metrics()
            lb_moves = chain.lb_moves
        finally:
            chain.close()
    sent, unique = gen["sent"], sink["unique"]
    n = max(1, len(nfm))
    return {
        "sent": sent, "achieved_pps": round(gen["achieved_pps"], 1), "delivered": unique,
        "delivered_pps": round(sink["throughput_pps"], 1), "loss": sent - unique,
        "loss_pct": round(100.0 * (sent - unique) / sent, 3) if sent else 0.0,
        "reordered": sink["reordered"], "duplicates": sink["duplicates"],
        "e2e_p50_ms": sink["latency_p50_us"] / 1000, "e2e_p99_ms": sink["latency_p99_us"] / 1000,
        "nf_throughput_pps": round(sum(m["throughput_pps"] for m in nfm), 1),
        "nf_latency_ms": sum(m["latency_ms"] for m in nfm) / n,
        "nf_latency_p99_ms": max(m["latency_p99_ms"] for m in nfm),
        "nf_dropped": sum(m["dropped"] for m in nfm),
        "nf_in_buffer_ms": sum(m["time_in_input_buffer_ms"] for m in nfm) / n,
        "nf_out_buffer_ms": sum(m["time_in_output_buffer_ms"] for m in nfm) / n,
        "nf_commit_ms": sum(m["commit_latency_ms"] for m in nfm) / n,
        "nf_batch_mean": sum(m["batch_size_mean"] for m in nfm) / n,
        # share of the busiest primary in all processed packets (1/nf_count = perfectly even)
        "nf_max_share": round(max(m["processed"] for m in nfm) / max(1, sum(m["processed"] for m in nfm)), 4),
        "lb_moves": lb_moves,
        "error": "",
    }


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def run(exp: Experiment, out_dir: Path, smoke: bool = False, trials: int = 0,
        sets: dict[str, Any] | None = None, show_progress: bool = True) -> list[dict[str, Any]]:
    """Measure every point x trial, writing ``out_dir/results.csv`` as it goes; returns the rows."""
    pts = points(exp, smoke, sets or {})
    n_trials = trials or (1 if smoke else exp.trials)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "results.csv"
    rows: list[dict[str, Any]] = []
    tag = f"{os.getpid() % 1000:03d}"
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[point]}"), disable=not show_progress) as bar:
        task = bar.add_task(exp.name, total=len(pts) * n_trials, point="")
        for cfg in pts:
            for trial in range(1, n_trials + 1):
                label = f"{exp.x}={getattr(cfg, exp.x)}" + (f" {exp.series}={getattr(cfg, exp.series)}"
                                                          if exp.series else "") + f" trial {trial}"
                bar.update(task, point=label)
                row: dict[str, Any] = {"experiment": exp.name, "trial": trial, **asdict(cfg)}
                try:
                    row.update(measure(cfg, tag))
                except Exception as exc:  # one bad point must not lose the sweep
                    log.warning("%s %s failed: %s", exp.name, label, exc)
                    row.update(dict.fromkeys(RESULT_COLUMNS, ""), error=f"{type(exc).__name__}: {exc}"[:500])
                rows.append(row)
                write_csv(rows, csv_path)
                bar.advance(task)
    return rows


