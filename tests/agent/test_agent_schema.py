"""The telemetry schema: documented, self-consistent, covering the NF metrics contract, and strict."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import schema
from agent.collectors.nf import _ALIASES, to_fields
from agent.query import QueryClient
from agent.schema import SchemaError, make_point
from agent.writer import V1Writer
from nf.metrics import merge, summarize

REPO = Path(__file__).resolve().parents[2]


def test_docs_match_module() -> None:
    doc = (REPO / "docs" / "telemetry.md").read_text()
    assert doc == schema.render_markdown(), "regenerate: deftctl agent schema --markdown > docs/telemetry.md"


def test_names_are_lower_snake_case_and_unique() -> None:
    schema.check_names()


def test_every_nf_metric_of_the_contract_has_a_field() -> None:
    """nf/metrics.py summarize() is THE NF metric set: each of its keys must land in the schema."""
    raw = summarize(merge([]), now_ns=1)
    missing = [k for k in raw if k != "ts_ns" and schema.NF.field(_ALIASES.get(k, k)) is None]
    assert missing == []
    fields = to_fields(raw)
    assert len(fields) == len(raw) - 1  # all but ts_ns (the agent stamps its own tick time)
    make_point("nf", {"host": "h", "instance": "i1", "nf_type": "counter"}, fields, 1)


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "message"),
    [
        ("nope", {"host": "h"}, {"x": 1}, "unknown measurement"),
        ("host", {}, {"cpu_percent": 1.0}, "missing required tag 'host'"),
        ("host", {"host": "h", "flow": "1.2.3.4"}, {"cpu_percent": 1.0}, "unknown tag 'flow'"),
        ("host", {"host": "h"}, {"cpu_pct": 1.0}, "unknown field 'cpu_pct'"),
        ("host", {"host": "h"}, {"cpu_count": 2.5}, "host.cpu_count: expected int"),
        ("host", {"host": "h"}, {"cpu_count": True}, "expected int, got bool"),
        ("event", {"host": "h", "kind": "migration"}, {"title": 3}, "event.title: expected str"),
        ("host", {"host": "h"}, {"cpu_percent": float("nan")}, "not finite"),
        ("host", {"host": "h"}, {}, "at least one field"),
    ],
)
def test_bad_points_are_rejected_with_the_key_named(measurement, tags, fields, message) -> None:
    with pytest.raises(SchemaError, match=message):
        make_point(measurement, tags, fields, 1)


def test_line_protocol_escaping_round_trips_through_influxdb(influxdb_telemetry) -> None:
    """Tag values with spaces/commas/equals and string fields with quotes come back unchanged."""
    p = make_point("event", {"host": "h 1,x=y", "kind": "migration", "instance": "nf-1"},
                   {"title": 'moved "a", b=c', "text": "line1\\nline2 back\\\\slash", "ok": True,
                    "duration_ms": 12, "flows": 3}, 1_700_000_000_123_456_789)
    w = V1Writer(influxdb_telemetry)
    w.write([p.to_line()])
    rows = QueryClient(influxdb_telemetry).rows('SELECT * FROM "event"')
    assert len(rows) == 1
    r = rows[0]
    assert r["time"] == 1_700_000_000_123_456_789
    assert r["host"] == "h 1,x=y"
    assert r["title"] == 'moved "a", b=c'
    assert r["text"] == "line1\\nline2 back\\\\slash"
    assert r["ok"] is True and r["flows"] == 3 and r["duration_ms"] == 12.0
    assert QueryClient(influxdb_telemetry).schema_problems() == []
