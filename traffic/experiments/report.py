"""Results CSV -> PNG plots and a markdown report.

One PNG per metric: the experiment's ``x`` parameter on the x axis, one line per value of its
``series`` parameter, each point the mean over trials with the standard deviation as error bar
(DEFT's plots averaged a single file into every cell; here every cell is its own measurement and
the spread is shown). Failed points are listed in the report, never plotted as zeros.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from traffic.experiments.catalog import Experiment

LABELS = {
    "delivered_pps": "delivered (pps)", "loss_pct": "loss (%)", "e2e_p50_ms": "end-to-end p50 latency (ms)",
    "e2e_p99_ms": "end-to-end p99 latency (ms)", "nf_dropped": "NF input-buffer drops (packets)",
    "nf_in_buffer_ms": "time in input buffer (ms)", "nf_out_buffer_ms": "time in output buffer (ms)",
    "nf_commit_ms": "batch commit latency (ms)", "nf_max_share": "busiest NF's share of packets",
}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _num(v: str) -> float:
    return float(v)


Cell = tuple[float, float, float]  # x, mean, std


def aggregate(rows: list[dict[str, str]], exp: Experiment, metric: str) -> dict[str, list[Cell]]:
    """series value -> sorted [(x, mean, std)] over trials of the successful rows."""
    cells: dict[tuple[str, float], list[float]] = defaultdict(list)
    for r in rows:
        if r.get("error") or r.get(metric, "") == "":
            continue
        key = (r[exp.series] if exp.series else "", _num(r[exp.x]))
        cells[key].append(_num(r[metric]))
    out: dict[str, list[Cell]] = defaultdict(list)
    for (series, x), vals in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out[series].append((x, statistics.fmean(vals), std))
    return out


def plot(rows: list[dict[str, str]], exp: Experiment, out_dir: Path) -> list[Path]:
    """One PNG per metric. matplotlib is imported here, not at module level: the hosts' venv has
    no matplotlib (plots are made on the controller), and every ``deftctl`` command imports this
    module through the CLI tree."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt  # noqa: PLC0415

    pngs = []
    for metric in exp.metrics:
        data = aggregate(rows, exp, metric)
        if not data:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for series, pts in sorted(data.items(), key=lambda kv: float(kv[0]) if kv[0] else 0.0):
            xs, ys, es = zip(*pts, strict=True)
            label = f"{exp.series}={series}" if exp.series else None
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
        ax.set_xlabel(exp.x)
        ax.set_ylabel(LABELS.get(metric, metric))
        ax.set_title(f"{exp.title}: {LABELS.get(metric, metric)}", fontsize=9)
        ax.grid(True, alpha=0.3)
        if exp.series:
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{exp.name}-{metric}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        pngs.append(path)
    return pngs


def markdown(rows: list[dict[str, str]], exp: Experiment, pngs: list[Path], meta: dict[str, Any]) -> str:
    ok = [r for r in rows if not r.get("error")]
    bad = [r for r in rows if r.get("error")]
    lines = [
        f"# {exp.title} (`{exp.name}`)", "",
        f"Reproduces: {exp.source}.", "",
        f"- sweep: `{exp.x}`" + (f" x `{exp.series}`" if exp.series else "")
        + f"; {meta.get('points', '?')} points x {meta.get('trials', '?')} trials"
        + (" (smoke)" if meta.get("smoke") else ""),
        f"- fixed: {', '.join(f'`{k}={v}`' for k, v in meta.get('fixed', {}).items()) or '-'}",
        f"- host: {meta.get('host', '?')}, load average at start {meta.get('load', '?')}",
        f"- points measured: {len(ok)}, failed: {len(bad)}", "",
        "Chain per point: traffic generator -> nf.stamper -> NF primary (counter) [+ replicas] -> "
        "traffic sink, all fresh namespaces. End-to-end latency and loss from the sink; buffer/commit "
        "times and drops from the NF's metrics.", "",
        "## Means over trials", "",
    ]
    cols = ["delivered_pps", "loss_pct", "e2e_p50_ms", "e2e_p99_ms", "nf_dropped", "nf_commit_ms"]
    head = [exp.x] + ([exp.series] if exp.series else [])
    lines.append("| " + " | ".join(head + cols) + " |")
    lines.append("|" + "---|" * (len(head) + len(cols)))
    groups: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for r in ok:
        groups[tuple(r[h] for h in head)].append(r)
    for key in sorted(groups, key=lambda k: tuple(float(x) for x in k)):
        vals = [statistics.fmean(_num(r[c]) for r in groups[key]) for c in cols]
        lines.append("| " + " | ".join([*key, *(f"{v:.3g}" for v in vals)]) + " |")
    lines += ["", "## Plots", ""]
    lines += [f"![{p.stem}]({p.name})" for p in pngs]
    if bad:
        lines += ["", "## Failed points", ""]
        lines += [f"- `{exp.x}={r[exp.x]}` trial {r['trial']}: {r['error']}" for r in bad]
    lines += ["", "Raw data: `results.csv` (one row per point and trial).", ""]
    return "\n".join(lines)


def write_report(exp: Experiment, out_dir: Path, meta: dict[str, Any]) -> tuple[list[Path], Path]:
    rows = read_rows(out_dir / "results.csv")
    pngs = plot(rows, exp, out_dir)
    md = out_dir / "report.md"
    md.write_text(markdown(rows, exp, pngs, meta), encoding="utf-8")
    return pngs, md
