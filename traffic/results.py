"""Reports of generators and sinks, their merge, and JSON/CSV writers.

Why merge: a sink alone cannot see tail loss (packets after the last one it received) and cannot
tell "not sent" from "lost". The generator reports how many packets it sent per flow, so after a
run ``loss = sent - unique_received`` is exact per flow; the sink's own ``gap_loss``
(``max_seq + 1 - unique``) is kept as the sink-only estimate.

All counts are packets, bytes are L4 payload+headers as received, rates are pps / bytes per second,
latencies are microseconds (one-way: sink receive time - stamp send time, both CLOCK_REALTIME).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FlowSent:
    flow_id: int
    five_tuple: str
    sent: int


@dataclass
class GeneratorReport:
    profile: str
    method: str
    host: str
    started_ns: int
    duration_s: float  # first send -> stop
    sent: int
    target_pps: float  # mean offered rate of the pattern over duration_s
    achieved_pps: float
    send_errors: int
    stop_reason: str  # count | duration | signal | tcpreplay
    cpu_s: float = 0.0  # CPU time (user + sys) of the send loop; sent / cpu_s = pps per core
    flows: list[FlowSent] = field(default_factory=list)


@dataclass
class FlowResult:
    flow_id: int
    src: str
    received: int
    unique: int
    duplicates: int
    reordered: int
    out_of_window: int
    max_seq: int
    gap_loss: int  # max_seq + 1 - unique (sink-only loss estimate; blind to tail loss)
    bytes: int
    duration_s: float  # first -> last receive of this flow
    throughput_pps: float
    throughput_Bps: float  # noqa: N815 (unit suffix)
    latency_samples: int
    latency_mean_us: float
    latency_p50_us: float
    latency_p99_us: float
    latency_max_us: float
    sent: int = -1  # from the generator after merge; -1 = unknown
    loss: int = -1  # sent - unique after merge; -1 = unknown


@dataclass
class SinkReport:
    host: str
    mode: str
    ports: list[int]
    started_ns: int
    duration_s: float
    stop_reason: str  # idle | duration | count | signal
    received: int
    unique: int
    duplicates: int
    reordered: int
    malformed: int
    negative_latency: int
    bytes: int
    throughput_pps: float
    latency_p50_us: float
    latency_p99_us: float
    flows: list[FlowResult] = field(default_factory=list)
    sent: int = -1
    loss: int = -1


@dataclass
class RunSummary:
    """What ``deftctl traffic run`` prints: every generator and sink, and the merged totals."""

    profile: str
    generators: list[GeneratorReport]
    sinks: list[SinkReport]
    sent: int
    received: int
    unique: int
    loss: int
    duplicates: int
    reordered: int
    malformed: int
    target_pps: float
    achieved_pps: float
    latency_p50_us: float
    latency_p99_us: float


def merge(gens: list[GeneratorReport], sinks: list[SinkReport]) -> None:
    """Fill ``sent``/``loss`` of every sink flow (and sink total) from the generators' per-flow counts."""
    sent_by_flow = {f.flow_id: f.sent for g in gens for f in g.flows}
    for s in sinks:
        seen = set()
        for fr in s.flows:
            if fr.flow_id in sent_by_flow:
                fr.sent = sent_by_flow[fr.flow_id]
                fr.loss = fr.sent - fr.unique
                seen.add(fr.flow_id)
        # flows that were sent but never arrived at this sink are invisible to it
        s.sent = sum(sent_by_flow.values()) if len(sinks) == 1 else sum(
            sent_by_flow[fid] for fid in seen
        )
        s.loss = s.sent - s.unique


def summarize(profile: str, gens: list[GeneratorReport], sinks: list[SinkReport]) -> RunSummary:
    merge(gens, sinks)
    sent = sum(g.sent for g in gens)
    unique = sum(s.unique for s in sinks)
    return RunSummary(
        profile=profile,
        generators=gens,
        sinks=sinks,
        sent=sent,
        received=sum(s.received for s in sinks),
        unique=unique,
        loss=sent - unique,
        duplicates=sum(s.duplicates for s in sinks),
        reordered=sum(s.reordered for s in sinks),
        malformed=sum(s.malformed for s in sinks),
        target_pps=sum(g.target_pps for g in gens),
        achieved_pps=sum(g.achieved_pps for g in gens),
        latency_p50_us=max((s.latency_p50_us for s in sinks), default=0.0),
        latency_p99_us=max((s.latency_p99_us for s in sinks), default=0.0),
    )


def to_json(obj: Any) -> str:
    return json.dumps(dataclasses.asdict(obj), indent=2)


def write_json(obj: Any, path: Path | str) -> None:
    Path(path).write_text(to_json(obj) + "\n", encoding="utf-8")


def write_flows_csv(report: SinkReport, path: Path | str) -> None:
    """One row per flow plus a ``total`` row (flow_id -1)."""
    names = [f.name for f in dataclasses.fields(FlowResult)]
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for fr in report.flows:
            w.writerow(dataclasses.asdict(fr))
        total: dict[str, object] = {n: "" for n in names}
        total.update(
            flow_id=-1, src="total", received=report.received, unique=report.unique,
            duplicates=report.duplicates, reordered=report.reordered, bytes=report.bytes,
            duration_s=round(report.duration_s, 6), throughput_pps=round(report.throughput_pps, 3),
            latency_p50_us=report.latency_p50_us, latency_p99_us=report.latency_p99_us,
            sent=report.sent, loss=report.loss,
        )
        w.writerow(total)


def gen_from_dict(d: dict[str, Any]) -> GeneratorReport:
    flows = [FlowSent(**f) for f in d.pop("flows", [])]
    return GeneratorReport(**d, flows=flows)


def sink_from_dict(d: dict[str, Any]) -> SinkReport:
    flows = [FlowResult(**f) for f in d.pop("flows", [])]
    return SinkReport(**d, flows=flows)
