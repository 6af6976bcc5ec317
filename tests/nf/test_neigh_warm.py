"""Why the stamper and the replicas warm neighbour entries (nf.neigh), and that it works.

A burst to an address whose ARP entry is not resolved yet is queued in the kernel's ~100-packet
per-neighbour queue and the rest is dropped silently: that is what a switch-over to a secondary the
sender never talked to looks like (a migration out of a starved host lost 133-1 771 packets on the
lab this way). Two namespaces on a veth; the receiver stops answering ARP (``arp_ignore=8``) for
the burst, so resolution cannot finish during it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nfnet import CLIENT, NFNet, wait_for

from lab import netns
from lab.netns import Topology
from nf.neigh import DISCARD_PORT, NeighbourWarmer

REPO = Path(__file__).resolve().parents[2]
BURST = 1000

RECEIVER = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: the burst must fit
s.bind(("0.0.0.0", 7000)); s.settimeout(0.2)
print("ready", flush=True)
n, end = 0, time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        s.recv(2048); n += 1
    except TimeoutError:
        pass
print(json.dumps({"received": n}), flush=True)
"""

SENDER = """
import socket, sys, time
from nf.neigh import NeighbourWarmer
dst, warm = sys.argv[1], sys.argv[2] == "1"
if warm:
    w = NeighbourWarmer(); w.want(dst); time.sleep(0.5); w.close()
print("warmed", flush=True)
sys.stdin.readline()  # the test turns the receiver's ARP off in between
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
for i in range(int(sys.argv[3])):
    s.sendto(b"x" * 64, (dst, 7000))
print("sent", flush=True)
"""


def _burst(topo: Topology, a: str, b: str, dst: str, warm: bool) -> int:
    """Send BURST datagrams from ``a`` to ``dst`` while ``b`` ignores ARP; packets received."""
    netns.run(["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=0"], ns=b)
    rx = topo.start([sys.executable, "-c", RECEIVER, "4"], ns=b, stdout=subprocess.PIPE, text=True)
    tx = topo.start([sys.executable, "-c", SENDER, dst, "1" if warm else "0", str(BURST)], ns=a,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(REPO),
                    env={"PYTHONPATH": str(REPO)})
    assert rx.stdout is not None and tx.stdout is not None and tx.stdin is not None
    assert rx.stdout.readline().strip() == "ready"
    assert tx.stdout.readline().strip() == "warmed"
    netns.run(["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=8"], ns=b)
    tx.stdin.write("go\n")
    tx.stdin.flush()
    assert tx.stdout.readline().strip() == "sent"
    time.sleep(0.3)
    # ARP back on: the kernel's retransmitted request (every second) resolves the cold entry and
    # flushes whatever its queue kept
    netns.run(["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=0"], ns=b)
    out, _ = rx.communicate(timeout=30)
    tx.wait(10)
    return int(json.loads(out.strip().splitlines()[-1])["received"])


@pytest.fixture
def pair() -> Iterator[tuple[Topology, str, str]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    with Topology("nw") as topo:
        a, b = topo.ns("a"), topo.ns("b")
        topo.link(a, "eth0", b, "eth0")
        netns.add_addr(a, "eth0", "10.97.0.1/24")
        netns.add_addr(b, "eth0", "10.97.0.2/24")
        netns.add_addr(b, "eth0", "10.97.0.3/24")
        yield topo, a, b


def test_a_cold_entry_drops_most_of_a_burst_and_a_warmed_one_none(pair: tuple[Topology, str, str]) -> None:
    topo, a, b = pair
    cold = _burst(topo, a, b, "10.97.0.2", warm=False)
    assert cold < BURST // 2, f"cold neighbour entry: {cold} of {BURST} delivered (kernel queue ~100)"
    warm = _burst(topo, a, b, "10.97.0.3", warm=True)
    assert warm == BURST, f"warmed neighbour entry: {warm} of {BURST} delivered"


def test_a_new_address_is_probed_at_once() -> None:
    """The probe leaves when the address is first wanted, not at the next refresh tick: a replica
    learns a flow when a migration's pre-copy starts, and the handover follows ~0.3 s later."""
    if os.geteuid() != 0:
        pytest.skip("needs root (binds the discard port)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", DISCARD_PORT))
        rx.settimeout(2.0)
        w = NeighbourWarmer(refresh_s=0)
        try:
            assert w.want("127.0.0.1")
            assert rx.recv(64) == b""  # no tick in between
            assert not w.want("127.0.0.1") and w.probes == 1  # once per address
            assert not w.want_packed(socket.inet_aton("127.0.0.1")) and w.probes == 1  # any form
            assert w.tick() == 0
        finally:
            w.close()


def _resolved(ns: str, ip: str) -> bool:
    """``ip`` has a neighbour entry with a link-layer address in ``ns``."""
    return "lladdr" in netns.run(["ip", "neigh", "show", ip], ns=ns).stdout


def test_stamper_resolves_secondaries_it_never_sends_to(nfnet: NFNet) -> None:
    """With OVS duplicating input, the stamper sends only to the primary; the secondary it may be
    steered to at any moment is resolved anyway."""
    nfnet.instance("s", "s", {"type": "counter"}, role="secondary")
    nfnet.instance("p", "p", {"type": "counter"}, replicas=["10.98.0.12:9200"])
    st = nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000",
                                                     "secondaries": ["10.98.0.12:9100"]}}],
                       duplicate="ovs")
    wait_for(lambda: _resolved(nfnet.ns["st"], "10.98.0.12"), 5, "the secondary's neighbour entry")
    assert st.call("status")["neigh_probes"] >= 2


def test_replica_resolves_the_destinations_of_its_flows(nfnet: NFNet) -> None:
    """A secondary only logs copies, so it never sends to the flows' ends until it is promoted;
    their entries are resolved while it is still a replica."""
    nfnet.instance("s", "s", {"type": "counter"}, role="secondary")
    nfnet.instance("p", "p", {"type": "counter"}, replicas=["10.98.0.12:9200"])
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000",
                                                "secondaries": ["10.98.0.12:9100"]}}])
    sink, out = nfnet.sink("nw", 5000)
    nfnet.send("10.98.2.2:5000", flows=4, rate=500, count=200)
    assert sum(len(v) for v in nfnet.stop_read(sink, out)["flows"].values()) == 200
    wait_for(lambda: _resolved(nfnet.ns["s"], "10.98.2.2"), 5, "the flows' destination at the replica")
    assert _resolved(nfnet.ns["s"], CLIENT)  # replies go to the source


def test_replica_that_only_gets_deltas_resolves_its_flows(nfnet: NFNet) -> None:
    """A cluster member learns a peer's flows from its deltas alone (no duplicated input until a
    move starts); a move then sends its first output burst to those ends at once. Cold, that burst
    waited in the ARP queue while newer packets went out directly: reordered at the sink."""
    nfnet.instance("s", "s", {"type": "counter"}, role="secondary")
    nfnet.instance("p", "p", {"type": "counter"}, replicas=["10.98.0.12:9200"])
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000"}}])  # no copies to s
    sink, out = nfnet.sink("nd", 5000)
    nfnet.send("10.98.2.2:5000", flows=4, rate=500, count=200)
    assert sum(len(v) for v in nfnet.stop_read(sink, out)["flows"].values()) == 200
    wait_for(lambda: _resolved(nfnet.ns["s"], "10.98.2.2"), 5, "the flows' destination at the replica")
    assert _resolved(nfnet.ns["s"], CLIENT)
