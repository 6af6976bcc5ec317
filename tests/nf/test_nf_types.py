"""Each NF type forwards real packets correctly through stamper -> primary (+secondary) -> server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from nfnet import NFNet, wait_for

from nf import burst

pytestmark = [pytest.mark.netns]

STEER_ALL = [{"groups": "all", "target": {"primary": "10.98.0.11:9000", "secondaries": ["10.98.0.12:9100"]}}]


def _pair(net: NFNet, nf: dict[str, Any], statestore: str | None = None) -> None:
    net.instance("s", "s", nf, role="secondary", statestore=statestore)
    net.instance("p", "p", nf, replicas=["10.98.0.12:9200"], statestore=statestore)


@pytest.mark.parametrize("io", ["mmsg", "python"])
def test_counter_forwards_and_counts(nfnet: NFNet, io: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both socket I/O paths (nf.burst: compiled recvmmsg/sendmmsg, or Python) deliver the same."""
    if io == "mmsg" and not burst.ACCELERATED:
        pytest.skip("nf._burst not built (no C compiler at install): only the Python I/O path here")
    monkeypatch.setenv("DEFT_NF_PURE_IO", "1" if io == "python" else "0")
    _pair(nfnet, {"type": "counter"})
    assert nfnet.clients["p"].status()["io"] == io
    nfnet.stamper(STEER_ALL)
    sink, out = nfnet.sink("c", 5000)
    nfnet.send("10.98.2.2:5000", flows=4, rate=2000, count=800)
    time.sleep(0.5)
    got = nfnet.stop_read(sink, out)["flows"]
    assert sorted(len(v) for v in got.values()) == [200] * 4
    for seqs in got.values():
        assert seqs == list(range(200))  # in order, exactly once
    state = nfnet.clients["p"].export_state()
    counts = sorted(f["view"]["packets"] for f in state["flows"])
    assert counts == [200] * 4
    # the secondary holds the same committed state
    wait_for(lambda: sorted(f["view"]["packets"] for f in nfnet.clients["s"].export_state()["flows"])
             == [200] * 4, what="replica state")


def test_firewall_allows_outbound_and_replies_blocks_unsolicited(nfnet: NFNet) -> None:
    _pair(nfnet, {"type": "firewall", "firewall": {"inside": ["10.98.1.0/24"]}})
    nfnet.stamper(STEER_ALL)
    sink, out = nfnet.sink("echo", 5000, echo=True)
    proc, res = nfnet.send("10.98.2.2:5000", flows=3, rate=1000, count=300, echo=True)
    client = nfnet.stop_read(proc, res)
    assert [len(v) for v in client["echoes"].values()] == [100, 100, 100]  # replies allowed
    nfnet.stop_read(sink, out)
    # unsolicited: the server opens flows towards the client
    csink, cout = nfnet.sink("in", 6000, host="cl")
    nfnet.send("10.98.1.2:6000", flows=2, rate=1000, count=100, host="sv", sport=45000)
    time.sleep(0.5)
    assert nfnet.stop_read(csink, cout)["flows"] == {}
    m = nfnet.clients["p"].metrics()
    assert m["nf_dropped"] == 100


def test_nat_rewrites_source_and_maps_replies_back(nfnet: NFNet) -> None:
    store = nfnet.redis()
    nat = {"type": "nat", "nat": {"public_ip": "10.98.3.1", "port_lo": 20000, "port_hi": 20999,
                                  "inside": ["10.98.1.0/24"], "pool": "t"}}
    _pair(nfnet, nat, statestore=store)
    nfnet.stamper(STEER_ALL, translated=[{"ip": "10.98.3.1", "port_lo": 20000, "port_hi": 20999}])
    sink, out = nfnet.sink("nat", 5000, echo=True)
    proc, res = nfnet.send("10.98.2.2:5000", flows=4, rate=1000, count=400, echo=True)
    client = nfnet.stop_read(proc, res)
    seen = nfnet.stop_read(sink, out)["flows"]
    # the server only sees the public address, one port per flow, from the pool
    assert len(seen) == 4
    for addr, seqs in seen.items():
        ip, port = addr.split(":")
        assert ip == "10.98.3.1" and 20000 <= int(port) <= 20999
        assert seqs == list(range(100))
    # replies were translated back to each inside flow
    assert [len(v) for v in client["echoes"].values()] == [100] * 4
    # global state: the pool blocks were claimed in the store
    m = nfnet.clients["p"].metrics()
    assert m["global_updates"] >= 1


def test_lb_spreads_flows_and_keeps_affinity(nfnet: NFNet) -> None:
    store = nfnet.redis()
    lb = {"type": "lb", "lb": {"vip": "10.98.3.10", "vport": 80, "snat_ip": "10.98.3.20",
                               "backends": ["10.98.2.2:8080", "10.98.2.3:8080"],
                               "port_lo": 20000, "port_hi": 20999, "pool": "lbt"}}
    _pair(nfnet, lb, statestore=store)
    nfnet.stamper(STEER_ALL, translated=[{"ip": "10.98.3.20", "port_lo": 20000, "port_hi": 20999}])
    s1, o1 = nfnet.sink("b1", 8080, bind="10.98.2.2", echo=True)
    s2, o2 = nfnet.sink("b2", 8080, bind="10.98.2.3", echo=True)
    proc, res = nfnet.send("10.98.3.10:80", flows=8, rate=1000, count=800, echo=True)
    client = nfnet.stop_read(proc, res)
    b1, b2 = nfnet.stop_read(s1, o1), nfnet.stop_read(s2, o2)
    flows_at = [set(b["index"].values()) for b in (b1, b2)]
    assert flows_at[0] and flows_at[1], "both backends get flows"
    assert not flows_at[0] & flows_at[1], "a flow never changes backend (affinity)"
    assert flows_at[0] | flows_at[1] == set(range(8))
    for b in (b1, b2):
        for seqs in b["flows"].values():
            assert seqs == list(range(100))
    assert [len(v) for v in client["echoes"].values()] == [100] * 8
