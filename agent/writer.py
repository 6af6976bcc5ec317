"""Batched telemetry writes to InfluxDB 1.x, 2.x or 3.x, with the disk spool behind them.

Two backends behind one small interface (:class:`LineWriter`):

* :class:`V1Writer` — InfluxDB 1.x ``POST /write`` (line protocol, ns precision) through the
  ``influxdb`` package. Debian's influxd 1.6.7 has no ``/api/v2`` endpoints (influxdb-client gets
  404 there), so this is what runs in the lab.
* :class:`V2Writer` — InfluxDB 2.x/3.x ``/api/v2/write`` through ``influxdb-client`` (token auth),
  synchronous so a failure is known immediately and the batch goes to the spool.

:class:`TelemetrySink` is what the agent (and every command emitting an event) uses: ``submit``
points, ``flush`` once per interval. A flush first back-fills the spool (oldest first), then writes
the new batch; if anything fails the new batch goes to the spool, so InfluxDB outages cost nothing
within the spool bound.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from influxdb.exceptions import InfluxDBClientError, InfluxDBServerError
from influxdb_client.client.influxdb_client import InfluxDBClient as V2Client
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

from agent.config import TelemetryConfig, v1_client
from agent.schema import Point, validate
from agent.spool import Spool

log = logging.getLogger(__name__)


class WriteError(RuntimeError):
    """InfluxDB did not accept a batch (unreachable, auth, bad database); message says which."""


class LineWriter(Protocol):
    """Writes a batch of line-protocol lines (ns timestamps) or raises :class:`WriteError`."""

    def write(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


class V1Writer:
    """InfluxDB 1.x ``/write`` via the ``influxdb`` client (user/password auth, ``database``)."""

    def __init__(self, conf: TelemetryConfig) -> None:
        self.conf = conf
        self.client = v1_client(conf)

    def write(self, lines: list[str]) -> None:
        params: dict[str, Any] = {"db": self.conf.database, "precision": "n"}
        if self.conf.retention_policy:
            params["rp"] = self.conf.retention_policy
        try:
            self.client.write("\n".join(lines), params=params, protocol="line")
        except InfluxDBClientError as exc:
            raise WriteError(f"InfluxDB {self.conf.url} rejected the write: {exc}") from exc
        except InfluxDBServerError as exc:
            raise WriteError(f"InfluxDB {self.conf.url} server error: {exc}") from exc
        except Exception as exc:  # requests' connection errors and timeouts
            raise WriteError(f"InfluxDB {self.conf.url} unreachable: {type(exc).__name__}: {exc}") from exc

    def ensure_database(self) -> None:
        """``CREATE DATABASE`` (idempotent in InfluxQL); the influxdb role does this on real hosts."""
        try:
            self.client.create_database(self.conf.database)
        except Exception as exc:
            raise WriteError(f"InfluxDB {self.conf.url}: cannot create database "
                             f"{self.conf.database!r}: {exc}") from exc

    def close(self) -> None:
        self.client.close()


class V2Writer:
    """InfluxDB 2.x/3.x ``/api/v2/write`` via ``influxdb-client`` (token, org, bucket)."""

    def __init__(self, conf: TelemetryConfig) -> None:
        self.conf = conf
        self.client = V2Client(url=conf.url, token=conf.token, org=conf.org,
                               timeout=int(conf.timeout_s * 1000), retries=False)
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str]) -> None:
        try:
            self.api.write(bucket=self.conf.write_bucket, org=self.conf.org, record=lines,
                           write_precision=WritePrecision.NS,  # type: ignore[arg-type]
                           )
        except Exception as exc:  # ApiException, urllib3 connection errors
            raise WriteError(f"InfluxDB {self.conf.url} write failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]


def make_writer(conf: TelemetryConfig) -> V1Writer | V2Writer:
    """The backend for ``conf.flavor``."""
    return V1Writer(conf) if conf.flavor == "v1" else V2Writer(conf)


@dataclass
class SinkCounters:
    """Cumulative counters of a :class:`TelemetrySink` (reported in the ``agent`` measurement)."""

    points_written_total: int = 0
    backfilled_total: int = 0
    write_errors_total: int = 0


class TelemetrySink:
    """Validated, batched writes with the disk spool as fallback (see module doc)."""

    def __init__(self, writer: LineWriter, spool: Spool, batch_max_points: int = 5000,
                 backfill_per_flush: int = 50_000) -> None:
        self.writer = writer
        self.spool = spool
        self.batch_max_points = batch_max_points
        self.backfill_per_flush = backfill_per_flush
        self.counters = SinkCounters()
        self._pending: list[str] = []

    def submit(self, points: Iterable[Point]) -> None:
        """Queue points for the next :meth:`flush`; raises ``SchemaError`` for a bad point."""
        for p in points:
            validate(p)
            self._pending.append(p.to_line())

    def submit_lines(self, lines: Iterable[str]) -> None:
        """Queue already-serialised (and already validated) lines."""
        self._pending.extend(lines)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self, backfill: bool = True) -> bool:
        """Back-fill the spool (unless ``backfill`` is False), then write the queued batch; spool
        it on failure. Returns True when everything (spool and new batch) reached InfluxDB.
        """
        batch, self._pending = self._pending, []
        try:
            if backfill and not self.spool.is_empty():
                # Bounded per flush, so a long back-fill never stalls collection for long.
                n = self.spool.drain(self._write, self.batch_max_points, self.backfill_per_flush)
                if n:
                    self.counters.backfilled_total += n
                    log.info("back-filled %d spooled points", n)
            for i in range(0, len(batch), self.batch_max_points):
                chunk = batch[i : i + self.batch_max_points]
                try:
                    self._write(chunk)
                except WriteError:
                    batch = batch[i:]
                    raise
            return True
        except WriteError as exc:
            self.counters.write_errors_total += 1
            log.warning("%s; spooling %d points", exc, len(batch))
            self.spool.append(batch)
            return False

    def _write(self, lines: list[str]) -> None:
        if lines:
            self.writer.write(lines)
            self.counters.points_written_total += len(lines)

    def close(self) -> None:
        """Flush what is queued (to InfluxDB or the spool) and close the connection."""
        if self._pending:
            self.flush()
        self.writer.close()


def open_sink(conf: TelemetryConfig, spool_dir: Path, spool_max_bytes: int,
              batch_max_points: int = 5000) -> TelemetrySink:
    """A sink for ``conf`` with its spool under ``spool_dir``."""
    return TelemetrySink(make_writer(conf), Spool(Path(spool_dir), spool_max_bytes), batch_max_points)
