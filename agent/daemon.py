"""The agent daemon: every interval, collect from every source and write one batch.

The loop is single-threaded on purpose: one tick = collect (host, NICs, OVS, NF instances) ->
validate against :mod:`agent.schema` -> add the agent's own health point -> ``TelemetrySink.flush``
(back-fill the spool, write the batch, or spool it). Ticks are scheduled on a fixed grid
(``start + k * interval``) so a slow tick does not drift the series; a tick that overruns
skips the missed slots instead of bursting. A failing collector is logged and counted
(``agent.collector_errors_total``) and the others keep reporting: a serving agent keeps serving.
``SIGTERM``/``SIGINT`` stop the loop after the current tick and flush what is queued.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import asdict
from types import FrameType

from agent.collectors.base import Collector
from agent.collectors.host import HostCollector
from agent.collectors.nf import NfCollector
from agent.collectors.nic import NicCollector
from agent.collectors.ovs import OvsCollector
from agent.commands import STATUS_FILE
from agent.config import AgentConfig, TelemetryConfig
from agent.registry import Registry
from agent.schema import Point, SchemaError, make_point
from agent.writer import TelemetrySink, open_sink

log = logging.getLogger(__name__)


def default_collectors(conf: AgentConfig, registry: Registry) -> list[Collector]:
    """The collectors enabled in ``conf`` (NF instances always)."""
    host = conf.hostname
    cols: list[Collector] = []
    if conf.collect_host:
        cols.append(HostCollector(host))
    if conf.collect_nics:
        cols.append(NicCollector(host, conf.interfaces))
    if conf.collect_ovs:
        cols.append(OvsCollector(host, conf.ovs_rundir))
    cols.append(NfCollector(host, registry))
    return cols


class Agent:
    """Collect -> validate -> write, every ``conf.interval_s`` seconds (see module doc)."""

    def __init__(self, conf: AgentConfig, sink: TelemetrySink, collectors: list[Collector],
                 registry: Registry) -> None:
        self.conf = conf
        self.host = conf.hostname
        self.sink = sink
        self.collectors = collectors
        self.registry = registry
        self.stop_event = threading.Event()
        self.collector_errors_total = 0
        self.ticks = 0

    def tick(self, now_ns: int | None = None) -> int:
        """One interval: collect everything, write it; returns the number of points produced."""
        now_ns = now_ns or time.time_ns()
        t0 = time.perf_counter()
        points: list[Point] = []
        for c in self.collectors:
            try:
                points.extend(c.collect(now_ns))
            except (SchemaError, Exception) as exc:
                self.collector_errors_total += 1
                log.warning("collector %s failed: %s", c.name, exc)
        collect_ms = (time.perf_counter() - t0) * 1000.0
        points.append(self._self_point(now_ns, collect_ms))
        self.sink.submit(points)
        self.sink.flush()
        self.ticks += 1
        self._write_status()
        return len(points)

    def _write_status(self) -> None:
        """Heartbeat for ``deftctl agent status`` (a separate process): one small atomic file."""
        doc = {"pid": os.getpid(), "host": self.host, "last_tick_unix": time.time(), "ticks": self.ticks,
               "interval_s": self.conf.interval_s, "collector_errors_total": self.collector_errors_total,
               **asdict(self.sink.counters)}
        try:
            self.conf.state_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.conf.state_dir / f".{STATUS_FILE}.{os.getpid()}"
            tmp.write_text(json.dumps(doc))
            tmp.replace(self.conf.state_dir / STATUS_FILE)
        except OSError as exc:
            log.warning("cannot write status file: %s", exc)

    def _self_point(self, now_ns: int, collect_ms: float) -> Point:
        st = self.sink.spool.stats()
        c = self.sink.counters
        try:
            n_inst = len(self.registry.all())
        except Exception:
            n_inst = 0
        return make_point("agent", {"host": self.host}, {
            "points_written_total": c.points_written_total,
            "points_spooled": st.points,
            "spool_bytes": st.bytes,
            "spool_dropped_total": st.dropped_total,
            "backfilled_total": c.backfilled_total,
            "write_errors_total": c.write_errors_total,
            "collect_ms": collect_ms,
            "collector_errors_total": self.collector_errors_total,
            "nf_instances": n_inst,
        }, now_ns)

    def run(self, max_ticks: int = 0) -> None:
        """Tick on a fixed grid until :meth:`stop` (or ``max_ticks`` ticks when > 0)."""
        interval = self.conf.interval_s
        start = time.monotonic()
        k = 0
        log.info("agent on %s: every %.3g s, %d collectors", self.host, interval, len(self.collectors))
        while not self.stop_event.is_set():
            try:
                self.tick()
            except Exception:  # never die on a tick (e.g. the spool disk is full): log and go on
                log.exception("tick failed")
            if max_ticks and self.ticks >= max_ticks:
                break
            k = max(k + 1, int((time.monotonic() - start) / interval) + 1)
            self.stop_event.wait(max(0.0, start + k * interval - time.monotonic()))
        self.sink.close()
        log.info("agent stopped after %d ticks", self.ticks)

    def stop(self) -> None:
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        def _handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            self.stop()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)


def build_agent(conf: AgentConfig, telemetry: TelemetryConfig) -> Agent:
    """An :class:`Agent` wired from config files (what ``deftctl agent run`` does)."""
    registry = Registry(conf.state_dir)
    sink = open_sink(telemetry, conf.spool_dir, conf.spool_max_bytes, conf.batch_max_points)
    return Agent(conf, sink, default_collectors(conf, registry), registry)
