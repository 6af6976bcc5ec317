"""Per-instance metrics: DEFT's set plus the fault-tolerance counters (THE metrics contract).

Why counters and fixed-bucket histograms: the engine updates them for every packet, so an update
must be an integer add, never an allocation. A worker owns one :class:`Metrics`; the instance asks
every worker for :meth:`Metrics.snapshot` and merges them with :func:`merge`; the agent ships the
merged dict to InfluxDB.

DEFT's formulas (deft-seeds.md §3.1), per processed packet ``p`` with ingress stamp ``t_ts``
(stamper, CLOCK_REALTIME), receive ``t_rx``, processing start ``t_proc``, output-buffer entry
``t_ob`` and release ``t_rel``:

* latency = ``t_rel - t_ts`` (end-to-end inside the chain; the seeds' ``(t_proc-t_ts)+(t_rel-t_ob)``
  plus the processing time itself)
* time in input buffer = ``t_proc - t_rx``; time in output buffer = ``t_rel - t_ob``;
  processing time = ``t_ob - t_proc``; path latency = ``t_rx - t_ts`` (network + stamper; DEFT
  derived it as latency - in - out - processing, which is the same quantity measured directly)
* in/processing/path are averaged over processed packets, latency and output-buffer time over
  released packets (an NF may drop on purpose: a denied packet has no release time)
* throughput = released bytes (inner packets) and packets per second over the instance's active
  time (first receive .. last release), not DEFT's sum of per-flow rates (which crashes on 1-packet
  flows and double counts idle time).

Histograms use quarter-octave buckets of nanoseconds (``bucket_of``): 4 buckets per power of two,
so percentiles are exact to about 19 %; benchmarks that need more measure at the sink.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

N_BUCKETS = 4 * 48  # up to 2**48 ns (~3 days)


def bucket_of(ns: int) -> int:
    """Quarter-octave bucket of a non-negative duration in ns (hot path: two int ops)."""
    if ns < 8:
        return 0 if ns < 0 else ns
    bl = ns.bit_length()
    idx = bl * 4 + ((ns >> (bl - 3)) & 3)
    return idx if idx < N_BUCKETS else N_BUCKETS - 1


def bucket_upper_ns(idx: int) -> float:
    """Upper edge (ns) of bucket ``idx`` (inverse of :func:`bucket_of`, used for percentiles)."""
    if idx < 8:
        return float(idx)
    bl, q = divmod(idx, 4)
    return float((4 + q + 1) << (bl - 3))


def percentile_ns(hist: list[int], q: float) -> float:
    """``q`` in [0, 100] percentile from a bucket histogram, ns (upper bucket edge); 0 when empty."""
    total = sum(hist)
    if total == 0:
        return 0.0
    want = total * q / 100.0
    acc = 0
    for i, c in enumerate(hist):
        acc += c
        if acc >= want and c:
            return bucket_upper_ns(i)
    return bucket_upper_ns(len(hist) - 1)


#: plain counters every worker keeps (all monotonically growing; units in the name)
COUNTERS: tuple[str, ...] = (
    "received",            # datagrams read from data + duplicate sockets
    "processed",           # packets run through the NF logic (owned flows)
    "released",            # inner packets sent out after commit
    "released_bytes",      # bytes of released inner packets
    "nf_dropped",          # packets the NF logic dropped on purpose (firewall deny, no NAT port)
    "dropped",             # input-buffer tail drops (DEFT "Packets Dropped")
    "socket_dropped",      # kernel receive-buffer overflows of the data + duplicate sockets
    "malformed",           # bad shim / bad IPv4 / wrong worker: counted and dropped
    "duplicates",          # (epoch, seq) already processed or buffered: dropped exactly once
    "reordered",           # packets that waited in a reorder buffer
    "gaps_skipped",        # sequence gaps given up after reorder_timeout_ms (lost upstream)
    "stale_epoch",         # packets of an older stamper epoch after a newer one was seen
    "replica_logged",      # duplicated input buffered as a replica
    "replica_discarded",   # replica input discarded because the primary committed past it
    "replica_log_overflow",  # replica input dropped because the replica log was full
    "replayed",            # replica input replayed after promote/handover
    "forwarded",           # packets of moved flows forwarded to their new owner
    "migration_dropped",   # accepted packets of groups being handed over dropped (hold full): 0 expected
    "egress_errors",       # sendto() of a released packet failed (no route, buffer full)
    "recv_errors",         # receive calls on a data socket that failed (not "nothing waiting")
    "batches",             # batches closed
    "deltas_sent",         # DELTA messages sent (x replicas)
    "deltas_applied",      # DELTA/SNAPSHOT messages applied as a replica
    "replicated_bytes",    # bytes of replication messages sent
    "fenced_nacks",        # FENCED answers received (we were fenced) or sent (we fenced someone)
    "global_updates",      # global-state updates in the store (DEFT GLOBAL_UPDATE_FREQUENCY)
    "failovers",           # promotions of this instance
    "migrations_out",      # flow groups handed over to another instance
    "migrations_in",       # flow groups taken over from another instance
    "flows_expired",       # flows forgotten after flow_idle_timeout_s without packets
    "sum_latency_ns",      # sums for DEFT's mean values (divide by released)
    "sum_in_buffer_ns",
    "sum_out_buffer_ns",
    "sum_processing_ns",
    "sum_path_ns",         # receive - ingress stamp (network + stamper), per processed packet
    "sum_commit_ns",       # batch close -> last ack, summed over committed batches
)

HISTOGRAMS: tuple[str, ...] = ("latency", "commit", "batch_size")


@dataclass
class Metrics:
    """Counters, maxima and histograms of one worker (see module docstring for the formulas)."""

    c: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    in_buffer_max: int = 0
    out_buffer_max: int = 0
    first_rx_ns: int = 0
    last_release_ns: int = 0
    hist: dict[str, list[int]] = field(
        default_factory=lambda: {h: [0] * N_BUCKETS for h in HISTOGRAMS})

    def snapshot(self) -> dict[str, Any]:
        """Raw, mergeable view (counters, maxima, histograms)."""
        return {
            "counters": dict(self.c),
            "in_buffer_max": self.in_buffer_max,
            "out_buffer_max": self.out_buffer_max,
            "first_rx_ns": self.first_rx_ns,
            "last_release_ns": self.last_release_ns,
            "hist": {k: list(v) for k, v in self.hist.items()},
        }


def merge(snaps: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum raw snapshots of several workers into one raw snapshot."""
    out: dict[str, Any] = {
        "counters": dict.fromkeys(COUNTERS, 0), "in_buffer_max": 0, "out_buffer_max": 0,
        "first_rx_ns": 0, "last_release_ns": 0, "hist": {h: [0] * N_BUCKETS for h in HISTOGRAMS},
    }
    for s in snaps:
        for k, v in s["counters"].items():
            out["counters"][k] = out["counters"].get(k, 0) + v
        out["in_buffer_max"] = max(out["in_buffer_max"], s["in_buffer_max"])
        out["out_buffer_max"] = max(out["out_buffer_max"], s["out_buffer_max"])
        if s["first_rx_ns"] and (not out["first_rx_ns"] or s["first_rx_ns"] < out["first_rx_ns"]):
            out["first_rx_ns"] = s["first_rx_ns"]
        out["last_release_ns"] = max(out["last_release_ns"], s["last_release_ns"])
        for h, vals in s["hist"].items():
            acc = out["hist"].setdefault(h, [0] * N_BUCKETS)
            for i, v in enumerate(vals):
                if v:
                    acc[i] += v
    return out


def summarize(raw: dict[str, Any], now_ns: int | None = None) -> dict[str, float | int]:
    """DEFT's metric set (ms, B/s, pps) + FT counters as a flat dict for the agent/InfluxDB."""
    c = raw["counters"]
    rel = c["released"] or 0
    div = rel if rel else 1
    first, last = raw["first_rx_ns"], raw["last_release_ns"]
    span_s = (last - first) / 1e9 if first and last > first else 0.0
    ms = 1e-6
    lat = c["sum_latency_ns"] / div * ms
    tout = c["sum_out_buffer_ns"] / div * ms
    pdiv = c["processed"] or 1
    tin = c["sum_in_buffer_ns"] / pdiv * ms
    tproc = c["sum_processing_ns"] / pdiv * ms
    tpath = c["sum_path_ns"] / pdiv * ms
    committed = sum(raw["hist"]["commit"])
    flat: dict[str, float | int] = {
        "latency_ms": lat,
        "latency_p50_ms": percentile_ns(raw["hist"]["latency"], 50) * ms,
        "latency_p99_ms": percentile_ns(raw["hist"]["latency"], 99) * ms,
        "throughput_Bps": c["released_bytes"] / span_s if span_s else 0.0,
        "throughput_pps": rel / span_s if span_s else 0.0,
        "processed": c["processed"],
        "dropped": c["dropped"],
        # everything lost on the way in: what an overloaded NF really sheds (a starved one mostly
        # overflows its socket before its own input buffer fills)
        "input_dropped": c["dropped"] + c["socket_dropped"],
        "input_buffer_max": raw["in_buffer_max"],
        "output_buffer_max": raw["out_buffer_max"],
        "time_in_input_buffer_ms": tin,
        "time_in_output_buffer_ms": tout,
        "processing_time_ms": tproc,
        "path_latency_ms": tpath,
        "commit_latency_ms": (c["sum_commit_ns"] / committed * ms) if committed else 0.0,
        "commit_p99_ms": percentile_ns(raw["hist"]["commit"], 99) * ms,
        "batch_size_mean": (c["processed"] / c["batches"]) if c["batches"] else 0.0,
    }
    for k in COUNTERS:
        if not k.startswith("sum_") and k not in flat:
            flat[k] = c[k]
    flat["ts_ns"] = now_ns if now_ns is not None else time.time_ns()
    return flat
