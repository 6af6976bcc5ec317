"""A replica added at run time (migration target, new secondary) does not hold back output until it
has acknowledged its snapshot; from then on it does (output commit).

Why: a migration target joins a busy primary. If the primary waited for the target's snapshot ack
before releasing anything, its output would stall for the whole snapshot transfer and its input
buffer would tail-drop accepted packets (the 400-800 packets a 10k-flow move lost at 5 kpps).
The joining replica holds no usable state before its snapshot, so holding output for it protects
nothing.

Here the joining replica is stalled (SIGSTOP) before it can ack the snapshot: every packet still
leaves the primary, none is tail-dropped, and once it resumes and catches up it gates output.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from nfnet import NFNet, wait_for

pytestmark = [pytest.mark.netns]


def _received(path: Path) -> int:
    try:
        data = json.loads(path.read_text())  # tiny file, rewritten atomically by the sink
    except (OSError, ValueError):
        return 0
    return sum(len(v) for v in data["flows"].values())


def test_joining_replica_gates_output_only_after_its_snapshot(nfnet: NFNet) -> None:
    nfnet.instance("s", "s", {"type": "counter"}, role="secondary")
    # a small input buffer: a stall of the output would tail-drop within 4 batches
    p = nfnet.instance("p", "p", {"type": "counter"},
                       engine={"batch_size": 8, "max_inflight": 2, "buffer_size": 4})
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000"}}])
    sink, out = nfnet.sink("jr", 5000, live=True)
    nfnet.send("10.98.2.2:5000", flows=2, rate=500, count=100)
    wait_for(lambda: _received(out) == 100, what="warm-up delivery")
    stalled = nfnet.procs["s"].pid
    os.killpg(stalled, signal.SIGSTOP)
    try:
        p.add_replica("10.98.0.12:9200")  # connects (the kernel accepts), snapshot never acked
        nfnet.send("10.98.2.2:5000", flows=2, rate=500, count=200, sport=41000)
        wait_for(lambda: _received(out) == 300, timeout_s=15,
                 what="output while the joining replica has not acked its snapshot")
        rep = p.status()["workers"][0]["replicas"][0]
        assert rep["gating"] is False
        assert p.metrics()["dropped"] == 0
    finally:
        os.killpg(stalled, signal.SIGCONT)
    wait_for(lambda: all(r["gating"] and r["lag_batches"] == 0
                         for w in p.status()["workers"] for r in w["replicas"]),
             timeout_s=15, what="the replica caught up and gates output")
    # from now on output waits for it (output commit): stall it again, nothing leaves
    os.killpg(stalled, signal.SIGSTOP)
    try:
        # 20 packets: fit in the pipeline (2 batches) + input buffer (4 x 8) even at 1 per batch
        nfnet.send("10.98.2.2:5000", flows=2, rate=500, count=20, sport=42000)
        time.sleep(1.0)
        assert _received(out) == 300, "a packet left without the caught-up replica's ack"
    finally:
        os.killpg(stalled, signal.SIGCONT)
    wait_for(lambda: _received(out) == 320, timeout_s=15, what="output after SIGCONT")
    res = nfnet.stop_read(sink, out)
    for addr, seqs in res["flows"].items():
        assert seqs == list(range(len(seqs))), addr
