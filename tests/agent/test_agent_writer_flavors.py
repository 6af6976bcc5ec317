"""Writer backends: v1 writes to InfluxDB 1.x; the v2 (influxdb-client) backend fails cleanly against
1.6.7 — no /api/v2 there — and its batch is spooled, not lost. (No 2.x/3.x server runs here.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent.config import TelemetryConfig
from agent.query import QueryClient
from agent.schema import make_point
from agent.spool import Spool
from agent.writer import TelemetrySink, V2Writer, WriteError, make_writer
from deftctl.config import ConfigError, from_dict


def _points(n: int):
    return [make_point("host", {"host": "ag-h1"}, {"cpu_percent": float(i)}, 1_700_000_000_000_000_000 + i)
            for i in range(n)]


def test_v1_writes_the_batch(tmp_path: Path, influxdb_telemetry) -> None:
    sink = TelemetrySink(make_writer(influxdb_telemetry), Spool(tmp_path / "s", 1 << 20))
    sink.submit(_points(7))
    assert sink.flush() is True
    assert QueryClient(influxdb_telemetry).count("host", "cpu_percent") == 7


def test_v2_against_influxdb_1x_spools_with_a_clear_error(tmp_path: Path, influxdb_telemetry) -> None:
    conf = replace(influxdb_telemetry, flavor="v2", token="t0ken", org="deft", bucket="deft")
    w = make_writer(conf)
    assert isinstance(w, V2Writer)
    with pytest.raises(WriteError, match="404"):
        w.write([p.to_line() for p in _points(1)])
    sink = TelemetrySink(w, Spool(tmp_path / "s", 1 << 20))
    sink.submit(_points(5))
    assert sink.flush() is False
    assert sink.spool.stats().points == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "influx:8086"}, "url: expected http(s)://host:port"),
        ({"flavor": "v2"}, "token: required when flavor is v2"),
        ({"flavor": "v3"}, "flavor"),
        ({"database": ""}, "database: must not be empty"),
        ({"passwd": "x"}, "unknown key(s): passwd"),
    ],
)
def test_bad_telemetry_config_is_rejected(data, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_dict(TelemetryConfig, data, "telemetry.yml")
