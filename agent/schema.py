"""THE telemetry schema of DEFT-RL: every measurement, tag and field (with units) the agent writes.

Why one module: the agent, the dashboards, the placement service and the tests all speak about the
same series. Everything that writes a point builds a :class:`Point` and calls :func:`validate`;
everything that reads uses the names below. ``docs/telemetry.md`` is generated from this module
(``deftctl agent schema --markdown``), and a test checks that the committed file matches.

InfluxDB practice followed here (docs.influxdata.com "schema design"):

* tags are the low-cardinality, indexed metadata used in ``WHERE``/``GROUP BY``: host, interface,
  bridge, port, NF instance, NF type, role, event kind. Never a flow 5-tuple or packet id: a tag
  per flow would create one series per flow and exhaust ``max-series-per-database``.
* fields are the values that change every point; names carry their unit (``_ms``, ``_bytes``,
  ``_pps``, ``_bps`` = bytes per second, ``_percent``). Counters (``_total`` suffix or plain
  packet/byte counts, the NF counters named as in ``nf/metrics.py``) are cumulative since the source
  started; rates are computed by the agent over its interval so dashboards need no ``derivative()``.
* timestamps are nanoseconds since the epoch (the agent's clock; lab hosts share one clock).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["float", "int", "bool", "str"]
FieldValue = float | int | bool | str

# Tag keys shared by several measurements.
HOST_TAG = "host"


class SchemaError(ValueError):
    """A point does not match the schema; the message names the measurement and the key."""


@dataclass(frozen=True)
class FieldSpec:
    """One field: name, value kind, unit (human text) and why it exists."""

    name: str
    kind: FieldKind
    unit: str
    doc: str


@dataclass(frozen=True)
class TagSpec:
    """One tag: name, whether every point must carry it, and what it identifies."""

    name: str
    required: bool
    doc: str


@dataclass(frozen=True)
class Measurement:
    """A measurement: its tags and fields. A point may omit fields, never required tags."""

    name: str
    doc: str
    tags: tuple[TagSpec, ...]
    fields: tuple[FieldSpec, ...]

    def tag(self, name: str) -> TagSpec | None:
        return next((t for t in self.tags if t.name == name), None)

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _f(name: str, kind: FieldKind, unit: str, doc: str) -> FieldSpec:
    return FieldSpec(name, kind, unit, doc)


_HOST = TagSpec(HOST_TAG, True, "inventory hostname of the host that produced the point")

_IF_COUNTERS: tuple[FieldSpec, ...] = (
    _f("rx_packets", "int", "packets", "received packets, cumulative"),
    _f("tx_packets", "int", "packets", "transmitted packets, cumulative"),
    _f("rx_bytes", "int", "bytes", "received bytes, cumulative"),
    _f("tx_bytes", "int", "bytes", "transmitted bytes, cumulative"),
    _f("rx_dropped", "int", "packets", "receive drops, cumulative"),
    _f("tx_dropped", "int", "packets", "transmit drops, cumulative"),
    _f("rx_errors", "int", "packets", "receive errors, cumulative"),
    _f("tx_errors", "int", "packets", "transmit errors, cumulative"),
    _f("rx_pps", "float", "packets/s", "receive rate over the last agent interval"),
    _f("tx_pps", "float", "packets/s", "transmit rate over the last agent interval"),
    _f("rx_bps", "float", "bytes/s", "receive byte rate over the last agent interval"),
    _f("tx_bps", "float", "bytes/s", "transmit byte rate over the last agent interval"),
    _f("drops_pps", "float", "packets/s", "rx+tx drop rate over the last agent interval"),
)

HOST = Measurement(
    "host",
    "Host resources, one point per host per interval.",
    (_HOST,),
    (
        _f("cpu_percent", "float", "% of all cores", "CPU busy over the last interval (100 = all busy)"),
        _f("cpu_count", "int", "cores", "logical CPUs"),
        _f("load1", "float", "runnable tasks", "1-minute load average"),
        _f("load5", "float", "runnable tasks", "5-minute load average"),
        _f("load15", "float", "runnable tasks", "15-minute load average"),
        _f("mem_total_bytes", "int", "bytes", "physical memory"),
        _f("mem_used_bytes", "int", "bytes", "memory in use (total - available)"),
        _f("mem_percent", "float", "%", "mem_used_bytes / mem_total_bytes"),
    ),
)

NIC = Measurement(
    "nic",
    "Per network interface of the host (its namespace), from /proc/net/dev.",
    (_HOST, TagSpec("interface", True, "interface name, e.g. eth0, br-phy")),
    _IF_COUNTERS,
)

OVS_PORT = Measurement(
    "ovs_port",
    "Per Open vSwitch port (VXLAN tunnels, NF ports, internal ports), from the OVSDB Interface table.",
    (
        _HOST,
        TagSpec("bridge", True, "OVS bridge, e.g. br-int"),
        TagSpec("port", True, "port name, e.g. vx-2 (tunnel to host 2) or an NF port"),
        TagSpec("port_type", True, "OVSDB interface type: vxlan, internal, system, ..."),
        TagSpec("remote_ip", False, "tunnel peer underlay IP (VXLAN ports only; bounded by host count)"),
    ),
    (*_IF_COUNTERS, _f("link_up", "bool", "", "link_state == up")),
)

def _counter(name: str, unit: str, doc: str) -> FieldSpec:
    return FieldSpec(name, "int", unit, doc + ", cumulative since the instance started")


NF = Measurement(
    "nf",
    "Per NF instance on this host: DEFT's metric set and the fault-tolerance counters of nf/metrics.py "
    "(`summarize()`, read through the instance's control API), plus per-interval rates, liveness and "
    "process CPU/RSS added by the agent. Means and percentiles are since the instance started "
    "(nf/metrics.py); the `*_pps`/`rate_*` fields are over the last agent interval.",
    (
        _HOST,
        TagSpec("instance", True, "NF instance id (unique in the cluster)"),
        TagSpec("nf_type", True, "NF type, e.g. counter, firewall, nat, lb"),
        TagSpec("role", False, "primary or secondary"),
        TagSpec("service", False, "service chain / logical NF the instance belongs to"),
    ),
    (
        # added by the agent
        _f("up", "bool", "", "the control API answered this interval"),
        _f("rate_pps", "float", "packets/s", "released packets per second over the agent interval"),
        _f("rate_bps", "float", "bytes/s", "released bytes per second over the agent interval"),
        _f("processed_pps", "float", "packets/s", "processed packets per second over the agent interval"),
        _f("drops_pps", "float", "packets/s",
            "input drops per second (input buffer + socket buffer) over the agent interval"),
        _f("cpu_percent", "float", "% of one core", "CPU of the instance process (process launcher)"),
        _f("rss_bytes", "int", "bytes", "resident memory of the instance process (process launcher)"),
        # nf/metrics.py summarize(): DEFT's metric set
        _f("latency_ms", "float", "ms", "mean stamp -> release latency"),
        _f("latency_p50_ms", "float", "ms", "median latency (quarter-octave histogram, ~19 % resolution)"),
        _f("latency_p99_ms", "float", "ms", "99th percentile latency (same histogram)"),
        _f("throughput_pps", "float", "packets/s", "released packets / active time (first rx..last release)"),
        _f("throughput_bps", "float", "bytes/s",
            "released bytes / active time (nf/metrics.py: throughput_Bps)"),
        _f("input_buffer_max", "int", "packets", "max input buffer occupancy"),
        _f("output_buffer_max", "int", "packets", "max output buffer occupancy"),
        _f("time_in_input_buffer_ms", "float", "ms", "mean time in the input buffer"),
        _f("time_in_output_buffer_ms", "float", "ms", "mean time in the output buffer (output commit wait)"),
        _f("processing_time_ms", "float", "ms", "mean per-packet processing time"),
        _f("path_latency_ms", "float", "ms", "latency - input - output - processing (network + stamper)"),
        _f("commit_latency_ms", "float", "ms", "mean batch close -> last replica ack"),
        _f("commit_p99_ms", "float", "ms", "99th percentile commit latency"),
        _f("batch_size_mean", "float", "packets", "processed packets per closed batch"),
        # nf/metrics.py COUNTERS
        _counter("received", "packets", "datagrams read (data + duplicate sockets)"),
        _counter("processed", "packets", "packets run through the NF logic"),
        _counter("released", "packets", "packets released after output commit"),
        _counter("released_bytes", "bytes", "bytes of released packets"),
        _counter("migration_dropped", "packets", "packets of groups being handed over dropped (hold full)"),
        _counter("flows_expired", "flows", "flows forgotten after flow_idle_timeout_s without packets"),
        _counter("egress_errors", "packets", "released packets the egress socket failed to send"),
        _counter("recv_errors", "calls", "failed receive calls on a data socket (not \"nothing waiting\")"),
        _counter("nf_dropped", "packets", "packets the NF logic dropped on purpose (deny, no NAT port)"),
        _counter("dropped", "packets", "input-buffer tail drops (DEFT 'Packets Dropped')"),
        _counter("socket_dropped", "packets", "kernel receive-buffer overflows of the NF's sockets"),
        _counter("input_dropped", "packets", "dropped + socket_dropped: input lost before processing"),
        _counter("malformed", "packets", "bad shim / bad IPv4 / wrong worker"),
        _counter("duplicates", "packets", "(epoch, seq) already seen, dropped once"),
        _counter("reordered", "packets", "packets that waited in a reorder buffer"),
        _counter("gaps_skipped", "gaps", "sequence gaps given up after the reorder timeout"),
        _counter("stale_epoch", "packets", "packets of an older stamper epoch"),
        _counter("replica_logged", "packets", "duplicated input buffered as a replica"),
        _counter("replica_discarded", "packets", "replica input discarded after the primary committed"),
        _counter("replica_log_overflow", "packets", "replica input dropped, replica log full"),
        _counter("replayed", "packets", "replica input replayed after promote/handover"),
        _counter("forwarded", "packets", "packets of moved flows forwarded to their new owner"),
        _counter("batches", "batches", "batches closed"),
        _counter("deltas_sent", "messages", "DELTA messages sent (x replicas)"),
        _counter("deltas_applied", "messages", "DELTA/SNAPSHOT messages applied as a replica"),
        _counter("replicated_bytes", "bytes", "bytes of replication messages sent"),
        _counter("fenced_nacks", "messages", "FENCED answers received or sent"),
        _counter("global_updates", "updates", "global-state updates in the store"),
        _counter("failovers", "events", "promotions of this instance"),
        _counter("migrations_out", "flow groups", "flow groups handed over to another instance"),
        _counter("migrations_in", "flow groups", "flow groups taken over from another instance"),
    ),
)

EVENT = Measurement(
    "event",
    "Discrete events for Grafana annotations: failover, migration, placement decision, NF start/stop.",
    (
        _HOST,
        TagSpec("kind", True, "failover | migration | placement | nf_start | nf_stop | agent"),
        TagSpec("instance", False, "NF instance concerned, if any"),
    ),
    (
        _f("title", "str", "", "one-line summary (annotation title)"),
        _f("text", "str", "", "details (annotation text)"),
        _f("ok", "bool", "", "the action succeeded"),
        _f("duration_ms", "float", "ms", "how long the action took"),
        _f("src_host", "str", "", "source host (migration, failover)"),
        _f("dst_host", "str", "", "destination host (migration, placement)"),
        _f("flows", "int", "flows", "flows moved (migration)"),
    ),
)

PLACEMENT = Measurement(
    "placement",
    "One point per placement decision of the RL/baseline placement service (written by placement/).",
    (
        _HOST,
        TagSpec("policy", True, "policy name, e.g. ppo, greedy, ilp, random"),
    ),
    (
        _f("reward", "float", "", "reward of the last step"),
        _f("episode_return", "float", "", "cumulative reward of the running episode"),
        _f("migrations", "int", "migrations", "migrations issued by this decision"),
        _f("decision_ms", "float", "ms", "time to compute the decision"),
        _f("instance", "str", "", "instance moved (empty when the decision is 'stay')"),
        _f("target_host", "str", "", "host chosen for the instance"),
    ),
)

AGENT = Measurement(
    "agent",
    "The agent's own health: writes, disk spool and overflow, collection cost.",
    (_HOST,),
    (
        _f("points_written_total", "int", "points", "points acknowledged by InfluxDB, cumulative"),
        _f("points_spooled", "int", "points", "points currently buffered on disk"),
        _f("spool_bytes", "int", "bytes", "size of the disk spool"),
        _f("spool_dropped_total", "int", "points", "points discarded because the spool was full, cumulative"),
        _f("backfilled_total", "int", "points", "spooled points written once InfluxDB was back, cumulative"),
        _f("write_errors_total", "int", "writes", "failed write attempts, cumulative"),
        _f("collect_ms", "float", "ms", "time spent collecting this interval"),
        _f("collector_errors_total", "int", "errors", "collector failures, cumulative"),
        _f("nf_instances", "int", "instances", "NF instances registered on this host"),
    ),
)

MEASUREMENTS: Mapping[str, Measurement] = {
    m.name: m for m in (HOST, NIC, OVS_PORT, NF, EVENT, PLACEMENT, AGENT)
}

_KIND_TYPES: Mapping[FieldKind, tuple[type, ...]] = {
    "float": (float, int),
    "int": (int,),
    "bool": (bool,),
    "str": (str,),
}

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Point:
    """One telemetry point; ``time_ns`` is nanoseconds since the epoch."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int

    def to_line(self) -> str:
        """InfluxDB line protocol, tags sorted by key (faster ingest, per InfluxDB docs)."""
        return to_line(self)


def validate(point: Point) -> None:
    """Raise :class:`SchemaError` unless ``point`` matches its measurement exactly."""
    m = MEASUREMENTS.get(point.measurement)
    if m is None:
        raise SchemaError(f"unknown measurement {point.measurement!r} (known: {', '.join(MEASUREMENTS)})")
    for t in m.tags:
        if t.required and not point.tags.get(t.name):
            raise SchemaError(f"{m.name}: missing required tag {t.name!r}")
    for k, tv in point.tags.items():
        if m.tag(k) is None:
            raise SchemaError(f"{m.name}: unknown tag {k!r}")
        if not isinstance(tv, str) or not tv:
            raise SchemaError(f"{m.name}: tag {k!r} must be a non-empty string, got {tv!r}")
    if not point.fields:
        raise SchemaError(f"{m.name}: a point needs at least one field")
    for k, v in point.fields.items():
        spec = m.field(k)
        if spec is None:
            raise SchemaError(f"{m.name}: unknown field {k!r}")
        if spec.kind != "bool" and isinstance(v, bool):
            raise SchemaError(f"{m.name}.{k}: expected {spec.kind}, got bool")
        if not isinstance(v, _KIND_TYPES[spec.kind]):
            raise SchemaError(f"{m.name}.{k}: expected {spec.kind}, got {type(v).__name__} ({v!r})")
        if isinstance(v, float) and not math.isfinite(v):
            raise SchemaError(f"{m.name}.{k}: not finite ({v!r})")
    if not isinstance(point.time_ns, int) or point.time_ns <= 0:
        raise SchemaError(f"{m.name}: time_ns must be a positive int, got {point.time_ns!r}")


def make_point(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], time_ns: int
) -> Point:
    """Build a point, coercing field values to the declared kinds (int fields stay ints, floats
    become floats) and dropping ``None`` tags/fields, then validate it."""
    m = MEASUREMENTS.get(measurement)
    if m is None:
        raise SchemaError(f"unknown measurement {measurement!r}")
    clean_fields: dict[str, FieldValue] = {}
    for k, v in fields.items():
        if v is None:
            continue
        spec = m.field(k)
        is_int = isinstance(v, int) and not isinstance(v, bool)
        as_float = spec is not None and spec.kind == "float" and is_int
        clean_fields[k] = float(v) if as_float else v
    clean_tags = {k: v for k, v in tags.items() if v}
    p = Point(measurement, clean_tags, clean_fields, time_ns)
    validate(p)
    return p


def _esc_key(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _esc_measurement(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def _field_value(v: FieldValue) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_line(p: Point) -> str:
    """Serialise ``p`` to one line of InfluxDB line protocol (nanosecond timestamp)."""
    tag_str = "".join(f",{_esc_key(k)}={_esc_key(p.tags[k])}" for k in sorted(p.tags))
    field_str = ",".join(f"{_esc_key(k)}={_field_value(v)}" for k, v in p.fields.items())
    return f"{_esc_measurement(p.measurement)}{tag_str} {field_str} {p.time_ns}"


def check_names() -> None:
    """Schema self-check (used by tests): names are lower_snake_case and unique per measurement."""
    for m in MEASUREMENTS.values():
        names = [t.name for t in m.tags] + [f.name for f in m.fields]
        if len(set(names)) != len(names):
            raise SchemaError(f"{m.name}: duplicate tag/field names")
        for n in [m.name, *names]:
            if not _NAME_RE.match(n):
                raise SchemaError(f"{m.name}: name {n!r} is not lower_snake_case")


def render_markdown() -> str:
    """The schema as Markdown: the body of ``docs/telemetry.md``."""
    out = [
        "# Telemetry schema",
        "",
        "<!-- Generated from agent/schema.py by `deftctl agent schema --markdown > docs/telemetry.md`;",
        "     tests/agent/test_schema.py fails when this file and the module disagree. -->",
        "",
        "Written by the per-host agent (`deftctl agent run`) every interval (default 1 s) to InfluxDB",
        "(database/bucket from `/etc/deft/telemetry.yml`). Timestamps are nanoseconds since the epoch.",
        "Tags are low-cardinality metadata (never a flow 5-tuple or packet id); fields carry their unit",
        "in the name (`_ms`, `_bytes`, `_pps`, `_bps` = bytes/s, `_percent`, `_total` = cumulative counter).",
        "Read it with InfluxQL (InfluxDB 1.x, 2.x v1-compat and 3.x all answer it), e.g.",
        "`SELECT mean(\"rate_pps\") FROM \"nf\" WHERE time > now() - 5m GROUP BY time(1s), \"instance\"`.",
        "",
    ]
    for m in MEASUREMENTS.values():
        out += [f"## `{m.name}`", "", m.doc, "", "| tag | required | meaning |", "|---|---|---|"]
        out += [f"| `{t.name}` | {'yes' if t.required else 'no'} | {t.doc} |" for t in m.tags]
        out += ["", "| field | type | unit | meaning |", "|---|---|---|---|"]
        out += [f"| `{f.name}` | {f.kind} | {f.unit} | {f.doc} |" for f in m.fields]
        out.append("")
    return "\n".join(out)
