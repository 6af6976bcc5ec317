"""``deftctl nfctl``: the control side of the DEFT data plane (state store, steering, FDU, moves).

Instance-level commands (run, status, promote, ...) live in ``deftctl nf``; these commands act on the
cluster through the state store (``--statestore``, default ``/etc/deft/statestore.yml``):

* ``store ping``                 reachability and round trip of the store
* ``steering show``              the steering table (flow group -> primary, secondaries, epoch)
* ``steering program``           keep this host's br-int duplication rules equal to the table (serves)
* ``fdu``                        heartbeat every primary and fail over on failure (serves; no launcher:
                                 ``deftctl deploy fdu`` adds the agents' one)
* ``failover``                   fail a lease over to its secondary now (operator action)
* ``migrate``                    loss-free move of flow groups to a registered instance
* ``checkpoint`` / ``rebuild``   periodic per-flow checkpoints of an instance / restore them
* ``pool usage`` / ``pool reset`` NAT port pool administration
* ``balance``                    the thesis' 80 % balancer on a JSON list of instance loads
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from deftctl.config import from_dict
from nf.detector_cli import detector_options, serve_detector, serve_until_signal

if TYPE_CHECKING:
    from nf.failover import DetectorConfig

app = typer.Typer(no_args_is_help=True, help=__doc__.split("\n\n")[0] if __doc__ else None)
steering_app = typer.Typer(no_args_is_help=True, help="Steering table and OVS rules.")
pool_app = typer.Typer(no_args_is_help=True, help="NAT port pools (global state).")
store_app = typer.Typer(no_args_is_help=True, help="The state store.")
app.add_typer(steering_app, name="steering")
app.add_typer(pool_app, name="pool")
app.add_typer(store_app, name="store")

STORE = typer.Option(None, "--statestore", help="statestore.yml (default: $DEFT_STATESTORE or /etc/deft/...)")


def _store(path: Path | None) -> Any:
    from nf.store import open_store  # noqa: PLC0415 - keep `deftctl --help` fast

    try:
        return open_store(path)
    except Exception as exc:
        raise typer.BadParameter(str(exc), param_hint="--statestore") from exc


def _echo(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@store_app.command("ping")
def store_ping(statestore: Path | None = STORE) -> None:
    """Round trip to the store (ms)."""
    with _store(statestore) as s:
        typer.echo(f"{s.backend}: {s.ping():.2f} ms")


@steering_app.command("show")
def steering_show(service: str | None = typer.Option(None), statestore: Path | None = STORE) -> None:
    """Print the steering table."""
    from nf.steering import SteeringTable  # noqa: PLC0415

    with _store(statestore) as s:
        for e in SteeringTable(s).entries(service):
            secs = ",".join(f"{x.instance}@{x.ip}" for x in e.secondaries) or "-"
            typer.echo(f"{e.service}/{e.group}: {e.primary.instance}@{e.primary.ip} -> {secs} "
                       f"(lease {e.lease or '-'}, epoch {e.epoch})")


@steering_app.command("program")
def steering_program(
    host_index: int = typer.Option(..., help="this host's host_index"),
    bridge: str = typer.Option("br-int"),
    rundir: Path | None = typer.Option(None, help="OVS_RUNDIR of this host's OVS"),  # noqa: B008
    service: str | None = typer.Option(None),
    interval_ms: int = typer.Option(50, help="store poll interval (ms)"),
    statestore: Path | None = STORE,
) -> None:
    """Keep br-int's duplication rules equal to the steering table until SIGTERM."""
    from nf.ovsctl import OvsSwitch  # noqa: PLC0415
    from nf.steering import SteeringProgrammer  # noqa: PLC0415

    with _store(statestore) as s:
        prog = SteeringProgrammer(s, OvsSwitch(bridge, rundir), host_index, service, interval_ms=interval_ms)
        with prog:
            serve_until_signal()
        prog.remove_all()


@app.command()
@detector_options(replace_secondary=False)
def fdu(detector: DetectorConfig, service: str | None, statestore: Path | None = STORE) -> None:
    """Failure detector: heartbeat every primary of the steering table, fail over on failure.

    Runs without an instance launcher, so no replacement secondaries: ``deftctl deploy fdu`` (same
    options) is the one the deployment runs, with the agents' launcher."""
    with _store(statestore) as s:
        serve_detector(s, None, detector, service)


@app.command()
def failover(
    lease: str = typer.Option(..., help="instance group (lease) to fail over"),
    service: str | None = typer.Option(None),
    statestore: Path | None = STORE,
) -> None:
    """Fail ``lease`` over to its first secondary now (lease CAS, promote, fence, re-steer)."""
    from nf.failover import FailoverOrchestrator, group_views  # noqa: PLC0415
    from nf.steering import SteeringTable  # noqa: PLC0415

    with _store(statestore) as s:
        view = group_views(SteeringTable(s).entries(service)).get(lease)
        if view is None:
            raise typer.BadParameter(f"no steering entry has lease {lease!r}", param_hint="--lease")
        rep = FailoverOrchestrator(s, None).fail_over(view, replace_secondary=False)
        _echo(asdict(rep) if rep else {"result": "another detector failed over first"})


@app.command()
def migrate(
    service: str = typer.Option(...),
    groups: str = typer.Option(..., help="flow groups, e.g. 1,5,9"),
    target: str = typer.Option(..., help="registered target instance (instance/<name> in the store)"),
    settle_ms: float = typer.Option(200.0),
    timeout_s: float = typer.Option(30.0),
    statestore: Path | None = STORE,
) -> None:
    """Loss-free, order-preserving move of flow groups to ``target``."""
    from nf.launcher import lookup_instance  # noqa: PLC0415
    from nf.migration import migrate_groups  # noqa: PLC0415

    with _store(statestore) as s:
        found = lookup_instance(s, target)
        if found is None:
            raise typer.BadParameter(f"{target!r} is not registered in the store", param_hint="--target")
        gs = [g.strip() for g in groups.split(",") if g.strip()]
        rep = migrate_groups(s, service, gs, found[1], settle_ms=settle_ms, timeout_s=timeout_s)
        _echo(asdict(rep))


@app.command()
def checkpoint(
    group_id: str = typer.Option(..., help="instance group (lease) the checkpoints are filed under"),
    control: str = typer.Option(..., help="control socket path or host:port of the instance"),
    interval_ms: float = typer.Option(1000.0),
    once: bool = typer.Option(False, help="one round, then exit"),
    statestore: Path | None = STORE,
) -> None:
    """Checkpoint an instance's flows into the store every ``interval_ms``."""
    from nf.checkpoint import Checkpointer  # noqa: PLC0415

    with _store(statestore) as s:
        ck = Checkpointer(s, group_id, control, interval_ms)
        if once:
            n_w, n_d = ck.once()
            typer.echo(f"{group_id}: {n_w} flow(s) written, {n_d} deleted in {ck.last_ms:.1f} ms")
            return
        with ck:
            serve_until_signal()


@app.command()
def rebuild(
    group_id: str = typer.Option(...),
    control: str = typer.Option(..., help="control address of the instance to fill"),
    statestore: Path | None = STORE,
) -> None:
    """Install the checkpoints of ``group_id`` into an instance."""
    from nf.checkpoint import rebuild as do_rebuild  # noqa: PLC0415

    with _store(statestore) as s:
        typer.echo(f"{do_rebuild(s, group_id, control)} flow(s) installed")


def _pool(s: Any, pool: str, port_lo: int, port_hi: int, flow_groups: int) -> Any:
    from nf.globalstate import PortPoolAdmin  # noqa: PLC0415

    return PortPoolAdmin(s, pool, port_lo, port_hi, flow_groups)


@pool_app.command("usage")
def pool_usage(pool: str = typer.Argument(...), port_lo: int = typer.Option(...),
               port_hi: int = typer.Option(...), flow_groups: int = typer.Option(64),
               statestore: Path | None = STORE) -> None:
    """Claimed ports per flow group."""
    with _store(statestore) as s:
        for u in _pool(s, pool, port_lo, port_hi, flow_groups).usage():
            typer.echo(f"group {u.group}: {u.claimed}/{u.capacity}")


@pool_app.command("reset")
def pool_reset(pool: str = typer.Argument(...), yes: bool = typer.Option(False, "--yes"),
               statestore: Path | None = STORE) -> None:
    """Forget every claim of ``pool`` (only when no instance of it runs)."""
    if not yes:
        raise typer.BadParameter("resetting a pool in use hands out ports twice; pass --yes",
                                 param_hint="--yes")
    with _store(statestore) as s:
        typer.echo(f"{_pool(s, pool, 1, 65535, 1).reset()} group(s) reset")


@app.command()
def balance(
    loads: Path = typer.Argument(..., help="JSON list of {instance, cluster, usage, capacity_pps, flows}"),  # noqa: B008
    threshold: float = typer.Option(0.8),
    max_per_cluster: int | None = typer.Option(None),
) -> None:
    """Run the 80 % overload balancer on hand-made or exported loads; prints the decision."""
    from nf.balancer import InstanceLoad, decide  # noqa: PLC0415

    try:
        items = json.loads(loads.read_text(encoding="utf-8"))
        parsed = [from_dict(InstanceLoad, x, f"{loads}[{i}]") for i, x in enumerate(items)]
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="LOADS") from exc
    t0 = time.perf_counter()
    d = decide(parsed, threshold=threshold, max_per_cluster=max_per_cluster)
    _echo({**asdict(d), "decide_ms": (time.perf_counter() - t0) * 1000})
