"""Per-NF-instance metrics (``nf`` measurement) from each instance's control API.

The instances are those in the host's registry (:mod:`agent.registry`, filled by
``deftctl agent nf start``). For each one the collector calls ``ControlClient.metrics()`` of
``nf/control.py`` (``nf.metrics.summarize()``: DEFT's metric set + FT counters), keeps the fields
the schema knows, derives per-interval rates from the cumulative counters, and adds the
process's CPU and RSS for local-process instances. An instance
that does not answer gets a point with ``up=false`` (so dashboards show it as down), never an
exception that would stop the other instances' telemetry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil

from agent.collectors.base import RateTracker
from agent.registry import InstanceRecord, Registry
from agent.schema import NF, FieldValue, Point, make_point

log = logging.getLogger(__name__)

# nf/metrics.py summarize() names that differ from the schema's (lower_snake_case) names.
_ALIASES: Mapping[str, str] = {"throughput_Bps": "throughput_bps"}

# cumulative counter (nf/metrics.py) -> per-interval rate field computed by the agent
_RATES: Mapping[str, str] = {
    "released": "rate_pps",
    "released_bytes": "rate_bps",
    "processed": "processed_pps",
    "input_dropped": "drops_pps",
}

MetricsFetcher = Callable[[InstanceRecord, float], Mapping[str, Any]]


def control_metrics(rec: InstanceRecord, timeout_s: float) -> Mapping[str, Any]:
    """``ControlClient.metrics()`` of the instance's control API (nf/control.py)."""
    # Lazy: hosts that only run the agent (controller) never load the NF engine.
    from nf.control import ControlClient  # noqa: PLC0415

    with ControlClient(rec.control, timeout_s) as client:
        m = client.metrics()
    if not isinstance(m, Mapping):
        raise TypeError(f"{rec.instance}: metrics() returned {type(m).__name__}, expected a mapping")
    return m


def to_fields(raw: Mapping[str, Any]) -> dict[str, FieldValue]:
    """Keep the metrics the schema knows (with their declared kinds), under schema names."""
    out: dict[str, FieldValue] = {}
    for k, v in raw.items():
        name = _ALIASES.get(k, k)
        spec = NF.field(name)
        if spec is None or v is None:
            continue
        if spec.kind == "int" and isinstance(v, int | float) and not isinstance(v, bool):
            out[name] = int(v)
        elif spec.kind == "float" and isinstance(v, int | float) and not isinstance(v, bool):
            out[name] = float(v)
        elif spec.kind == "bool" and isinstance(v, bool):
            out[name] = v
    return out


class NfCollector:
    """One ``nf`` point per registered instance (see module doc)."""

    name = "nf"

    def __init__(self, host: str, registry: Registry, fetch: MetricsFetcher = control_metrics,
                 timeout_s: float = 0.5, max_workers: int = 8) -> None:
        self.host = host
        self.registry = registry
        self.fetch = fetch
        self.timeout_s = timeout_s
        self.rates = RateTracker()
        self._procs: dict[str, psutil.Process] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="nf-metrics")

    def _proc_fields(self, rec: InstanceRecord) -> dict[str, FieldValue]:
        if rec.launcher != "process" or not rec.pid:
            return {}
        p = self._procs.get(rec.instance)
        try:
            if p is None or p.pid != rec.pid:
                p = psutil.Process(rec.pid)
                p.cpu_percent(None)
                self._procs[rec.instance] = p
                return {"rss_bytes": int(p.memory_info().rss)}
            with p.oneshot():
                return {"cpu_percent": float(p.cpu_percent(None)), "rss_bytes": int(p.memory_info().rss)}
        except psutil.Error:
            self._procs.pop(rec.instance, None)
            return {}

    def _fetch(self, rec: InstanceRecord) -> dict[str, FieldValue]:
        try:
            fields = to_fields(self.fetch(rec, self.timeout_s))
            fields["up"] = True
            return fields
        except Exception as exc:  # unreachable instance, protocol error: report it as down
            log.debug("%s: metrics failed: %s", rec.instance, exc)
            return {"up": False}

    def collect(self, now_ns: int) -> list[Point]:
        points = []
        recs = self.registry.all()
        # Instances are polled concurrently: a hung one costs its timeout once, not once per peer.
        results = list(self._pool.map(self._fetch, recs)) if len(recs) > 1 else [self._fetch(r) for r in recs]
        for rec, fields in zip(recs, results, strict=True):
            tags = {"host": self.host, "instance": rec.instance, "nf_type": rec.nf_type,
                    "role": rec.role, "service": rec.service}
            counters = {k: int(v) for k, v in fields.items() if k in _RATES and isinstance(v, int)}
            fields.update(self.rates.rates(rec.instance, now_ns, counters, _RATES))
            fields.update(self._proc_fields(rec))
            points.append(make_point("nf", tags, fields, now_ns))
        names = {r.instance for r in recs}
        self.rates.forget_except(names)
        for gone in set(self._procs) - names:
            del self._procs[gone]
        return points
