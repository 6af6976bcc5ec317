"""Read telemetry back with InfluxQL — the one query dialect InfluxDB 1.x, 2.x and 3.x all answer.

Used by the placement service (observations from live telemetry), the dashboards tests (every
panel's query must return data) and ``deftctl agent query``. 1.x is asked with user/password;
2.x/3.x through their v1-compatible ``/query`` endpoint with ``Authorization: Token``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.config import TelemetryConfig, v1_client
from agent.schema import MEASUREMENTS, Measurement, Point, SchemaError, validate


class QueryError(RuntimeError):
    """The query failed (unreachable server, InfluxQL error); the message holds the query."""


@dataclass(frozen=True)
class Series:
    """One result series: measurement name, GROUP BY tags, column names and rows."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        """Rows as dicts (column -> value), tags merged in."""
        return [{**self.tags, **dict(zip(self.columns, v, strict=False))} for v in self.values]


class QueryClient:
    """InfluxQL over HTTP for any InfluxDB flavor described by a :class:`TelemetryConfig`."""

    def __init__(self, conf: TelemetryConfig) -> None:
        self.conf = conf
        self.client = v1_client(conf)

    def query(self, influxql: str, epoch: str = "ns") -> list[Series]:
        """Run ``influxql`` against the configured database; timestamps as ints in ``epoch`` units."""
        try:
            raw = self.client.query(influxql, database=self.conf.database, epoch=epoch, raise_errors=True)
        except Exception as exc:
            raise QueryError(f"{self.conf.url}: {influxql!r}: {type(exc).__name__}: {exc}") from exc
        out: list[Series] = []
        for res in raw if isinstance(raw, list) else [raw]:
            for s in res.raw.get("series", []):
                out.append(Series(s.get("name", ""), dict(s.get("tags") or {}), list(s.get("columns", [])),
                                  [list(v) for v in s.get("values", [])]))
        return out

    def rows(self, influxql: str, epoch: str = "ns") -> list[dict[str, Any]]:
        """All rows of all series of ``influxql`` as dicts."""
        return [r for s in self.query(influxql, epoch) for r in s.rows()]

    def count(self, measurement: str, field: str, where: str = "") -> int:
        """Number of points of ``measurement`` with ``field`` set (optionally filtered)."""
        cond = f" WHERE {where}" if where else ""
        rows = self.rows(f'SELECT count("{field}") FROM "{measurement}"{cond}')
        return int(sum(int(r.get("count") or 0) for r in rows))

    def ping(self) -> str:
        """Server version (raises :class:`QueryError` when unreachable)."""
        try:
            return str(self.client.ping())
        except Exception as exc:
            raise QueryError(f"{self.conf.url}: unreachable: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.client.close()

    def schema_problems(self) -> list[str]:
        """Compare what the database holds with :mod:`agent.schema`; empty list = conforms.

        Checks every measurement is known, every field key exists with the declared type
        (InfluxDB's own per-shard field types), every series carries the required tags and no
        unknown tag, and every stored point has only schema-typed values.
        """
        problems: list[str] = []
        inf_types = {"int": "integer", "float": "float", "bool": "boolean", "str": "string"}
        for s in self.query("SHOW MEASUREMENTS"):
            for (name,) in s.values:
                m = MEASUREMENTS.get(name)
                if m is None:
                    problems.append(f"unknown measurement {name!r}")
                    continue
                problems += _measurement_problems(self, m, inf_types)
        return problems


def _measurement_problems(qc: QueryClient, m: Measurement, inf_types: dict[str, str]) -> list[str]:
    problems: list[str] = []
    for row in qc.rows(f'SHOW FIELD KEYS FROM "{m.name}"'):
        spec = m.field(row["fieldKey"])
        if spec is None:
            problems.append(f"{m.name}: unknown field {row['fieldKey']!r}")
        elif inf_types[spec.kind] != row["fieldType"]:
            problems.append(f"{m.name}.{spec.name}: stored as {row['fieldType']}, schema says {spec.kind}")
    for row in qc.rows(f'SHOW SERIES FROM "{m.name}"'):
        key = row["key"]
        tags = dict(part.split("=", 1) for part in _split_series_key(key)[1:])
        missing = [t.name for t in m.tags if t.required and t.name not in tags]
        unknown = [k for k in tags if m.tag(k) is None]
        if missing or unknown:
            problems.append(f"{m.name}: series {key!r}: missing tags {missing}, unknown tags {unknown}")
    tag_names = {t.name for t in m.tags}
    for s in qc.query(f'SELECT * FROM "{m.name}"'):
        for v in s.values:
            row = dict(zip(s.columns, v, strict=False))
            fields = {k: x for k, x in row.items() if k != "time" and k not in tag_names and x is not None}
            if not fields:
                problems.append(f"{m.name}: point at {row.get('time')} has no fields")
                continue
            tags = {k: x for k, x in row.items() if k in tag_names and x}
            try:
                validate(Point(m.name, tags, fields, int(row["time"])))
            except SchemaError as exc:
                problems.append(f"point at {row.get('time')}: {exc}")
    return problems


def _split_series_key(key: str) -> list[str]:
    r"""Split ``m,a=1,b=x\,y`` on unescaped commas."""
    parts, cur, esc = [], "", False
    for ch in key:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts
