"""Emit ``event`` (and other one-off) points from short-lived processes: commands, placement.

Why not through the daemon: the commands run over SSH and must record what they did even when the
daemon is down. They write directly (one small batch) and, if InfluxDB is unreachable or not
configured, drop the points into the host's disk spool; the daemon back-fills them later. So an
event is never lost within the spool bound, and emitting one never fails the command.
"""

from __future__ import annotations

import logging
import time

from agent.config import AgentConfig, TelemetryConfig, load_telemetry
from agent.schema import FieldValue, Point, make_point, validate
from agent.spool import Spool
from agent.writer import TelemetrySink, make_writer

log = logging.getLogger(__name__)


def event_point(host: str, kind: str, title: str, text: str = "", instance: str = "",
                ok: bool = True, duration_ms: float | None = None, time_ns: int | None = None,
                **extra: FieldValue | None) -> Point:
    """An ``event`` point (Grafana annotation: ``title`` + ``text``, tags ``kind``/``instance``)."""
    fields: dict[str, FieldValue | None] = {"title": title, "text": text or title, "ok": ok,
                                            "duration_ms": duration_ms, **extra}
    return make_point("event", {"host": host, "kind": kind, "instance": instance},
                      {k: v for k, v in fields.items() if v is not None}, time_ns or time.time_ns())


def emit(points: list[Point], conf: AgentConfig, telemetry: TelemetryConfig | None = None) -> bool:
    """Write ``points`` now, or spool them; True when InfluxDB acknowledged them."""
    spool = Spool(conf.spool_dir, conf.spool_max_bytes)
    if telemetry is None:
        try:
            telemetry = load_telemetry(conf.telemetry_file)
        except Exception as exc:  # no/bad telemetry.yml: keep the event for the daemon
            log.warning("telemetry config unusable (%s); spooling %d point(s)", exc, len(points))
            for p in points:
                validate(p)
            spool.append([p.to_line() for p in points])
            return False
    sink = TelemetrySink(make_writer(telemetry), spool)
    sink.submit(points)
    ok = sink.flush(backfill=False)  # the daemon back-fills; a command stays quick
    sink.writer.close()
    return ok
