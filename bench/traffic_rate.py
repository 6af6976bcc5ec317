"""Benchmark: maximum generator rate per core, UDP 64 B frames, for each send method.

Two namespaces on a veth pair (prefix ``tgb``); the receiving namespace drops the packets in
nftables prerouting (cheap) so the number is the generator's, not a receiver's. Each method runs
the real generator (``python -m traffic gen``) with an unreachable target rate, bounded by count and
time; the result is packets sent per wall second and per CPU second of the generator process
(``getrusage`` of the child: user + sys), i.e. "per core". tcpreplay is measured at ``--topspeed``.
Optionally (``--sink``) the sink's own maximum is measured with tcpreplay feeding it.

    python bench/traffic_rate.py [--seconds 3] [--sink] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from lab import netns
from lab.netns import Topology
from traffic import packets, replay

A_IP, B_IP = "10.202.0.1", "10.202.0.2"
A_MAC, B_MAC = "02:00:0a:ca:00:01", "02:00:0a:ca:00:02"
GOAL_PPS = 300_000


def child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_gen(ns: str, tmp: Path, method: str, seconds: float) -> dict[str, Any]:
    prof = {
        "name": f"bench-{method}", "duration_s": seconds, "count": 10_000_000, "method": method,
        "max_burst": 4096, "flows": [{"proto": "udp", "dport": 9000, "count": 16, "size_bytes": 64}],
        "pattern": {"kind": "constant", "rate_pps": 5_000_000},
    }
    pf = tmp / f"{method}.yml"
    pf.write_text(yaml.safe_dump(prof))
    out = tmp / f"{method}.json"
    netns.run([sys.executable, "-m", "traffic", "gen", "-p", str(pf), "--dst", B_IP, "--json-out", str(out)],
              ns=ns, timeout=seconds + 60)
    rep = json.loads(out.read_text())
    cpu = rep["cpu_s"]  # the send loop's own CPU time (no interpreter/scapy start-up)
    return {"method": method, "sent": rep["sent"], "wall_pps": rep["achieved_pps"],
            "cpu_s": cpu, "pps_per_cpu_s": rep["sent"] / cpu if cpu else 0.0}


def run_tcpreplay_top(ns: str, tmp: Path, n: int) -> dict[str, Any]:
    flows = [packets.Flow(i, "udp", A_IP, B_IP, 10000 + i, 9000, 64, 1.0) for i in range(16)]
    tpls = [packets.build_template(f, "tcpreplay", A_MAC, B_MAC) for f in flows]
    pcap = tmp / "top.pcap"
    replay.write_pcap(tpls, n, list(range(16)), pcap)
    cpu0 = child_cpu()
    cp = netns.run(["tcpreplay", "-i", "eth0", "--topspeed", str(pcap)], ns=ns, timeout=120)
    cpu = child_cpu() - cpu0
    m = re.search(r"Actual:\s+(\d+) packets .*? in ([\d.]+) seconds", cp.stdout)
    sent, dur = (int(m.group(1)), float(m.group(2))) if m else (0, 1.0)
    return {"method": "tcpreplay --topspeed", "sent": sent, "wall_pps": sent / dur, "cpu_s": cpu,
            "pps_per_cpu_s": sent / cpu if cpu else 0.0}


def run_sink_max(topo: Topology, a: str, b: str, tmp: Path, mode: str, n: int) -> dict[str, Any]:
    netns.run(["nft", "flush", "ruleset"], ns=b)
    pcap = tmp / "top.pcap"
    out = tmp / f"sink-{mode}.json"
    ready = tmp / f"sink-{mode}.ready"
    proc = topo.start([sys.executable, "-m", "traffic", "sink", "--ports", "9000", "--mode", mode,
                       "--interface", "eth0", "--duration-s", "60", "--idle-timeout-s", "1",
                       "--json-out", str(out), "--ready-file", str(ready)], ns=b,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not ready.exists():
        time.sleep(0.05)
    cp = netns.run(["tcpreplay", "-i", "eth0", "--pps=400000", f"--limit={n}", str(pcap)], ns=a, timeout=120)
    proc.wait(timeout=90)
    rep = json.loads(out.read_text())
    m = re.search(r"Rated:.*?([\d.]+) pps", cp.stdout)
    return {"sink_mode": mode, "offered_pps": float(m.group(1)) if m else 0.0, "received": rep["received"],
            "of": n, "received_pps": rep["throughput_pps"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--sink", action="store_true", help="also measure the sink's maximum rate")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    rows: list[dict[str, Any]] = []
    sinks: list[dict[str, Any]] = []
    with Topology(f"tgb{os.getpid() % 1000}") as topo, tempfile.TemporaryDirectory(prefix="tgb-") as t:
        tmp = Path(t)
        a, b = topo.ns("a"), topo.ns("b")
        topo.link(a, "eth0", b, "eth0")
        for ns, ip, mac, pip, pmac in ((a, A_IP, A_MAC, B_IP, B_MAC), (b, B_IP, B_MAC, A_IP, A_MAC)):
            netns.run(["ip", "link", "set", "eth0", "address", mac], ns=ns)
            netns.add_addr(ns, "eth0", f"{ip}/24")
            neigh = ["ip", "neigh", "replace", pip, "lladdr", pmac, "dev", "eth0", "nud", "permanent"]
            netns.run(neigh, ns=ns)
        netns.run(["nft", "-f", "-"], ns=b, input_text=(
            "table ip tgb { chain pre { type filter hook prerouting priority 0; udp dport 9000 drop; }; }"))
        for method in ("packet", "raw", "udp"):
            rows.append(run_gen(a, tmp, method, args.seconds))
        rows.append(run_tcpreplay_top(a, tmp, 1_000_000))
        if args.sink:
            for mode in ("udp", "packet"):
                sinks.append(run_sink_max(topo, a, b, tmp, mode, 1_000_000))
    if args.json:
        print(json.dumps({"generator": rows, "sink": sinks}, indent=2))
        return
    goal = f"goal >= {GOAL_PPS / 1e3:.0f} kpps/core"
    print(f"generator, UDP 64 B frames, {args.seconds:.0f} s per method ({goal})")
    print(f"{'method':<22}{'sent':>10}{'kpps wall':>11}{'cpu s':>8}{'kpps/core':>11}")
    for r in rows:
        print(f"{r['method']:<22}{r['sent']:>10}{r['wall_pps'] / 1e3:>11.0f}{r['cpu_s']:>8.2f}"
              f"{r['pps_per_cpu_s'] / 1e3:>11.0f}")
    for s in sinks:
        print(f"sink {s['sink_mode']:<7} offered {s['offered_pps'] / 1e3:.0f} kpps: received {s['received']}"
              f"/{s['of']} at {s['received_pps'] / 1e3:.0f} kpps")


if __name__ == "__main__":
    main()
