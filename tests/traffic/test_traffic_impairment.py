"""Sink loss / duplicate / reorder counts are exact against injected, deterministic impairment.

This kernel has no netem (CONFIG_NET_SCH_NETEM unset) and no tc gact, so the deterministic
impairments are nftables rules (``numgen inc mod N``: every N-th packet, no randomness) and, for
reordering, a pcap whose packet order is permuted on purpose and replayed by tcpreplay (a tool
independent of our generator). Where netem exists, random loss is checked against netem's own
qdisc drop counter.
"""

from __future__ import annotations

import json

import pytest
from conftest import A_MAC, B_IP, B_MAC, Pair
from scapy.utils import PcapWriter

from lab import netns
from traffic import packets

UDP_FLOWS = [{"proto": "udp", "dport": 9000, "sport": 10000, "count": 4, "size_bytes": 100}]


def nft(ns: str, script: str) -> None:
    netns.run(["nft", "-f", "-"], ns=ns, input_text=script)


def nft_counter(ns: str, table: str) -> int:
    out = json.loads(netns.run(["nft", "-j", "list", "table", "ip", table], ns=ns).stdout)
    for item in out["nftables"]:
        rule = item.get("rule")
        if rule:
            for expr in rule["expr"]:
                if "counter" in expr:
                    return int(expr["counter"]["packets"])
    raise AssertionError("no counter")


@pytest.mark.netns
def test_every_tenth_dropped_loss_exact(pair: Pair) -> None:
    nft(pair.b, """table ip tgimp { chain pre { type filter hook prerouting priority 0;
        udp dport 9000 numgen inc mod 10 == 9 counter drop; }; }""")
    prof = pair.profile("drop10", duration_s=10, count=5000, method="packet", flows=UDP_FLOWS,
                        pattern={"kind": "constant", "rate_pps": 5000}, sink={"idle_timeout_s": 1})
    sink, out = pair.start_sink(prof)
    gen = pair.gen(prof)
    res = pair.sink_result(sink, out)
    assert gen["sent"] == 5000
    assert nft_counter(pair.b, "tgimp") == 500
    assert res["unique"] == 4500 and res["received"] == 4500
    assert gen["sent"] - res["unique"] == 500  # exact loss after merging sent counts
    assert res["duplicates"] == 0 and res["reordered"] == 0 and res["malformed"] == 0
    # per flow: the sink's sink-only estimate agrees wherever the last packet was not the dropped one
    assert sum(f["gap_loss"] for f in res["flows"]) <= 500


@pytest.mark.netns
def test_duplicates_exact_against_nft_dup(pair: Pair) -> None:
    # sender side: clone every matching packet to the sink (raw method goes through OUTPUT)
    nft(pair.a, f"""table ip tgimp {{ chain out {{ type filter hook output priority 0;
        udp dport 9000 numgen inc mod 4 == 0 counter dup to {B_IP}; }}; }}""")
    prof = pair.profile("dup", duration_s=10, count=3000, method="raw", flows=UDP_FLOWS,
                        pattern={"kind": "constant", "rate_pps": 5000}, sink={"idle_timeout_s": 1})
    sink, out = pair.start_sink(prof)
    gen = pair.gen(prof)
    res = pair.sink_result(sink, out)
    dups = nft_counter(pair.a, "tgimp")
    assert gen["sent"] == 3000 and dups > 0
    assert res["duplicates"] == dups
    assert res["received"] == 3000 + dups
    assert res["unique"] == 3000 and res["reordered"] == 0


def _impaired_order(n_per_flow: int, flows: int) -> list[tuple[int, int]]:
    """(flow, seq) send order: per flow, every 10th pair swapped, every 25th repeated, every 40th missing."""
    order = []
    for f in range(flows):
        seqs = list(range(n_per_flow))
        for base in range(0, n_per_flow - 9, 10):
            seqs[base + 8], seqs[base + 9] = seqs[base + 9], seqs[base + 8]
        out = []
        for s in seqs:
            if s % 40 == 39:
                continue
            out.append(s)
            if s % 25 == 0:
                out.append(s)
        order += [(f, s) for s in out]
    return order


def _expected(order: list[tuple[int, int]]) -> dict[str, int]:
    seen: set[tuple[int, int]] = set()
    top: dict[int, int] = {}
    reord = dups = 0
    for f, s in order:
        if (f, s) in seen:
            dups += 1
            continue
        seen.add((f, s))
        if s < top.get(f, -1):
            reord += 1
        top[f] = max(top.get(f, -1), s)
    return {"received": len(order), "unique": len(seen), "duplicates": dups, "reordered": reord}


@pytest.mark.netns
def test_reorder_dup_loss_exact_from_permuted_pcap(pair: Pair) -> None:
    flows = [packets.Flow(i, "udp", "10.201.0.1", B_IP, 10000 + i, 9000, 100, 1.0) for i in range(3)]
    tpls = [packets.build_template(f, "tcpreplay", A_MAC, B_MAC) for f in flows]
    order = _impaired_order(400, len(flows))
    pcap = pair.tmp / "impaired.pcap"
    with PcapWriter(str(pcap), linktype=1) as w:
        for f, s in order:
            packets.patch(tpls[f], s, 0)
            w.write(bytes(tpls[f].buf))
    prof = pair.profile("reorder", duration_s=10, flows=UDP_FLOWS, sink={"idle_timeout_s": 1})
    sink, out = pair.start_sink(prof)
    netns.run(["tcpreplay", "-i", "eth0", "--pps=5000", str(pcap)], ns=pair.a, timeout=60)
    res = pair.sink_result(sink, out)
    want = _expected(order)
    got = {k: res[k] for k in want}
    assert got == want
    assert want["reordered"] > 0 and want["duplicates"] > 0
    # seq 399 of each flow is missing: tail loss the sink alone cannot see (max_seq is 398)
    assert sum(f["gap_loss"] for f in res["flows"]) == 3 * 399 - want["unique"]


def _have_netem(ns: str) -> bool:
    cp = netns.run(["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "10%"], ns=ns, check=False)
    return cp.returncode == 0


@pytest.mark.netns
def test_random_loss_matches_netem_drop_counter(pair: Pair) -> None:
    if not _have_netem(pair.a):
        pytest.skip("netem qdisc not available in this kernel (CONFIG_NET_SCH_NETEM)")
    prof = pair.profile("netem", duration_s=10, count=5000, method="packet", flows=UDP_FLOWS,
                        pattern={"kind": "constant", "rate_pps": 5000}, sink={"idle_timeout_s": 1})
    sink, out = pair.start_sink(prof)
    gen = pair.gen(prof)
    res = pair.sink_result(sink, out)
    stats = json.loads(netns.run(["tc", "-s", "-j", "qdisc", "show", "dev", "eth0"], ns=pair.a).stdout)
    dropped = sum(q.get("drops", 0) for q in stats if q.get("kind") == "netem")
    assert gen["sent"] - res["unique"] == dropped


@pytest.mark.netns
def test_tcpreplay_method_sends_exact_count(pair: Pair) -> None:
    prof = pair.profile("replay", duration_s=10, count=4000, method="tcpreplay", flows=UDP_FLOWS,
                        pattern={"kind": "constant", "rate_pps": 8000}, sink={"idle_timeout_s": 1})
    sink, out = pair.start_sink(prof)
    gen = pair.gen(prof)
    res = pair.sink_result(sink, out)
    assert gen["sent"] == 4000 == sum(f["sent"] for f in gen["flows"])
    assert res["unique"] == 4000 and res["duplicates"] == 0


