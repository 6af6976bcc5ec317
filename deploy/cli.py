"""``deftctl deploy``: deploy declared DEFT services and run the failure detector with the agents'
launcher (on hosts: ``/opt/deft/venv/bin/python -m deploy ...``).

* ``services [--check] [--json]``  deploy every service of ``/etc/deft/deploy.yml`` that is not running
* ``status [--json]``              is each declared service running (steering + primary heartbeat)?
* ``remove SERVICE``                steering entries deleted, instances stopped
* ``fdu``                          failure detector; replacement secondaries via the agents (serves)
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from deftctl.config import ConfigError
from nf.detector_cli import detector_options, serve_detector

if TYPE_CHECKING:
    from nf.failover import DetectorConfig

app = typer.Typer(no_args_is_help=True, help=__doc__.split("\n\n")[0] if __doc__ else None)

CONFIG = typer.Option(None, "--config", "-c", help="deploy.yml (default /etc/deft/deploy.yml)")


def _fail(msg: str, as_json: bool) -> NoReturn:
    if as_json:
        sys.stdout.write(json.dumps({"error": msg}) + "\n")
    else:
        typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def _load(config: Path | None, as_json: bool) -> Any:
    from deploy.config import load_config  # noqa: PLC0415

    try:
        return load_config(config)
    except ConfigError as exc:
        _fail(str(exc), as_json)


def _open_store(cfg: Any, as_json: bool) -> Any:
    from nf.store import open_store  # noqa: PLC0415

    try:
        return open_store(cfg.statestore)
    except Exception as exc:  # ConfigError, refused, timeout: one message
        _fail(f"state store: {exc}", as_json)


@app.command()
def services(
    config: Path | None = CONFIG,
    check: bool = typer.Option(False, "--check", help="Only report what would change."),
    only: str = typer.Option("", help="Deploy only this service."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Deploy every declared service that is not running; prints ``changed`` per service."""
    from deploy.service import DeployError, ensure_service  # noqa: PLC0415

    cfg = _load(config, as_json)
    store = _open_store(cfg, as_json)
    out: list[dict[str, Any]] = []
    try:
        for spec in cfg.services:
            if only and spec.name != only:
                continue
            try:
                out.append(asdict(ensure_service(cfg, store, spec, check)))
            except (DeployError, ConfigError) as exc:
                _fail(str(exc), as_json)
    finally:
        store.close()
    doc = {"changed": any(s["changed"] for s in out), "services": out}
    if as_json:
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    for s in out:
        typer.echo(
            f"{s['service']}: {'deployed' if s['changed'] else 'unchanged'} ({s['reason']}), "
            f"primary {s['primary'].get('instance', '-')}@{s['primary'].get('host', '-')}"
        )


@app.command()
def status(config: Path | None = CONFIG, as_json: bool = typer.Option(False, "--json")) -> None:
    """Whether each declared service runs (read-only)."""
    from deploy.service import running_state  # noqa: PLC0415

    cfg = _load(config, as_json)
    store = _open_store(cfg, as_json)
    try:
        out = [asdict(running_state(store, spec)) for spec in cfg.services]
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(out) + "\n")
        return
    for s in out:
        typer.echo(f"{s['service']}: {s['reason']}")


@app.command()
def remove(
    service: str = typer.Argument(..., help="Service to undeploy."),
    config: Path | None = CONFIG,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Undeploy a service: steering entries deleted, its instances stopped by their agents."""
    from deploy.service import DeployError, remove_service  # noqa: PLC0415

    cfg = _load(config, as_json)
    store = _open_store(cfg, as_json)
    try:
        stopped = remove_service(cfg, store, service)
    except DeployError as exc:
        _fail(str(exc), as_json)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps({"service": service, "stopped": stopped}) + "\n")
    else:
        typer.echo(f"{service}: removed; stopped {', '.join(stopped) or 'nothing'}")


@app.command()
@detector_options(replace_secondary=True)
def fdu(detector: DetectorConfig, service: str | None, config: Path | None = CONFIG) -> None:
    """Failure detector (nf.failover) whose replacement secondaries are started by the agents."""
    from deploy.launcher import AgentLauncher  # noqa: PLC0415

    cfg = _load(config, False)
    store = _open_store(cfg, False)
    try:
        serve_detector(store, AgentLauncher(cfg, store), detector, service)
    finally:
        store.close()
