"""``deftctl experiment``: list the experiments and run one (sweep x trials -> CSV, PNGs, report)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import NoReturn

import typer

from traffic.experiments import report, runner
from traffic.experiments.catalog import EXPERIMENTS

app = typer.Typer(no_args_is_help=True, help="DEFT's and the thesis' experiments on the real data plane.")


def _fail(msg: str) -> NoReturn:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


@app.command("list")
def list_() -> None:
    """Every experiment with its sweep, number of points and what it reproduces."""
    for e in EXPERIMENTS.values():
        full = len(runner.points(e, False, {}))
        smoke = len(runner.points(e, True, {}))
        sweep = ", ".join(f"{k} {v}" for k, v in e.grid.items())
        typer.echo(f"{e.name:<12} {e.title}\n{'':12} sweep: {sweep}; {full} points x {e.trials} trials "
                   f"(smoke: {smoke} x 1)\n{'':12} reproduces: {e.source}\n")


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Experiment name (see `deftctl experiment list`)."),
    smoke: bool = typer.Option(False, "--smoke", help="The short CI sweep (1 trial, 1 s per point)."),
    trials: int = typer.Option(0, help="Trials per point (0 = the experiment's default)."),
    out: Path | None = typer.Option(None, help="Output directory (default results/experiments/NAME-<time>)."),
    set_: list[str] = typer.Option([], "--set", help="Override a point parameter, e.g. --set rate_pps=3000."),
    progress: bool = typer.Option(True, help="Show the progress bar."),
) -> None:
    """Run experiment NAME: CSV (results.csv), one PNG per metric, and report.md in the output directory."""
    exp = EXPERIMENTS.get(name)
    if exp is None:
        _fail(f"no experiment {name!r}; available: {', '.join(EXPERIMENTS)}")
    if trials < 0:
        _fail(f"--trials {trials} must be >= 0")
    if os.geteuid() != 0:
        _fail("experiments build network namespaces: run as root")
    try:
        sets = runner.parse_sets(set_)
        pts = runner.points(exp, smoke, sets)
    except (ValueError, TypeError) as exc:
        _fail(str(exc))
    out_dir = out or Path("results/experiments") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out_dir.exists() and any(out_dir.iterdir()):
        _fail(f"output directory {out_dir} is not empty")
    n_trials = trials or (1 if smoke else exp.trials)
    fixed = {**exp.fixed, **(exp.smoke_fixed if smoke else {}), **sets}
    meta = {"points": len(pts), "trials": n_trials, "smoke": smoke, "host": socket.gethostname(),
            "load": f"{os.getloadavg()[0]:.1f}", "fixed": fixed}
    rows = runner.run(exp, out_dir, smoke=smoke, trials=trials, sets=sets, show_progress=progress)
    pngs, md = report.write_report(exp, out_dir, meta)
    failed = sum(1 for r in rows if r.get("error"))
    typer.echo(f"{len(rows)} measurements ({failed} failed) -> {out_dir}/results.csv, "
               f"{len(pngs)} plots, {md}")
    if failed == len(rows):
        raise typer.Exit(1)
