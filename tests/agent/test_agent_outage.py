"""InfluxDB really stopped for 30 s while the agent keeps running: no point is lost once it is back."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from agent.influxd import InfluxdServer
from agent.query import QueryClient
from lab.netns import Topology


def _status(state_dir: Path) -> dict:
    try:
        return json.loads((state_dir / "agent.status.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait(pred, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_influxdb_down_30s_nothing_lost(tmp_path: Path, write_agent_files, agent_cmd) -> None:
    srv = InfluxdServer(tmp_path / "influx")
    srv.start()
    state = tmp_path / "agent" / "state"
    conf = write_agent_files(tmp_path / "agent", srv.telemetry_config(), interval_s=1.0,
                             collect_nics=False)
    try:
        with Topology("ag") as topo:
            proc = topo.start(agent_cmd("run", "--config", str(conf)))
            _wait(lambda: _status(state).get("ticks", 0) >= 3, 30, "3 ticks")
            srv.stop()
            down_at = _status(state)["ticks"]
            time.sleep(30)
            during = _status(state)
            assert during["ticks"] >= down_at + 25, "the agent kept ticking while InfluxDB was down"
            assert during["write_errors_total"] >= 25
            spooled = json.loads((state / "agent.status.json").read_text())
            assert proc.poll() is None
            srv.start()
            _wait(lambda: _status(state).get("backfilled_total", 0) > 0, 30, "back-fill")
            back = _status(state)["ticks"]
            _wait(lambda: _status(state).get("ticks", 0) >= back + 2, 30, "2 more ticks")
            proc.terminate()
            proc.wait(timeout=20)
            assert proc.returncode == 0
        final = _status(state)
        qc = QueryClient(srv.telemetry_config())
        ticks = final["ticks"]
        assert spooled["ticks"] < ticks
        # one host point and one agent point per tick: every one of them is in InfluxDB
        assert qc.count("host", "cpu_percent") == ticks
        assert qc.count("agent", "collect_ms") == ticks
        times = [r["time"] for r in qc.rows('SELECT "cpu_percent" FROM "host"')]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 2_000_000_000, "no hole in the 1 s series"
        assert final["backfilled_total"] >= 2 * 25
        assert qc.rows('SELECT last("spool_dropped_total") FROM "agent"')[0]["last"] == 0
        assert qc.schema_problems() == []
    finally:
        srv.stop()
