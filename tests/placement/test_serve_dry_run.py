"""``placement serve --dry-run`` against a real influxd: reads agent-schema telemetry, proposes a move.

Telemetry rows are written exactly as the agent writes them (agent.schema points through
agent.writer); the service then reads them with InfluxQL, builds THE observation and decides.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest_placement import HOSTS
from conftest_placement import service_config as _config
from conftest_placement import write_agent_telemetry as _write_telemetry

from agent.config import TelemetryConfig
from agent.query import QueryClient
from agent.schema import make_point
from agent.writer import make_writer
from placement.policies import DEFAULT_MODEL
from placement.service import read_telemetry, run_service


@pytest.mark.parametrize("policy", ["least-loaded", "rl"])
def test_dry_run_proposes_move_off_the_hot_host(
    tmp_path: Path, influxdb_telemetry: TelemetryConfig, policy: str
) -> None:
    if policy == "rl" and not DEFAULT_MODEL.exists():
        pytest.skip(f"{DEFAULT_MODEL} not trained yet")
    _write_telemetry(influxdb_telemetry)
    cfg = _config(tmp_path, influxdb_telemetry, policy=policy)
    [d] = run_service(cfg, dry_run=True, once=True)
    assert d.policy == policy
    assert d.instance in ("fw1", "fw2", "fw3") and d.src_host == "nfv1"
    assert d.dst_host in ("nfv2", "nfv3")
    assert not d.executed and "dry run" in d.reason
    q = QueryClient(influxdb_telemetry)
    rows = q.rows('SELECT * FROM "placement"')
    assert len(rows) == 1 and rows[0]["instance"] == d.instance and rows[0]["policy"] == policy
    ev = q.rows('SELECT * FROM "event" WHERE "kind" = \'placement\'')
    assert len(ev) == 1 and d.instance in ev[0]["title"]


def test_missing_model_falls_back_to_heuristic(tmp_path: Path, influxdb_telemetry: TelemetryConfig) -> None:
    _write_telemetry(influxdb_telemetry)
    cfg = _config(tmp_path, influxdb_telemetry, policy="rl", model=tmp_path / "absent.pt")
    [d] = run_service(cfg, dry_run=True, once=True)
    assert d.policy == "least-loaded" and "model unavailable" in d.reason
    assert d.src_host == "nfv1"


def test_no_telemetry_means_no_decision(tmp_path: Path, influxdb_telemetry: TelemetryConfig) -> None:
    cfg = _config(tmp_path, influxdb_telemetry, policy="least-loaded")
    [d] = run_service(cfg, dry_run=True, once=True)
    assert d.policy == "none" and not d.instance and "no usable telemetry" in d.reason


def test_stale_telemetry_falls_back_to_heuristic(tmp_path: Path, influxdb_telemetry: TelemetryConfig) -> None:
    _write_telemetry(influxdb_telemetry, age_s=40.0)
    cfg = _config(tmp_path, influxdb_telemetry, policy="rl", window_s=5, stale_after_s=30)
    [d] = run_service(cfg, dry_run=True, once=True)
    assert d.policy == "least-loaded" and "telemetry stale" in d.reason
    assert d.src_host == "nfv1"


def test_drops_count_as_offered_load(tmp_path: Path, influxdb_telemetry: TelemetryConfig) -> None:
    """A CPU-starved NF processes at its host's capacity; only its input-buffer drops show the rest
    of its demand. On nfv1 `hot` processes 50 kpps and drops 20 kpps, `warm` processes 20 kpps:
    by processed packets alone nfv1 is at 70 % (under the 80 % threshold, nothing to do); with the
    drops it carries 90 kpps and the service must move an NF off it."""
    now = time.time_ns()
    load = {"hot": ("nfv1", 50000.0, 20000.0), "warm": ("nfv1", 20000.0, 0.0), "cold": ("nfv2", 1000.0, 0.0)}
    pts = []
    for k in range(5):
        t = now - (4 - k) * 1_000_000_000
        for h in HOSTS:
            pts.append(make_point("host", {"host": h}, {"cpu_percent": 50.0, "cpu_count": 2}, t))
        for inst, (h, pps, drops) in load.items():
            pts.append(
                make_point(
                    "nf",
                    {"host": h, "instance": inst, "nf_type": "counter", "role": "primary"},
                    {"up": True, "processed_pps": pps, "drops_pps": drops, "latency_ms": 5.0},
                    t,
                )
            )
    make_writer(influxdb_telemetry).write([p.to_line() for p in pts])
    cfg = _config(tmp_path, influxdb_telemetry, policy="least-loaded")
    view = read_telemetry(QueryClient(influxdb_telemetry), cfg)
    assert view.snapshot.vnf_rate_pps[0, view.vnfs.index("hot")] == pytest.approx(70000.0)
    assert view.snapshot.host_pps[0, view.hosts.index("nfv1")] == pytest.approx(90000.0)
    [d] = run_service(cfg, dry_run=True, once=True)
    assert d.instance in ("hot", "warm") and d.src_host == "nfv1" and d.dst_host == "nfv3", d
