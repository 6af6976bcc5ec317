"""Output commit: with the secondary stalled (SIGSTOP) no packet leaves; after SIGCONT all do."""

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


def test_no_output_while_secondary_stalled(nfnet: NFNet) -> None:
    nfnet.instance("s", "s", {"type": "counter"}, role="secondary")
    p = nfnet.instance("p", "p", {"type": "counter"}, replicas=["10.98.0.12:9200"],
                       engine={"batch_size": 8, "max_inflight": 4, "buffer_size": 100})
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000",
                                                "secondaries": ["10.98.0.12:9100"]}}])
    sink, out = nfnet.sink("oc", 5000, live=True)
    # warm up: output flows while the secondary acks
    nfnet.send("10.98.2.2:5000", flows=2, rate=500, count=100)
    wait_for(lambda: _received(out) == 100, what="warm-up delivery")
    stalled = nfnet.procs["s"].pid
    os.killpg(stalled, signal.SIGSTOP)
    try:
        nfnet.send("10.98.2.2:5000", flows=2, rate=500, count=200, sport=41000)
        time.sleep(1.0)
        assert _received(out) == 100, "a packet left the primary without the secondary's ack"
        st = p.status()
        assert st["inflight_batches"] > 0
        assert p.metrics()["processed"] > 100
    finally:
        os.killpg(stalled, signal.SIGCONT)
    wait_for(lambda: _received(out) == 300, timeout_s=15, what="output after SIGCONT")
    res = nfnet.stop_read(sink, out)
    for addr, seqs in res["flows"].items():
        assert seqs == list(range(len(seqs))), addr
