"""A snapshot streamed to a joining replica while traffic changes the flows still converges.

Why: the primary sends a joining replica's snapshot a chunk per loop turn (``snapshot_chunk_flows``)
so a 10k-flow pre-copy does not stop forwarding for the whole dump. Flows change and appear
between chunks; the last chunk re-sends every flow touched since the stream began. Here one flow
per chunk over 3000 flows makes the stream last thousands of loop turns, and 400 one-packet flows
arrive spread over that time: those that start while the stream runs reach the replica only through
that last chunk (nothing touches them afterwards). The replica must end with exactly the
primary's per-flow state and next sequence numbers, equal to what the sink received.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from nfnet import DEEP_ENGINE, NFNet, wait_for

pytestmark = [pytest.mark.netns]


def _views(export: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {f["key"]: (f["view"]["packets"], f["view"]["bytes"]) for f in export["flows"]}


def _nexts(export: dict[str, Any]) -> dict[str, int]:
    return {s["key"]: s["next"] for s in export["seqs"]}


def test_streamed_snapshot_under_traffic_converges(nfnet: NFNet) -> None:
    s = nfnet.instance("s", "s", {"type": "counter"}, role="secondary")
    p = nfnet.instance("p", "p", {"type": "counter"}, engine={**DEEP_ENGINE, "snapshot_chunk_flows": 1})
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000"}}])
    sink, out = nfnet.sink("ss", 5000)
    nfnet.send("10.98.2.2:5000", flows=3000, rate=6000, count=6000)  # 3000 flows to stream
    late, _ = nfnet.send("10.98.2.2:5000", flows=400, rate=500, count=400, sport=50000, wait=False)
    time.sleep(0.3)  # the late flows' sender is up and sending
    p.add_replica("10.98.0.12:9200")  # snapshot streamed while the late flows start
    late.wait(60)
    wait_for(lambda: all(r["gating"] and r["lag_batches"] == 0
                         for w in p.status()["workers"] for r in w["replicas"]),
             timeout_s=20, what="the joining replica acknowledged its snapshot and caught up")
    got = nfnet.stop_read(sink, out)["flows"]
    assert sum(len(v) for v in got.values()) == 6400
    at_p = p.export_state("all")
    views, nexts = _views(at_p), _nexts(at_p)
    assert len(views) == 3400
    assert sorted(n for n, _b in views.values()) == sorted(len(v) for v in got.values())

    diff: list[str] = []

    def converged() -> bool:
        at_s = s.export_state("all")
        v, n = _views(at_s), _nexts(at_s)
        diff[:] = [f"state {k}: {v.get(k)} != {views.get(k)}" for k in views.keys() | v.keys()
                   if v.get(k) != views.get(k)]
        diff.extend(f"next {k}: {n.get(k)} != {nexts.get(k)}" for k in nexts.keys() | n.keys()
                    if n.get(k) != nexts.get(k))
        return not diff

    # the replica applies the last deltas when the primary reports them released (heartbeat)
    try:
        wait_for(converged, timeout_s=10, what="replica state equal to the primary's")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {len(diff)} differences, e.g. {sorted(diff)[:6]}") from None
    assert p.metrics()["dropped"] == 0


def test_replica_keeps_its_flows_while_a_resent_snapshot_streams(nfnet: NFNet) -> None:
    """A secondary that is re-sent a snapshot (its channel was re-established) keeps what it held
    until the last chunk: stopped mid-stream, the primary leaves it with every flow, not only the
    flows of the chunks that arrived (a promotion then would restart the rest from zero)."""
    s = nfnet.instance("s", "s", {"type": "counter"}, role="secondary")
    p = nfnet.instance("p", "p", {"type": "counter"}, replicas=["10.98.0.12:9200"],
                       engine={**DEEP_ENGINE, "snapshot_chunk_flows": 1})
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000"}}])
    sink, out = nfnet.sink("rs", 5000)
    nfnet.send("10.98.2.2:5000", flows=5000, rate=5000, count=5000)
    wait_for(lambda: all(r["lag_batches"] == 0 for w in p.status()["workers"] for r in w["replicas"]),
             timeout_s=20, what="the secondary caught up")
    views = _views(p.export_state("all"))
    assert len(views) == 5000
    wait_for(lambda: _views(s.export_state("all")) == views, timeout_s=10, what="secondary == primary")
    applied = s.metrics()["deltas_applied"]  # counts snapshot chunks too
    p.remove_replica("10.98.0.12:9200")
    p.add_replica("10.98.0.12:9200")  # a new channel: HELLO, then the snapshot, one flow per turn
    deadline = time.monotonic() + 10
    while s.metrics()["deltas_applied"] < applied + 2:  # no sleep: the stream lasts ~0.1-0.3 s
        assert time.monotonic() < deadline, "the re-sent snapshot's first chunks never arrived"
    pid = nfnet.procs["p"].pid
    os.killpg(pid, signal.SIGSTOP)  # the primary stops while streaming 5000 one-flow chunks
    try:
        time.sleep(0.5)  # the replica applies what reached it
        chunks = s.metrics()["deltas_applied"] - applied
        assert chunks < 5000, f"the snapshot was complete ({chunks} chunks) before the stop"
        held = _views(s.export_state("all"))
        assert held == views, f"{len(views) - len(held)} of 5000 flows lost their state mid-stream"
    finally:
        os.killpg(pid, signal.SIGCONT)
    wait_for(lambda: all(r["gating"] and r["lag_batches"] == 0
                         for w in p.status()["workers"] for r in w["replicas"]),
             timeout_s=20, what="the re-sent snapshot acknowledged")
    wait_for(lambda: _views(s.export_state("all")) == views, timeout_s=10, what="secondary == primary")
    assert sum(len(v) for v in nfnet.stop_read(sink, out)["flows"].values()) == 5000
