"""No split brain: a secondary promoted while the old primary is still alive (a partition, as the
failure detector sees it) fences the old primary — it never releases output again — and service
continues from the new primary with the committed state."""

from __future__ import annotations

import time

import pytest
from nfnet import NFNet, client_packets, wait_for

pytestmark = [pytest.mark.netns]


def test_promotion_fences_the_live_old_primary(nfnet: NFNet) -> None:
    s = nfnet.instance("s", "s", {"type": "counter"}, role="secondary")
    p = nfnet.instance("p", "p", {"type": "counter"}, replicas=["10.98.0.12:9200"])
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000",
                                                "secondaries": ["10.98.0.12:9100"]}}])
    sink, out = nfnet.sink("fe", 5000)
    proc, _ = nfnet.send("10.98.2.2:5000", flows=4, rate=1000, count=3000, wait=False)
    time.sleep(1.0)
    s.promote(epoch=2)
    wait_for(lambda: p.status()["fenced"], what="old primary fenced")
    released_at_fence = p.metrics()["released"]
    proc.wait(60)
    time.sleep(1.0)
    assert p.metrics()["released"] == released_at_fence, "a fenced primary released output"
    assert p.metrics()["fenced_nacks"] >= 1
    got = nfnet.stop_read(sink, out)["flows"]
    counters = client_packets(s.export_state())
    for addr, seqs in got.items():
        first = list(dict.fromkeys(seqs))
        assert first == list(range(750)), f"{addr}: lost or reordered across the promotion"
        assert counters[addr] == 750
