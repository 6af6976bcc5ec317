"""Unreachable SSH hosts give a clear error; a failed migration is not retried blindly."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest_placement import service_config, write_agent_telemetry

from agent.config import TelemetryConfig
from agent.query import QueryClient
from agent.writer import make_writer
from placement.service import HostEntry, PlacementService, ServiceConfig, SshConfig, SshError, SshExecutor


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


def test_unreachable_host_error_names_host_and_address() -> None:
    port = _closed_port()
    cfg = ServiceConfig(
        hosts=[HostEntry("nfv1", "127.0.0.1", 100000, port)],
        ssh=SshConfig(connect_timeout_s=2.0, strict_host_keys=False),
    )
    with pytest.raises(SshError) as ei:
        SshExecutor(cfg).run("nfv1", "true")
    msg = str(ei.value)
    assert "nfv1" in msg and f"127.0.0.1:{port}" in msg and "unreachable" in msg


def test_unknown_host_is_named() -> None:
    with pytest.raises(SshError, match="'nfvX' is not in the service config"):
        SshExecutor(ServiceConfig(hosts=[HostEntry("nfv1", "127.0.0.1")])).run("nfvX", "true")


def test_ssh_failure_mid_migration_freezes_instead_of_retrying(
    tmp_path: Path, influxdb_telemetry: TelemetryConfig
) -> None:
    write_agent_telemetry(influxdb_telemetry)
    port = _closed_port()
    cfg = service_config(
        tmp_path,
        influxdb_telemetry,
        policy="least-loaded",
        ssh={"connect_timeout_s": 2.0, "strict_host_keys": False},
    )
    cfg = ServiceConfig(
        **{**cfg.__dict__, "hosts": [HostEntry(h.name, h.address, h.capacity_pps, port) for h in cfg.hosts]}
    )
    svc = PlacementService(
        cfg, QueryClient(influxdb_telemetry), make_writer(influxdb_telemetry), SshExecutor(cfg), dry_run=False
    )
    d = svc.round(now=1000.0)
    assert d.executed and not d.ok
    assert "outcome unknown" in d.reason and "unreachable" in d.reason and d.src_host in d.reason
    again = svc.round(now=1001.0)  # within one telemetry window: no second attempt
    assert not again.executed and "re-reading ownership" in again.reason
    ev = QueryClient(influxdb_telemetry).rows('SELECT * FROM "event" WHERE "kind" = \'migration\'')
    assert len(ev) == 1 and ev[0]["ok"] is False and ev[0]["src_host"] == "nfv1"
