"""Disk spool: bounded, oldest-first back-fill, overflow counted exactly and reported by the agent."""

from __future__ import annotations

import contextlib
from pathlib import Path

from agent.collectors.host import HostCollector
from agent.config import AgentConfig, TelemetryConfig
from agent.daemon import Agent
from agent.influxd import InfluxdServer, free_port
from agent.query import QueryClient
from agent.registry import Registry
from agent.schema import make_point
from agent.spool import Spool
from agent.writer import TelemetrySink, V1Writer


def _lines(n: int, start: int = 1) -> list[str]:
    return [make_point("host", {"host": "ag-h1"}, {"cpu_percent": float(i)}, 1_700_000_000_000_000_000 + i)
            .to_line() for i in range(start, start + n)]


def test_drain_replays_oldest_first_and_stops_at_first_failure(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "spool", 1 << 20)
    sp.append(_lines(3, 1))
    sp.append(_lines(2, 10))
    got: list[str] = []

    def fail_on_second(lines: list[str]) -> None:
        if got:
            raise RuntimeError("down again")
        got.extend(lines)

    with contextlib.suppress(RuntimeError):
        sp.drain(fail_on_second, max_points=100)
    assert got == _lines(3, 1)
    assert sp.stats().points == 2  # the second segment stays for the next attempt
    sp.drain(got.extend, max_points=100)
    assert got == _lines(3, 1) + _lines(2, 10)
    assert sp.is_empty()


def test_overflow_drops_oldest_and_counts_exactly(tmp_path: Path) -> None:
    batch = _lines(10, 100)  # every batch below has lines of this same length
    size = sum(len(x) + 1 for x in batch)
    sp = Spool(tmp_path / "spool", max_bytes=size * 3)  # room for exactly 3 batches
    dropped = [sp.append(_lines(10, 100 * k)) for k in range(1, 6)]
    assert dropped == [0, 0, 0, 10, 10]
    st = sp.stats()
    assert (st.segments, st.points, st.dropped_total) == (3, 30, 20)
    kept: list[str] = []
    sp.drain(kept.extend, max_points=1000)
    assert kept == _lines(10, 300) + _lines(10, 400) + _lines(10, 500)  # the newest survive


def test_agent_reports_overflow_and_backfills_when_influxdb_returns(tmp_path: Path) -> None:
    """InfluxDB absent: the agent spools (bounded) and reports the drops in its own measurement
    once InfluxDB is reachable; every point that stayed in the spool arrives."""
    port = free_port()
    telemetry = TelemetryConfig(url=f"http://127.0.0.1:{port}", database="deft", timeout_s=1.0)
    conf = AgentConfig(host="ag-h1", state_dir=tmp_path / "state", spool_dir=tmp_path / "spool",
                       spool_max_bytes=8192, collect_nics=False, collect_ovs=False)
    reg = Registry(conf.state_dir)
    sink = TelemetrySink(V1Writer(telemetry), Spool(conf.spool_dir, conf.spool_max_bytes))
    agent = Agent(conf, sink, [HostCollector("ag-h1")], reg)
    ticks = 40
    for k in range(ticks):  # ~2 points (~500 B) per tick: 8 KiB cannot hold 40 ticks
        agent.tick(now_ns=1_700_000_000_000_000_000 + k * 1_000_000_000)
    st = sink.spool.stats()
    assert st.dropped_total > 0
    assert st.points + st.dropped_total == 2 * ticks
    with InfluxdServer(tmp_path / "influx", http_port=port) as srv:
        last = 1_700_000_000_000_000_000 + ticks * 1_000_000_000
        agent.tick(now_ns=last)
        assert sink.spool.is_empty()
        qc = QueryClient(srv.telemetry_config())
        stored_host = qc.count("host", "cpu_percent")
        assert stored_host + qc.count("agent", "collect_ms") == st.points + 2
        rows = qc.rows(f'SELECT "spool_dropped_total" FROM "agent" WHERE time = {last}')
        assert rows == [{"time": last, "spool_dropped_total": st.dropped_total}]
        assert qc.schema_problems() == []
