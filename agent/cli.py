"""``deftctl agent ...``: run the per-host agent and the commands the placement service calls.

Machine use (over SSH): every command takes ``--json`` and prints one JSON document on stdout; on
failure it prints ``{"error": "..."}`` (with ``--json``) or the message on stderr, and exits 1
(runtime failure) or 2 (bad input / config).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

import typer

from agent import commands
from agent.config import load_agent, load_telemetry
from agent.daemon import build_agent
from agent.events import emit, event_point
from agent.query import QueryClient, QueryError
from agent.schema import MEASUREMENTS, SchemaError, render_markdown
from deftctl.config import ConfigError

app = typer.Typer(no_args_is_help=True, help="Per-host agent: telemetry and NF lifecycle/migration commands.")
nf_app = typer.Typer(no_args_is_help=True, help="NF instance lifecycle on this host.")
app.add_typer(nf_app, name="nf")

CONFIG_OPT = typer.Option(None, "--config", "-c", help="agent.yml (default /etc/deft/agent.yml if present).")
JSON_OPT = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def _fail(msg: str, as_json: bool, code: int = 1) -> NoReturn:
    if as_json:
        print(json.dumps({"error": msg}))
    else:
        print(f"error: {msg}", file=sys.stderr)
    raise typer.Exit(code)


def _conf(path: Path | None, as_json: bool) -> Any:
    try:
        return load_agent(path)
    except ConfigError as exc:
        _fail(str(exc), as_json, 2)


def _out(doc: Any, as_json: bool, human: str) -> None:
    print(json.dumps(doc, indent=None if as_json else 1, default=str) if as_json else human)


@app.command()
def run(
    config: Path | None = CONFIG_OPT,
    max_ticks: int = typer.Option(0, help="Stop after this many intervals (0 = run until SIGTERM)."),
) -> None:
    """Run the agent daemon: report every interval to InfluxDB (spooling to disk when it is down)."""
    conf = _conf(config, False)
    try:
        telemetry = load_telemetry(conf.telemetry_file)
    except ConfigError as exc:
        _fail(str(exc), False, 2)
    agent = build_agent(conf, telemetry)
    agent.install_signal_handlers()
    agent.run(max_ticks=max_ticks)


@app.command()
def status(config: Path | None = CONFIG_OPT, as_json: bool = JSON_OPT) -> None:
    """Daemon heartbeat, NF instances and spool of this host."""
    conf = _conf(config, as_json)
    try:
        doc = commands.status(conf)
    except commands.CommandError as exc:
        _fail(str(exc), as_json)
    d = doc["daemon"]
    human = (f"host {doc['host']}: agent {'running' if d.get('running') else 'NOT running'}, "
             f"{len(doc['instances'])} NF instance(s), spool {doc['spool'].get('points', '?')} points "
             f"({doc['spool'].get('dropped_total', '?')} dropped)")
    _out(doc, as_json, human)


def _parse_sets(sets: list[str], as_json: bool) -> dict[str, str]:
    out = {}
    for s in sets:
        k, eq, v = s.partition("=")
        if not eq or not k:
            _fail(f"--set {s!r}: expected key=value", as_json, 2)
        out[k] = v
    return out


@nf_app.command("start")
def nf_start(
    instance: str = typer.Option(..., "--instance", "-i", help="Instance id (unique in the cluster)."),
    nf_type: str = typer.Option(..., "--type", "-t", help="NF type (counter, firewall, nat, lb, ...)."),
    role: str = typer.Option("primary", help="primary | secondary"),
    service: str = typer.Option("", help="Service chain the instance belongs to."),
    nf_config: Path | None = typer.Option(None, "--nf-config", help="Instance config YAML."),
    set_: list[str] = typer.Option([], "--set", help="Config key.sub=value (repeatable)."),
    launcher: str | None = typer.Option(None, help="process | docker (default: agent.yml launcher)."),
    ready_timeout: float = typer.Option(15.0, help="Seconds to wait for the control API."),
    config: Path | None = CONFIG_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Start an NF instance (local process or Docker container on br-int)."""
    conf = _conf(config, as_json)
    try:
        doc = commands.nf_start(conf, instance, nf_type, role, service, _parse_sets(set_, as_json),
                                nf_config, launcher, ready_timeout)
    except commands.CommandError as exc:
        _fail(str(exc), as_json)
    _out(doc, as_json, f"started {instance}: control {doc['control']}")


@nf_app.command("stop")
def nf_stop(
    instance: str = typer.Option(..., "--instance", "-i"),
    grace: float = typer.Option(5.0, help="Seconds between SIGTERM and SIGKILL."),
    config: Path | None = CONFIG_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Stop an NF instance of this host."""
    conf = _conf(config, as_json)
    try:
        doc = commands.nf_stop(conf, instance, grace)
    except commands.CommandError as exc:
        _fail(str(exc), as_json)
    _out(doc, as_json, f"stopped {instance}")


@nf_app.command("list")
def nf_list(config: Path | None = CONFIG_OPT, as_json: bool = JSON_OPT) -> None:
    """NF instances of this host with liveness."""
    conf = _conf(config, as_json)
    try:
        doc = commands.nf_list(conf)
    except (commands.CommandError, ValueError) as exc:
        _fail(str(exc), as_json)
    human = "\n".join(f"{r['instance']:<20} {r['nf_type']:<10} {r['role']:<9} {r['launcher']:<7} "
                      f"{r['control']:<21} {'up' if r['alive'] else 'DOWN'}" for r in doc) or "no instances"
    _out(doc, as_json, human)


@app.command()
def migrate(
    instance: str = typer.Option(..., "--instance", "-i"),
    to: str = typer.Option(..., "--to", help="Destination host."),
    target: str | None = typer.Option(None, help="Destination instance (default: the one on --to)."),
    flows: str = typer.Option("", help="Comma-separated flow groups (default: all the instance serves)."),
    service: str | None = typer.Option(None, help="Service of the steering entries (default: instance's)."),
    timeout: float = typer.Option(30.0, help="Seconds."),
    config: Path | None = CONFIG_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Migrate an instance's flows to another host (loss-free, nf/migration.py)."""
    conf = _conf(config, as_json)
    flow_list = [f for f in flows.split(",") if f] or None
    try:
        doc = commands.migrate(conf, instance, to, flow_list, timeout, target, service)
    except commands.CommandError as exc:
        _fail(str(exc), as_json)
    r = doc["report"]
    _out(doc, as_json, f"migrated {instance} to {doc['target']}@{to}: handover {r['handover_ms']:.1f} ms, "
         f"total {r['total_ms']:.1f} ms")


@app.command()
def event(
    kind: str = typer.Option(..., help="failover | migration | placement | nf_start | nf_stop | agent"),
    title: str = typer.Option(...),
    text: str = typer.Option(""),
    instance: str = typer.Option(""),
    failed: bool = typer.Option(False, "--failed", help="Record the action as failed (ok=false)."),
    config: Path | None = CONFIG_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Record an event (Grafana annotation), e.g. from a script; spooled if InfluxDB is down."""
    conf = _conf(config, as_json)
    try:
        p = event_point(conf.hostname, kind, title, text, instance, not failed)
    except SchemaError as exc:
        _fail(str(exc), as_json, 2)
    if kind not in ("failover", "migration", "placement", "nf_start", "nf_stop", "agent"):
        _fail(f"--kind {kind!r}: expected failover|migration|placement|nf_start|nf_stop|agent", as_json, 2)
    written = emit([p], conf)
    _out({"written": written, "spooled": not written}, as_json, "written" if written else "spooled")


@app.command()
def query(
    influxql: str = typer.Argument(..., help='InfluxQL, e.g. \'SELECT last("cpu_percent") FROM "host"\''),
    telemetry: Path = typer.Option(Path("/etc/deft/telemetry.yml"), help="telemetry.yml"),
    as_json: bool = JSON_OPT,
) -> None:
    """Run an InfluxQL query against the configured InfluxDB (1.x/2.x/3.x)."""
    try:
        conf = load_telemetry(telemetry)
    except ConfigError as exc:
        _fail(str(exc), as_json, 2)
    try:
        rows = QueryClient(conf).rows(influxql, epoch="ms")
    except QueryError as exc:
        _fail(str(exc), as_json)
    _out(rows, as_json, "\n".join(json.dumps(r, default=str) for r in rows) or "(no rows)")


@app.command()
def schema(markdown: bool = typer.Option(False, "--markdown", help="Markdown (docs/telemetry.md)."),
           as_json: bool = JSON_OPT) -> None:
    """Print the telemetry schema (agent/schema.py)."""
    if markdown:
        sys.stdout.write(render_markdown())
        return
    doc = {k: asdict(m) for k, m in MEASUREMENTS.items()}
    _out(doc, True, "") if as_json else print("\n".join(
        f"{m.name}: tags {', '.join(t.name for t in m.tags)}; {len(m.fields)} fields"
        for m in MEASUREMENTS.values()))
