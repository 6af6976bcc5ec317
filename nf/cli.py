"""``deftctl nf``: run NF instances and the stamper, and drive an instance's control API.

``deftctl nf run --config fw1.yml`` is ``python -m nf.instance``; the other commands talk to a
running instance through :class:`nf.control.ControlClient` (``--control`` = Unix socket path or
``host:port``) and print its JSON answer.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from nf.control import ControlClient, ControlError

app = typer.Typer(no_args_is_help=True, help="DEFT data plane: NF instances and the ingress stamper.")

CONTROL = typer.Option(..., "--control", "-c", help="control socket path or host:port of the instance")


def _call(control: str, cmd: str, **args: Any) -> None:
    try:
        with ControlClient(control) as cc:
            res = cc.call(cmd, **args)
    except ControlError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(res, indent=2, sort_keys=True))


@app.command()
def run(config: str = typer.Option(..., "--config", help="instance YAML (nf.instance_config)")) -> None:
    """Run one NF instance in the foreground (workers + control API)."""
    from nf.instance import main  # noqa: PLC0415 - forks workers; keep `deftctl --help` light

    raise typer.Exit(main(["--config", config]))


@app.command()
def stamper(config: str = typer.Option(..., "--config", help="stamper YAML (StamperConfig)")) -> None:
    """Run the ingress stamper in the foreground (TUN device, needs root)."""
    from nf.stamper import main  # noqa: PLC0415

    raise typer.Exit(main(["--config", config]))


@app.command()
def status(control: str = CONTROL) -> None:
    """Role, lease, epoch, flows and replication channels of an instance."""
    _call(control, "status")


@app.command()
def metrics(control: str = CONTROL) -> None:
    """DEFT's metric set + FT counters of an instance."""
    _call(control, "metrics")


@app.command()
def promote(epoch: int = typer.Option(..., help="new lease epoch (from the store's takeover)"),
            lease: str = typer.Option("", help="lease to take over (default: the instance's)"),
            control: str = CONTROL) -> None:
    """Secondary -> primary: replay uncommitted buffered input in order, then serve."""
    _call(control, "promote", epoch=epoch, **({"lease": lease} if lease else {}))


@app.command()
def fence(epoch: int = typer.Option(...), lease: str = typer.Option(""), control: str = CONTROL) -> None:
    """Refuse (or stop releasing for) anything older than EPOCH of LEASE."""
    _call(control, "fence", epoch=epoch, **({"lease": lease} if lease else {}))


@app.command("add-replica")
def add_replica(addr: str = typer.Argument(..., help="ip:repl_port of the new replica"),
                control: str = CONTROL) -> None:
    """Start replicating to a new secondary / cluster member (snapshot, then deltas)."""
    _call(control, "add_replica", addr=addr)


@app.command("remove-replica")
def remove_replica(addr: str = typer.Argument(...), control: str = CONTROL) -> None:
    """Stop replicating to (and waiting for) a replica."""
    _call(control, "remove_replica", addr=addr)


@app.command()
def handover(groups: str = typer.Option(..., help="flow groups, e.g. 1,5,9"),
             to: str = typer.Option(..., help="target ip:repl_port"),
             dup_to: str = typer.Option(..., help="target ip:dup_port"), control: str = CONTROL) -> None:
    """Move flow groups to another instance (loss-free, order-preserving)."""
    try:
        glist = [int(g) for g in groups.split(",") if g.strip()]
    except ValueError:
        typer.echo(f"error: --groups {groups!r}: expected comma-separated integers", err=True)
        raise typer.Exit(2) from None
    _call(control, "handover", groups=glist, to=to, dup_to=dup_to)


@app.command("export-state")
def export_state(groups: str = typer.Option("all", help="'all' or comma-separated flow groups"),
                 control: str = CONTROL) -> None:
    """Per-flow state and sequencing of an instance as JSON."""
    g: Any = "all" if groups == "all" else [int(x) for x in groups.split(",")]
    _call(control, "export_state", groups=g)


@app.command("import-state")
def import_state(control: str = CONTROL) -> None:
    """Install flows from an ``export-state`` JSON document on stdin (as owned flows)."""
    _call(control, "import_state", flows=json.load(sys.stdin))


@app.command()
def drain(control: str = CONTROL) -> None:
    """Close the open batch and wait until every output was released."""
    _call(control, "drain")


@app.command()
def shutdown(control: str = CONTROL) -> None:
    """Stop the instance."""
    _call(control, "shutdown")
