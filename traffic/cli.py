"""``deftctl traffic``: run generators and sinks here, or a whole run across the inventory's hosts.

- ``deftctl traffic gen --profile P [--dst IP] [--json-out F]``: send P's traffic from this namespace.
- ``deftctl traffic sink --profile P [--json-out F] [--csv-out F]``: receive and measure here.
- ``deftctl traffic run --inventory inventory/lab --profile P [--json]``: sinks then generators on
  the ``traffic`` hosts over SSH, results collected and merged (loss exact per flow).

Every command stops by itself (profile bounds) and on SIGTERM/SIGINT, writing its results.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import typer

from deftctl.config import ConfigError
from traffic import generator, packets, remote, results
from traffic import profile as prof
from traffic.sink import Sink, SinkConfig, unpack_ports

app = typer.Typer(no_args_is_help=True, help="Traffic generators, sinks and multi-host runs.")
log = logging.getLogger(__name__)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _fail(msg: str) -> NoReturn:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _load(profile: Path) -> prof.TrafficProfile:
    try:
        return prof.load_profile(profile)
    except ConfigError as exc:
        _fail(str(exc))
    raise AssertionError  # unreachable: _fail raises


@app.command()
def gen(
    profile: Path = typer.Option(..., "--profile", "-p", help="Traffic profile YAML."),
    dst: str = typer.Option("", help="Destination IPv4 for flows without dst."),
    method: str = typer.Option("", help="Override the profile's method (packet|raw|udp|tcpreplay)."),
    rate_pps: float = typer.Option(0.0, help="Override the pattern's rate_pps."),
    duration_s: float = typer.Option(0.0, help="Override duration_s."),
    count: int = typer.Option(-1, help="Override count (0 = what the pattern yields)."),
    flow_id_base: int = typer.Option(-1, help="Override flow_id_base."),
    json_out: Path | None = typer.Option(None, help="Write the generator report here (JSON)."),
) -> None:
    """Send a profile's traffic from this network namespace; prints a one-line summary."""
    p = _load(profile)
    try:
        changes: dict[str, object] = {}
        if method:
            changes["method"] = method
        if duration_s:
            changes["duration_s"] = duration_s
        if count >= 0:
            changes["count"] = count
        if flow_id_base >= 0:
            changes["flow_id_base"] = flow_id_base
        if rate_pps:
            changes["pattern"] = replace(p.pattern, rate_pps=rate_pps)
        p = replace(p, **changes)  # type: ignore[arg-type]
        if dst:
            p = p.with_dst(dst)
    except ValueError as exc:
        _fail(str(exc))
    stop = _stop_on_signals()
    try:
        rep = generator.run_generator(p, stop)
    except (packets.CraftError, OSError, ValueError) as exc:
        _fail(str(exc))
        return
    if json_out:
        results.write_json(rep, json_out)
    typer.echo(
        f"sent {rep.sent} packets in {rep.duration_s:.3f} s: {rep.achieved_pps:.0f} pps "
        f"(target {rep.target_pps:.0f}), {rep.send_errors} send errors, stop: {rep.stop_reason}"
    )


@app.command()
def sink(
    profile: Path | None = typer.Option(None, "--profile", "-p", help="Traffic profile YAML (sink section)."),
    ports: str = typer.Option("", help="Comma-separated ports (overrides the profile)."),
    mode: str = typer.Option("", help="udp | packet (overrides the profile)."),
    interface: str = typer.Option("", help="packet mode: capture interface."),
    duration_s: float = typer.Option(0.0, help="Expected traffic duration (s); the sink adds grace_s."),
    idle_timeout_s: float = typer.Option(0.0, help="Stop this long after the last packet (s)."),
    json_out: Path | None = typer.Option(None, help="Write the sink report here (JSON)."),
    csv_out: Path | None = typer.Option(None, help="Write per-flow results here (CSV)."),
    ready_file: Path | None = typer.Option(None, help="Touched once listening (for orchestration)."),
) -> None:
    """Receive stamped packets here and report per-flow loss, reordering, duplicates, latency."""
    base = prof.SinkSpec()
    dur = 10.0
    port_list: list[int] = []
    if profile:
        p = _load(profile)
        base, dur, port_list = p.sink, p.duration_s, p.dports
    try:
        if ports:
            port_list = unpack_ports(ports)
        if not port_list:
            raise ValueError("no ports: pass --ports or --profile")
        m = mode or base.mode
        if m not in prof.SINK_MODES:
            raise ValueError(f"mode {m!r} is not one of {', '.join(prof.SINK_MODES)}")
        if duration_s < 0 or idle_timeout_s < 0:
            raise ValueError("duration_s and idle_timeout_s must be >= 0")
        cfg = SinkConfig(
            ports=port_list, mode=m, bind=base.bind, interface=interface or base.interface,
            duration_s=duration_s or dur, grace_s=base.grace_s,
            idle_timeout_s=idle_timeout_s or base.idle_timeout_s, max_packets=base.max_packets,
            first_packet_timeout_s=base.first_packet_timeout_s,
            rcvbuf_bytes=base.rcvbuf_bytes, nice=base.nice, ready_file=ready_file,
        )
        s = Sink(cfg)
        stop = _stop_on_signals()
        s.open()
    except (ValueError, OSError) as exc:
        _fail(str(exc))
        return
    rep = s.run(stop)
    if json_out:
        results.write_json(rep, json_out)
    if csv_out:
        results.write_flows_csv(rep, csv_out)
    typer.echo(
        f"received {rep.received} ({rep.unique} unique, {rep.duplicates} dup, {rep.reordered} reordered, "
        f"{rep.malformed} malformed) from {len(rep.flows)} flows at {rep.throughput_pps:.0f} pps, "
        f"latency p50 {rep.latency_p50_us:.0f} us p99 {rep.latency_p99_us:.0f} us, stop: {rep.stop_reason}"
    )


@app.command()
def run(
    inventory: Path = typer.Option(..., "--inventory", "-i", help="Ansible inventory (e.g. inventory/lab)."),
    profile: Path = typer.Option(..., "--profile", "-p", help="Traffic profile YAML."),
    network: str = typer.Option("overlay", help="overlay (overlay_ip hostvars) or mgmt (ansible_host)."),
    json_output: bool = typer.Option(False, "--json", help="Print the merged summary as JSON."),
    out_dir: Path | None = typer.Option(None, help="Also write every report (JSON/CSV) here."),
) -> None:
    """Start sinks then generators on the inventory's traffic hosts, collect and merge results."""
    p = _load(profile)
    try:
        summary = remote.run_across(inventory, profile, p, network=network, out_dir=out_dir)
    except (remote.RemoteError, ValueError, OSError) as exc:
        _fail(str(exc))
        return
    if json_output:
        sys.stdout.write(results.to_json(summary) + "\n")
        return
    typer.echo(remote.format_summary(summary))
