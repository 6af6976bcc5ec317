"""``deftctl placement ...``: train, evaluate, benchmark, calibrate and serve the placement policy.

Torch, matplotlib and the InfluxDB/SSH clients are imported inside the commands so that
``deftctl --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from deftctl.config import ConfigError

if TYPE_CHECKING:
    from placement.policies.lookahead import LookaheadConfig

app = typer.Typer(
    no_args_is_help=True, help="RL placement: simulator, policies, training, evaluation, serve."
)
log = logging.getLogger(__name__)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def _stdout_fd_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr for the block (output of C libraries included)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _parse_seeds(spec: str) -> list[int]:
    """``"0-9"`` or ``"1,5,7"`` or ``"10"`` (= 0..9)."""
    try:
        if "-" in spec:
            a, b = spec.split("-", 1)
            return list(range(int(a), int(b) + 1))
        if "," in spec:
            return [int(x) for x in spec.split(",") if x]
        return list(range(int(spec)))
    except ValueError:
        _fail(f"--seeds: expected N, A-B or a,b,c; got {spec!r}")
    return []


#: ``--lookahead``, shared by every command that runs the RL policy (evaluate, bench)
_LOOKAHEAD_OPTION = typer.Option(
    "on",
    help="RL decision-time search: on (default), off, or k=8,m=2,horizon_s=10,margin=0.5,depth=2,... "
    "(placement/policies/lookahead.py).",
)


def _parse_lookahead(spec: str) -> LookaheadConfig | None:
    from placement.policies.lookahead import parse_lookahead  # noqa: PLC0415

    try:
        return parse_lookahead(spec)
    except (ValueError, TypeError) as exc:
        _fail(f"--lookahead: {exc}")
        raise  # _fail exits; keeps mypy's flow analysis honest


@app.command()
def scenarios() -> None:
    """List the scenario files shipped with the package."""
    from placement.scenario import builtin_scenarios, load_scenario  # noqa: PLC0415

    for p in builtin_scenarios():
        sc = load_scenario(p)
        typer.echo(f"{p.stem:16s} {sc.n_hosts:3d} hosts {sc.n_vnfs:4d} VNFs  {sc.description}")


@app.command()
def evaluate(
    scenarios: list[Path] = typer.Option(
        ..., "--scenarios", "-s", help="Scenario files (or built-in names)."
    ),
    policies: str = typer.Option(
        "static,random,first-fit,best-fit,least-loaded,thesis-80,ilp,rl", help="Comma-separated policy names."
    ),
    seeds: str = typer.Option("10", help="N (= 0..N-1), A-B or a,b,c; held out from training."),
    model: Path | None = typer.Option(None, help="RL checkpoint (default: placement/models/default.pt)."),
    out: Path = typer.Option(
        Path("results/placement"), help="Directory for report.md, PNGs and results.json."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON on stdout instead of a table."),
    ilp_max_binaries: int = typer.Option(200, help="Run the ILP only when hosts x VNFs <= this."),
    lookahead: str = _LOOKAHEAD_OPTION,
) -> None:
    """Every policy x scenario x seed -> composite cost (each term shown), table, plots, markdown."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from placement.evaluate import aggregate, markdown_report, plot, summary  # noqa: PLC0415
    from placement.evaluate import evaluate as run_eval  # noqa: PLC0415
    from placement.policies import ALL_POLICIES  # noqa: PLC0415
    from placement.scenario import load_scenario  # noqa: PLC0415

    pols = [p.strip() for p in policies.split(",") if p.strip()]
    for p in pols:
        if p not in ALL_POLICIES:
            _fail(f"--policies: unknown policy {p!r}; choose from {', '.join(ALL_POLICIES)}")
    try:
        scs = [load_scenario(s) for s in scenarios]
    except ConfigError as exc:
        _fail(str(exc))
    try:
        # the MILP solver (HiGHS, C code) may print to file descriptor 1 itself: keep --json clean
        with _stdout_fd_to_stderr() if as_json else contextlib.nullcontext():
            results = run_eval(
                scs,
                pols,
                _parse_seeds(seeds),
                model=model,
                ilp_max_binaries=ilp_max_binaries,
                lookahead=_parse_lookahead(lookahead),
            )
    except FileNotFoundError as exc:
        _fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    pngs = plot(results, out)
    (out / "report.md").write_text(markdown_report(results, pngs), encoding="utf-8")
    payload = {"results": [asdict(r) for r in results], "summary": summary(results)}
    (out / "results.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(payload, indent=1))
        return
    table = Table(title="composite cost (mean over seeds; lower is better)")
    for col in (
        "scenario",
        "policy",
        "cost",
        "SLA s",
        "drops kpkt",
        "overload s",
        "migr MB",
        "#migr",
        "ms/decide",
    ):
        table.add_column(col, justify="right" if col not in ("scenario", "policy") else "left")
    for (sc, p), d in aggregate(results).items():
        table.add_row(
            sc,
            p,
            f"{d['cost']:.1f}±{d['cost_std']:.0f}",
            f"{d['sla_s']:.1f}",
            f"{d['drops_kpkt']:.1f}",
            f"{d['overload_s']:.1f}",
            f"{d['migration_mb']:.1f}",
            f"{d['migrations']:.1f}",
            f"{d['decision_ms']:.3f}",
        )
    con = Console(width=160)
    con.print(table)
    for sc, r in summary(results).items():
        con.print(sc, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    con.print(f"report: {out / 'report.md'}")


@app.command()
def train(
    iterations: int = typer.Option(0, help="PPO iterations after imitation (one episode per iteration)."),
    bc_iterations: int = typer.Option(130, help="DAgger imitation iterations (0 = off)."),
    bc_teacher: str = typer.Option(
        "auto",
        help="Teacher: a policy name, least-loaded@T/M, excess-greedy@T/M, or auto (best of the pool).",
    ),
    envs: int = typer.Option(16, help="Parallel simulated clusters per iteration."),
    seed: int = typer.Option(1, help="Training seed (torch + scenario seeds)."),
    scenarios: str = typer.Option("", help="Comma-separated training scenarios (default: all 13 shipped)."),
    out: Path = typer.Option(Path("runs/placement/model.pt"), help="Checkpoint path (best: <stem>-best.pt)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    trend_features: bool = typer.Option(True, help="Give the network the rate-trend inputs (as shipped)."),
    trend_teachers: bool = typer.Option(True, help="Trend teachers in the auto pool (as shipped)."),
    room_features: bool = typer.Option(False, help="Give the network the make-room inputs."),
    room_teachers: bool = typer.Option(False, help="make-room-least-loaded teachers in the auto pool."),
    extra_teachers: str = typer.Option("", help="Comma-separated teachers added to the auto pool, e.g. ilp."),
    room_label_weight: float = typer.Option(
        1.0, help="Sampling weight of labels where a make-room teacher is stuck (1 = uniform, as shipped)."
    ),
    init_from: str = typer.Option("", help="Start from this checkpoint's weights (fine-tuning)."),
    move_first: bool = typer.Option(False, help="Greedy rule: move when P(no-op) < P(any move)."),
    learning_rate: float = typer.Option(3e-4, help="Imitation learning rate (Adam)."),
    beta_iterations: int = typer.Option(39, help="Iterations over which the teacher share goes 1 -> 0."),
) -> None:
    """Train the RL placement policy on the simulator: DAgger imitation, then optional PPO."""
    from placement.train import (  # noqa: PLC0415
        ALL_SCENARIOS,
        BASE_TEACHERS,
        ROOM_TEACHERS,
        TREND_TEACHERS,
        TrainConfig,
    )
    from placement.train import train as run_train  # noqa: PLC0415

    cfg = TrainConfig(
        iterations=iterations,
        bc_iterations=bc_iterations,
        bc_teacher=bc_teacher,
        num_envs=envs,
        seed=seed,
        out=out,
        scenarios=[s for s in scenarios.split(",") if s] or list(ALL_SCENARIOS),
        trend_features=trend_features,
        room_features=room_features,
        room_label_weight=room_label_weight,
        init_from=init_from,
        move_first=move_first,
        learning_rate=learning_rate,
        dagger_beta_iterations=beta_iterations,
        teacher_pool=[
            *BASE_TEACHERS,
            *(TREND_TEACHERS if trend_teachers else ()),
            *(ROOM_TEACHERS if room_teachers else ()),
            *(t for t in extra_teachers.split(",") if t),
        ],
    )
    try:
        best = run_train(cfg, progress=progress)
    except ConfigError as exc:
        _fail(str(exc))
    typer.echo(f"best checkpoint: {best}")


@app.command()
def bench(
    scenario: str = typer.Option("diurnal-small", help="Scenario for the simulator throughput run."),
    batch: int = typer.Option(1024, help="Environments simulated at once."),
    latency_scenario: str = typer.Option("scale-50x500", help="Scenario for RL decision latency."),
    model: Path | None = typer.Option(None, help="RL checkpoint (default shipped model)."),
    lookahead: str = _LOOKAHEAD_OPTION,
) -> None:
    """Simulator env-steps/s and RL decision latency (numbers are reported, never asserted)."""
    from placement.benchmark import decision_latency_ms, sim_steps_per_s  # noqa: PLC0415

    wall, cpu = sim_steps_per_s(scenario, batch)
    typer.echo(
        f"simulator ({scenario}, batch {batch}): {wall:,.0f} env-steps/s wall, {cpu:,.0f} per CPU-second"
    )
    lat = decision_latency_ms(latency_scenario, model, lookahead=_parse_lookahead(lookahead))
    typer.echo(
        f"RL decision latency on {latency_scenario} (incl. observation + mask): "
        f"median {lat['median_ms']:.2f} ms "
        f"wall, p99 {lat['p99_ms']:.2f} ms, median CPU {lat['median_cpu_ms']:.2f} ms"
    )


@app.command()
def calibrate(
    from_bench: Path = typer.Option(
        ..., "--from-bench", help="Bench result YAML/JSON: {key: {value, source}}."
    ),
    calibration: Path | None = typer.Option(
        None, help="Calibration file to update (default: the package's)."
    ),
) -> None:
    """Update placement/calibration.yml from measured bench results (records provenance)."""
    from placement.calibration import CALIBRATION_FILE, apply_bench, load_calibration, save_calibration  # noqa: PLC0415

    path = calibration or CALIBRATION_FILE
    try:
        cal, changed = apply_bench(load_calibration(path), from_bench)
    except ConfigError as exc:
        _fail(str(exc))
    save_calibration(cal, path)
    typer.echo(f"updated {', '.join(changed) or 'nothing'} in {path}")


@app.command()
def serve(
    config: Path = typer.Option(
        Path("/etc/deft/placement.yml"), help="Service config (placement role writes it)."
    ),
    telemetry: Path | None = typer.Option(
        None, help="Override the InfluxDB contract file (/etc/deft/telemetry.yml)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide and log, never migrate."),
    once: bool = typer.Option(False, help="One decision round, then exit (for tests and cron)."),
) -> None:
    """Read telemetry from InfluxDB, decide, and migrate VNFs over SSH (see placement/service.py)."""
    from placement.service import ServiceConfig, ServiceError, run_service  # noqa: PLC0415

    try:
        cfg = ServiceConfig.load(config if config.exists() else None, telemetry_file=telemetry)
    except ConfigError as exc:
        _fail(str(exc))
    try:
        run_service(cfg, dry_run=dry_run, once=once)
    except ServiceError as exc:
        _fail(str(exc))


@app.command()
def shift(
    inventory: Path = typer.Option(Path("inventory/lab"), "--inventory", "-i", help="Provisioned inventory."),
    policies: str = typer.Option(
        "static,rl", help="Comma-separated policies, each run on a fresh deployment."
    ),
    small_cpus: float = typer.Option(0.02, help="CPU cap (CPUs) of the first NFV host's containers."),
    small_capacity: float = typer.Option(2500.0, help="Capacity (pps) the service is told that host has."),
    base_pps: float = typer.Option(1500.0, help="Offered rate before the shift (packets/s)."),
    peak_pps: float = typer.Option(6000.0, help="Offered rate after the shift (packets/s)."),
    shift_at: float = typer.Option(20.0, help="When the shift starts (s)."),
    duration: float = typer.Option(80.0, help="Traffic duration per policy (s)."),
    out: Path = typer.Option(Path("results/shift"), help="Report directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
) -> None:
    """Live load shift on a provisioned lab: DEFT static vs the placement policies, real packets
    (see placement/shift.py); writes report.md, shift.png and results.json."""
    from placement.shift import ShiftConfig, ShiftError, run_shift  # noqa: PLC0415

    try:
        cfg = ShiftConfig(
            inventory=inventory,
            policies=tuple(p.strip() for p in policies.split(",") if p.strip()),
            small_cpus=small_cpus,
            small_capacity_pps=small_capacity,
            base_pps=base_pps,
            peak_pps=peak_pps,
            shift_at_s=shift_at,
            duration_s=duration,
            out=out,
        )
        runs, report = run_shift(cfg)
    except (ShiftError, ValueError) as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in runs], indent=2))
    else:
        typer.echo(report.read_text())
    if any(r.error for r in runs):
        raise typer.Exit(1)
