"""Fault-tolerance timings of NF instances (instance level, no detector): promote latency and
service gap after ``kill -9`` of the primary, and handover (migration) duration with many flows.

* failover: generator -> primary (+ copy to the secondary, as the stamper's duplicate mode does)
  at ``--rate`` pps; ``kill -9`` the primary, immediately ``promote`` the secondary; reported:
  the promote call (ms), packets replayed, and the largest gap between two packets at the sink
  around the failure (ms) = service interruption without detection time (nf-control's detector
  adds its heartbeat timeout on top).
* migration: ``--flows`` flows established on the source, target attached as a replica
  (``add_replica``: snapshot, then deltas) or not (full state in the handover's snapshot);
  ``handover`` of half of the flow groups; reported: handover call duration (ms) = how long the
  moved flows were frozen (upper bound of their downtime).

Usage: ``python bench/nf_ft_bench.py [--runs 3] [--flows 10000]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab import netns  # noqa: E402
from lab.netns import Topology  # noqa: E402
from nf import shim  # noqa: E402
from nf.control import ControlClient  # noqa: E402
from nf.flow import canonical_key, group_of_key  # noqa: E402

GEN, P, S, CLIENT = "10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.2.1"
GROUPS = 64


def _inner(sport: int, seq: int, ts: int) -> bytes:
    payload = struct.pack("!IQQ", sport, seq, ts) + b"x" * 40
    udp = struct.pack("!HHHH", sport, 5000, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                       socket.inet_aton(CLIENT), socket.inet_aton(GEN)) + udp


def gen(args: argparse.Namespace) -> None:
    """Stamped paced traffic to P (and duplicates to S's dup port when --dup)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    groups = [group_of_key(canonical_key(17, socket.inet_aton(CLIENT), 10000 + f,
                                         socket.inet_aton(GEN), 5000)[0], GROUPS) for f in range(args.flows)]
    seqs = [0] * args.flows
    interval = 1.0 / args.rate
    t0 = time.perf_counter()
    for i in range(args.count):
        f = i % args.flows
        now = time.time_ns()
        d = shim.pack(shim.Stamp(0, 1, groups[f], 1, seqs[f], now), _inner(10000 + f, seqs[f], now))
        s.sendto(d, (P, 9000))
        if args.dup:
            s.sendto(d, (S, 9100))
        seqs[f] += 1
        target = t0 + (i + 1) * interval
        while time.perf_counter() < target:
            pass


def sink(args: argparse.Namespace) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind(("0.0.0.0", 5000))
    s.settimeout(args.idle)
    times: list[float] = []
    seen: set[tuple[int, int]] = set()
    dups = 0
    Path(args.out + ".ready").write_text("1")
    while True:
        try:
            d = s.recv(4096)
        except TimeoutError:
            if times:
                break
            continue
        times.append(time.perf_counter())
        fs = struct.unpack_from("!IQ", d)  # (flow sport, per-flow seq) of the payload
        if fs in seen:
            dups += 1
        seen.add(fs)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    Path(args.out).write_text(json.dumps({"received": len(times), "distinct": len(seen), "duplicates": dups,
                                          "max_gap_ms": max(gaps, default=0) * 1e3}))


def _self(*a: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *a]


class FT:
    def __init__(self, topo: Topology, work: Path) -> None:
        self.topo, self.work = topo, work
        br = topo.bridge("br", cidr="10.96.0.254/24")
        self.g, self.p, self.s = topo.ns("gen"), topo.ns("p"), topo.ns("s")
        for ns, ip in ((self.g, GEN), (self.p, P), (self.s, S)):
            topo.attach(ns, br, cidr=f"{ip}/24")
        netns.add_route(self.g, "10.96.2.0/24", dev="eth0")
        netns.run(["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"], ns=self.g)

    def instance(self, name: str, ns: str, ip: str, role: str, replicas: list[str],
                 lease: str) -> tuple[subprocess.Popen[bytes], ControlClient]:
        sock = str(self.work / f"{name}.sock")
        cfg = {"name": name, "lease": lease, "role": role, "data_ip": ip, "workers": 1,
               "flow_groups": GROUPS, "replicas": replicas, "control_socket": sock,
               "engine": {"batch_size": 32, "batch_timeout_ms": 1.0, "replica_log_max": 1 << 20},
               "nf": {"type": "counter"}}
        path = self.work / f"{name}.yml"
        path.write_text(yaml.safe_dump(cfg))
        log = (self.work / f"{name}.log").open("wb")
        proc = self.topo.start([sys.executable, "-m", "nf.instance", "--config", str(path)], ns=ns,
                               stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
        cc = ControlClient(sock, timeout_s=120)
        deadline = time.monotonic() + 30
        while True:
            try:
                cc.status()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.work / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"instance {name} did not start:\n{tail}") from None
                time.sleep(0.05)
        return proc, cc

    def _sink(self) -> tuple[subprocess.Popen[bytes], Path]:
        out = self.work / f"sink-{time.monotonic_ns()}.json"
        p = self.topo.start(_self("sink", "--out", str(out), "--idle", "1.5"), ns=self.g)
        while not Path(str(out) + ".ready").exists():
            time.sleep(0.05)
        return p, out

    def _gen(self, flows: int, rate: float, count: int, dup: bool) -> subprocess.Popen[bytes]:
        args = ["gen", "--flows", str(flows), "--rate", str(rate), "--count", str(count)]
        return self.topo.start(_self(*args, *(["--dup"] if dup else [])), ns=self.g)

    def failover(self, rate: float) -> dict[str, Any]:
        sp, sc = self.instance("fs", self.s, S, "secondary", [], "fo")
        pp, pc = self.instance("fp", self.p, P, "primary", [f"{S}:9200"], "fo")
        while not pc.status()["workers"][0]["replicas"][0]["connected"]:
            time.sleep(0.05)
        snk, out = self._sink()
        g = self._gen(256, rate, int(rate * 4), dup=True)
        time.sleep(2.0)
        os.killpg(pp.pid, signal.SIGKILL)
        t = time.perf_counter()
        res = sc.promote(epoch=2)
        promote_ms = (time.perf_counter() - t) * 1e3
        g.wait(60)
        snk.wait(60)
        r = json.loads(out.read_text())
        for x in (pc, sc):
            x.close()
        netns.stop_process(sp)
        return {"promote_ms": promote_ms, "replayed": res["replayed"], "gap_ms": r["max_gap_ms"],
                "delivered": r["distinct"] / int(rate * 4), "duplicates": r["duplicates"]}

    def migration(self, flows: int, replica_first: bool) -> dict[str, Any]:
        bp, bc = self.instance("mb", self.s, S, "primary", [], "mb")
        ap, ac = self.instance("ma", self.p, P, "primary", [], "ma")
        snk, _out = self._sink()
        self._gen(flows, 20000, flows, dup=False).wait(120)  # one packet per flow
        snk.wait(60)
        if replica_first:
            ac.add_replica(f"{S}:9200")
            while ac.status()["workers"][0]["replicas"][0]["lag_batches"] != 0:
                time.sleep(0.05)
        groups = list(range(0, GROUPS, 2))
        t = time.perf_counter()
        res = ac.handover(groups, to=f"{S}:9200", dup_to=f"{S}:9100")
        ms = (time.perf_counter() - t) * 1e3
        owned = bc.status()["flows_owned"]
        for x in (ac, bc):
            x.close()
        netns.stop_process(ap)
        netns.stop_process(bp)
        return {"handover_ms": ms, "moved_flows": res["flows"], "target_owned": owned}


def main() -> int:
    ap = argparse.ArgumentParser(description="NF failover / migration timings")
    sub = ap.add_subparsers(dest="mode")
    g = sub.add_parser("gen")
    g.add_argument("--flows", type=int)
    g.add_argument("--rate", type=float)
    g.add_argument("--count", type=int)
    g.add_argument("--dup", action="store_true")
    s = sub.add_parser("sink")
    s.add_argument("--out")
    s.add_argument("--idle", type=float)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--flows", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--prefix", default="nf", help="namespace prefix (unique per engineer/run)")
    ap.add_argument("--skip-migration", action="store_true", help="failover only")
    args = ap.parse_args()
    if args.mode == "gen":
        gen(args)
        return 0
    if args.mode == "sink":
        sink(args)
        return 0
    rows: dict[str, list[dict[str, Any]]] = {"failover": [], "mig_replica": [], "mig_full": []}
    with tempfile.TemporaryDirectory() as d, Topology(args.prefix) as topo:
        ft = FT(topo, Path(d))
        for i in range(args.runs):
            rows["failover"].append(ft.failover(args.rate))
            if not args.skip_migration:
                rows["mig_replica"].append(ft.migration(args.flows, True))
                rows["mig_full"].append(ft.migration(args.flows, False))
            print(f"run {i + 1}: {json.dumps({k: v[-1] for k, v in rows.items() if v})}", flush=True)

    def med(k: str, f: str) -> float:
        vals = [float(r[f]) for r in rows[k] if f in r]
        return float(statistics.median(vals)) if vals else float("nan")

    print(f"\nfailover @ {args.rate:.0f} pps (kill -9 + immediate promote), medians of {args.runs}:")
    print(f"  promote call {med('failover', 'promote_ms'):.1f} ms, "
          f"replayed {med('failover', 'replayed'):.0f} "
          f"packets, largest sink gap {med('failover', 'gap_ms'):.1f} ms, "
          f"delivered {med('failover', 'delivered'):.4f}, duplicates {med('failover', 'duplicates'):.0f} "
          f"(per run: {[r.get('duplicates') for r in rows['failover']]})")
    print(f"migration of half the flow groups with {args.flows} flows, medians of {args.runs}:")
    print(f"  target already a replica (delta only): handover {med('mig_replica', 'handover_ms'):.1f} ms, "
          f"{med('mig_replica', 'moved_flows'):.0f} flows moved")
    print(f"  target not a replica (full snapshot):   handover {med('mig_full', 'handover_ms'):.1f} ms, "
          f"{med('mig_full', 'moved_flows'):.0f} flows moved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
