"""``deftctl lab ...``: bring the namespace lab up, inspect it, run commands in it, take it down.

``up`` flags map one-to-one onto :class:`lab.config.LabConfig` fields; ``--config FILE`` loads a
YAML LabConfig first (through :mod:`deftctl.config`) and flags given on the command line override it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from deftctl.config import ConfigError, from_dict, load, to_dict
from lab import lifecycle
from lab.config import STORAGE_ROOT, LabConfig
from lab.netns import NetnsError
from lab.rootns import LabError

app = typer.Typer(no_args_is_help=True, help="Multi-host lab of network-namespace hosts on this machine.")
console = Console(soft_wrap=True)


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(1)


@app.command()
def up(
    hosts: int | None = typer.Option(None, "--hosts", help="Number of NFV hosts nfv1..N (default 3)."),
    name: str | None = typer.Option(None, "--name", help="Lab name: namespaces <name>-<host> (default lab)."),
    mgmt_subnet: str | None = typer.Option(
        None, "--mgmt-subnet", help="Management subnet (default 10.77.0.0/24)."
    ),
    data_subnet: str | None = typer.Option(
        None, "--data-subnet", help="Underlay subnet (default 10.78.0.0/24)."
    ),
    inventory_dir: Path | None = typer.Option(
        None, "--inventory-dir", help="Default: <repo>/inventory/<name>."
    ),
    hazelcast_archive: Path | None = typer.Option(
        None, "--hazelcast-archive", help="Hazelcast distribution .tar.gz: state_backend=hazelcast."
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML LabConfig; flags override it."),
) -> None:
    """Create (or repair, grow, shrink) the lab and write its Ansible inventory. Idempotent."""
    try:
        base = load(LabConfig, config) if config else LabConfig()
        overrides: dict[str, Any] = {
            k: v
            for k, v in {
                "hosts": hosts, "name": name, "mgmt_subnet": mgmt_subnet, "data_subnet": data_subnet,
                "inventory_dir": inventory_dir, "hazelcast_archive": hazelcast_archive,
            }.items()
            if v is not None
        }  # fmt: skip
        cfg = from_dict(LabConfig, to_dict(base) | overrides, source=str(config or "command line"))
        report = lifecycle.up(cfg)
    except (ConfigError, LabError, NetnsError) as exc:
        _fail(str(exc))
        return
    for line in report.lines:
        console.print(f"  {line}")
    console.print(
        f"state backend: [bold]{report.state_backend}[/bold]"
        + (" (from --hazelcast-archive)" if cfg.hazelcast_archive else " (no --hazelcast-archive given)")
    )
    console.print(f"inventory: {report.inventory}  ->  ansible -i {report.inventory} all -m ping")


@app.command()
def down(
    name: str = typer.Option("lab", "--name"),
    purge: bool = typer.Option(
        False, "--purge", help="Also delete the hosts' private storage and inventory."
    ),
) -> None:
    """Stop everything running in the lab's hosts and remove namespaces, bridges, NAT rule."""
    try:
        rep = lifecycle.down(name, purge=purge)
    except (ConfigError, LabError, NetnsError) as exc:
        _fail(str(exc))
        return
    if not rep.hosts and not rep.removed:
        console.print(f"lab {name!r}: nothing to remove")
        return
    console.print(
        f"lab {name!r}: removed hosts {', '.join(rep.hosts) or '-'}; stopped {rep.processes} processes"
    )
    for item in rep.removed:
        console.print(f"  removed {item}")


@app.command()
def status(
    name: str = typer.Option("lab", "--name"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Hosts, addresses, sshd and the daemons alive in each host."""
    st = lifecycle.status(name, STORAGE_ROOT)
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    if not st["hosts"]:
        console.print(f"lab {name!r} is not up (`deftctl lab up --name {name}`)")
        raise typer.Exit(1)
    table = Table(title=f"lab {name} ({'up' if st['up'] else 'DEGRADED: run `deftctl lab up`'})")
    for col in ("host", "mgmt", "data", "sshd", "procs"):
        table.add_column(col, no_wrap=True)
    table.add_column("daemons", overflow="fold")
    for host, h in st["hosts"].items():
        table.add_row(
            host, h["mgmt_ip"], h["data_ip"],
            "[green]up[/green]" if h["sshd_alive"] else "[red]down[/red]",
            str(h["processes"]), ", ".join(h["daemons"]) or "-",
        )  # fmt: skip
    console.print(table)
    console.print(f"namespaces {name}-<host>; inventory: {st['inventory']}")
    console.print(f"state backend: {st['state_backend']}")


@app.command(name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    ctx: typer.Context,
    host: str = typer.Argument(..., help="Host name, e.g. nfv1."),
    name: str = typer.Option("lab", "--name"),
) -> None:
    """Run a command with HOST's view (network, hostname, private dirs): `exec nfv1 -- cmd`."""
    argv = list(ctx.args) or ["bash", "-l"]
    try:
        full = lifecycle.exec_argv(name, host, argv)
    except LabError as exc:
        _fail(str(exc))
        return
    os.execvp(full[0], full)
