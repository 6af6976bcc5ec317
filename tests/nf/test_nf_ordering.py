"""Reordered and duplicated input is processed in order, exactly once; malformed packets are
counted and dropped and the NF keeps running. Stamped datagrams are crafted here (the stamper
never reorders) and sent straight to the instance's data port from the stamper's namespace."""

from __future__ import annotations

import json
import random
import socket
import sys
import time
from pathlib import Path

import pytest
from nfnet import NFNet

from nf.control import ControlError

pytestmark = [pytest.mark.netns]

SENDER = r'''
import socket, struct, sys, time
sys.path.insert(0, sys.argv[2])
from nf import shim
order = [tuple(map(int, x.split(":"))) for x in open(sys.argv[1]).read().split()]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def ip_udp(sport, seq):
    payload = struct.pack("!IQQ", sport - 40000, seq, time.time_ns()) + b"x" * 20
    udp = struct.pack("!HHHH", sport, 5000, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                      socket.inet_aton("10.98.1.2"), socket.inet_aton("10.98.2.2"))
    return hdr + udp
for flow, seq in order:
    if flow < 0:  # malformed kinds
        bad = {-1: b"\x00" * 10, -2: b"\xde\xad" + b"\x00" * 60,
               -3: shim.SHIM.pack(shim.MAGIC, 1, 0, 1, 0, 0, 1, 0, 0) + b"\x60" + b"\x00" * 40,
               -4: shim.SHIM.pack(shim.MAGIC, 9, 0, 1, 0, 0, 1, 0, 0) + ip_udp(40000, 0)}[flow]
        s.sendto(bad, ("10.98.0.11", 9000))
        continue
    sport = 40000 + flow
    from nf.flow import canonical_key, group_of_key
    key, _ = canonical_key(17, socket.inet_aton("10.98.1.2"), sport, socket.inet_aton("10.98.2.2"), 5000)
    g = group_of_key(key, 16)
    s.sendto(shim.pack(shim.Stamp(0, 1, g, 1, seq, time.time_ns()), ip_udp(sport, seq)), ("10.98.0.11", 9000))
    time.sleep(0.0002)
'''


def test_reorder_duplicates_malformed(nfnet: NFNet, tmp_path: Path) -> None:
    p = nfnet.instance("p", "p", {"type": "counter"},
                       engine={"batch_size": 4, "reorder_timeout_ms": 2000})
    sink, out = nfnet.sink("ord", 5000)
    rng = random.Random(7)
    order: list[tuple[int, int]] = []
    n = 200
    for flow in range(3):
        seqs = list(range(n))
        # local shuffles (window 8) + 30 duplicates, some of them long after the original
        for i in range(0, n, 8):
            w = seqs[i:i + 8]
            rng.shuffle(w)
            seqs[i:i + 8] = w
        for _ in range(30):
            seqs.insert(rng.randrange(len(seqs)), rng.randrange(n))
        order += [(flow, q) for q in seqs]
    malformed = [(-1, 0), (-2, 0), (-3, 0), (-4, 0)] * 5
    for m in malformed:
        order.insert(rng.randrange(len(order)), m)
    plan = tmp_path / "order.txt"
    plan.write_text(" ".join(f"{f}:{q}" for f, q in order))
    repo = str(Path(__file__).resolve().parents[2])
    proc = nfnet.topo.start([sys.executable, "-c", SENDER, str(plan), repo], ns=nfnet.ns["st"])
    proc.wait(60)
    time.sleep(0.5)
    got = nfnet.stop_read(sink, out)["flows"]
    assert len(got) == 3
    for addr, seqs in got.items():
        assert seqs == list(range(n)), f"{addr}: not in order exactly once"
    mm = p.metrics()
    assert mm["malformed"] == len(malformed)
    assert mm["duplicates"] == 90
    assert mm["processed"] == 3 * n
    assert mm["reordered"] > 0
    assert p.status()["role"] == "primary"  # still serving


def test_bad_control_requests_are_refused_and_the_instance_keeps_serving(nfnet: NFNet) -> None:
    p = nfnet.instance("p", "p", {"type": "counter"})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(p.address)
        s.sendall(b"this is not json\n{\"cmd\": \"explode\"}\n{\"cmd\": \"promote\"}\n")
        f = s.makefile("rb")
        answers = [json.loads(f.readline()) for _ in range(3)]
    assert [a["ok"] for a in answers] == [False, False, False]
    assert "unknown command 'explode'" in answers[1]["error"]
    assert "epoch" in answers[2]["error"]
    with pytest.raises(ControlError, match="ip:port"):
        p.add_replica("nowhere")
    assert p.status()["role"] == "primary"
