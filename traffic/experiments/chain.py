"""One experiment point's network: traffic generator -> stamper -> NF instance(s) -> traffic sink.

Layout (one Linux bridge ``tx<tag>br`` without an address in the root namespace, every host a
namespace; everything removed on exit even on failure)::

    cl  10.204.1.2/24, default via 10.204.1.1        sv  10.204.2.2/24, default via 10.204.2.1
    st  10.204.0.1/24 + 10.204.1.1/32 + 10.204.2.1/32: nf.stamper, routes 10.204.1/24 and
        10.204.2/24 into its TUN; Redis here when a global-state store is needed
    nK  NF primary K at 10.204.0.(10+K); rK.J its replica J at 10.204.0.(100+10K+J)

Client packets to the sink go through the stamper's TUN, are stamped to the flow group's primary
(and, in ``duplicate: stamper`` mode, copied to its replicas), processed, output-committed and
forwarded by the primary's raw socket straight to the sink. The flow groups are split evenly
between the ``nf_count`` primaries.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab import netns
from lab.netns import Topology
from nf.balancer import InstanceLoad, decide
from nf.control import ControlClient, ControlError
from nf.flow import canonical_key, group_of_key
from traffic.patterns import flow_weights

STAMPER_IP = "10.204.0.1"
CLIENT_IP = "10.204.1.2"
SINK_IP = "10.204.2.2"
SINK_PORT = 5000
FLOW_GROUPS = 64
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PointConfig:
    """Everything one measurement point varies (units in the names)."""

    rate_pps: float = 2000.0
    duration_s: float = 3.0
    flows: int = 16
    size_bytes: int = 128
    distribution: str = "uniform"
    nf_count: int = 1
    workers: int = 1
    replicas: int = 1  # per primary (0 = no fault tolerance)
    batch_size: int = 32
    buffer_size: int = 10
    batch_timeout_ms: float = 2.0
    global_update_every: int = 0  # packets between global-state updates (0 = off)
    zipf_s: float = 1.0  # skew when distribution is zipf
    balance: int = 0  # 0: flow groups split evenly; 1: placed by the thesis' 80 % balancer (nf.balancer)
    capacity_pps: float = 1500.0  # per-NF capacity the balancer assumes (usage = rate / capacity)
    capacity_share: float = 0.0  # > 0: capacity_pps = capacity_share x rate_pps (same relative load)
    spare_nfs: int = 0  # primaries the balancer may add (the thesis' "create a new NF"); idle otherwise

    def __post_init__(self) -> None:
        if self.rate_pps <= 0 or self.duration_s <= 0:
            raise ValueError("rate_pps and duration_s must be > 0")
        if not 1 <= self.nf_count <= 8 or not 0 <= self.replicas <= 4 or not 1 <= self.workers <= 8:
            raise ValueError("nf_count must be 1..8, replicas 0..4, workers 1..8")
        if not 0 <= self.spare_nfs <= 8 - self.nf_count:
            raise ValueError("spare_nfs must be 0..8-nf_count")
        if not 1 <= self.flows <= 4096:
            raise ValueError("flows must be 1..4096")
        if self.balance not in (0, 1) or self.capacity_pps <= 0 or self.zipf_s < 0 or self.capacity_share < 0:
            raise ValueError("balance must be 0 or 1, capacity_pps > 0, zipf_s and capacity_share >= 0")
        if self.batch_size < 1 or self.buffer_size < 1 or self.global_update_every < 0:
            raise ValueError("batch_size and buffer_size must be >= 1, global_update_every >= 0")


def primary_ip(k: int) -> str:
    return f"10.204.0.{10 + k}"


def replica_ip(k: int, j: int) -> str:
    return f"10.204.0.{100 + 10 * k + j}"


def group_rates(cfg: PointConfig) -> dict[int, float]:
    """Offered pps per flow group: the generator's flows (sport 20000+i, weights as it uses them)
    hashed to groups exactly as the stamper does (``nf.flow``)."""
    weights = flow_weights([1.0] * cfg.flows, cfg.distribution, cfg.zipf_s)
    rates: dict[int, float] = {}
    for i, w in enumerate(weights):
        key, _ = canonical_key(17, socket.inet_aton(CLIENT_IP), 20000 + i, socket.inet_aton(SINK_IP),
                               SINK_PORT)
        g = group_of_key(key, FLOW_GROUPS)
        rates[g] = rates.get(g, 0.0) + cfg.rate_pps * w
    return rates


def assign_groups(cfg: PointConfig, max_rounds: int = 50) -> tuple[list[list[int]], int]:
    """Flow groups per primary slot (``nf_count + spare_nfs`` slots): an even split over the first
    ``nf_count``, then (``balance=1``) rounds of ``nf.balancer.decide`` until nothing is overloaded
    or nothing more can be done. Returns the groups of every slot (empty = not started) and the
    number of moves.

    The ``nf_count`` initial primaries form cluster ``c1`` of at most ``nf_count`` members; a new
    instance the balancer asks for takes the next spare slot (none left: that move is skipped).
    """
    per = [[int(g) for g in _expand(r)] for r in group_ranges(cfg.nf_count)]
    per += [[] for _ in range(cfg.spare_nfs)]
    if not cfg.balance:
        return per, 0
    rates = group_rates(cfg)
    cap = cfg.capacity_share * cfg.rate_pps if cfg.capacity_share else cfg.capacity_pps
    owner = {g: k for k, gs in enumerate(per) for g in gs}
    slot = {f"n{k + 1}": k for k in range(cfg.nf_count)}
    cluster = dict.fromkeys(slot, "c1")
    moves = 0
    for _ in range(max_rounds):
        loads = []
        for name, k in slot.items():
            flows = {str(g): rates.get(g, 0.0) for g, o in owner.items() if o == k and rates.get(g)}
            loads.append(InstanceLoad(name, cluster[name], sum(flows.values()) / cap, cap, flows))
        decision = decide(loads, max_per_cluster=cfg.nf_count)
        for new in decision.new_instances:
            if len(slot) < len(per):
                slot[new.name], cluster[new.name] = len(slot), new.cluster
        applied = [m for m in decision.moves if m.dst in slot]
        if not applied:
            break
        for m in applied:
            owner[int(m.group)] = slot[m.dst]
            moves += 1
    return [sorted(g for g, o in owner.items() if o == k) for k in range(len(per))], moves


def _expand(r: str) -> range:
    a, b = r.split("-")
    return range(int(a), int(b) + 1)


def group_ranges(n: int, groups: int = FLOW_GROUPS) -> list[str]:
    """Split ``0..groups-1`` into ``n`` contiguous ranges ``"a-b"``."""
    out, start = [], 0
    for k in range(n):
        size = groups // n + (1 if k < groups % n else 0)
        out.append(f"{start}-{start + size - 1}")
        start += size
    return out


class Chain:
    """Builds and runs one point inside ``topo`` (the caller owns ``topo``: it removes everything)."""

    def __init__(self, topo: Topology, workdir: Path, cfg: PointConfig) -> None:
        self.topo, self.dir, self.cfg = topo, workdir, cfg
        self.clients: dict[str, ControlClient] = {}
        self.ns: dict[str, str] = {}
        self.assignment, self.lb_moves = assign_groups(cfg)
        # primaries that serve flow groups (unused spare slots are never started)
        self.primaries = [k for k in range(1, len(self.assignment) + 1) if self.assignment[k - 1]]
        br = topo.bridge("br")  # no address in the root namespace: the chain is namespaces only
        names = ["st", "cl", "sv"] + [f"n{k}" for k in self.primaries]
        names += [f"r{k}{j}" for k in self.primaries for j in range(1, cfg.replicas + 1)]
        for name in names:
            self.ns[name] = topo.ns(name)
            topo.attach(self.ns[name], br)
        st = self.ns["st"]
        for cidr in (f"{STAMPER_IP}/24", "10.204.1.1/32", "10.204.2.1/32"):
            netns.add_addr(st, "eth0", cidr)
        for sysctl in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                       "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"):
            netns.run(["sysctl", "-qw", sysctl], ns=st)
        netns.add_addr(self.ns["cl"], "eth0", f"{CLIENT_IP}/24")
        netns.add_route(self.ns["cl"], "default", via="10.204.1.1")
        netns.add_addr(self.ns["sv"], "eth0", f"{SINK_IP}/24")
        netns.add_route(self.ns["sv"], "default", via="10.204.2.1")
        for k in self.primaries:
            ips = [(f"n{k}", primary_ip(k))]
            ips += [(f"r{k}{j}", replica_ip(k, j)) for j in range(1, cfg.replicas + 1)]
            for name, ip in ips:
                netns.add_addr(self.ns[name], "eth0", f"{ip}/24")
                netns.add_route(self.ns[name], "10.204.1.0/24", dev="eth0")
                netns.add_route(self.ns[name], "10.204.2.0/24", dev="eth0")

    # ---- processes ----------------------------------------------------------------------------
    def _start(self, name: str, module: str, config: dict[str, Any], ns: str, status: str) -> ControlClient:
        path = self.dir / f"{name}.yml"
        path.write_text(yaml.safe_dump(config))
        with (self.dir / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
            proc = self.topo.start([sys.executable, "-m", module, "--config", str(path)], ns=ns,
                                   stdout=log, stderr=subprocess.STDOUT)
        cc = ControlClient(config["control_socket"], timeout_s=30)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                cc.call(status)
                break
            except ControlError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start: {exc}\n{self.log(name)}") from None
                time.sleep(0.1)
        self.clients[name] = cc
        return cc

    def log(self, name: str) -> str:
        p = self.dir / f"{name}.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def statestore(self) -> str:
        """A Redis in the stamper namespace for global state; returns its contract file path."""
        from nf.store.localredis import LocalRedis  # noqa: PLC0415 - only with global updates

        r = LocalRedis(self.dir / "redis", bind=STAMPER_IP, ns=self.ns["st"]).start()
        self.topo.procs.append(r.proc)  # type: ignore[arg-type]
        path = self.dir / "statestore.yml"
        path.write_text(yaml.safe_dump({"backend": "redis", "endpoints": [r.endpoint]}))
        return str(path)

    def start_nfs(self) -> None:
        cfg = self.cfg
        store = self.statestore() if cfg.global_update_every else None
        engine = {"batch_size": cfg.batch_size, "buffer_size": cfg.buffer_size,
                  "batch_timeout_ms": cfg.batch_timeout_ms}
        nf = {"type": "counter", "counter": {"global_update_every": cfg.global_update_every}}
        steering = []
        for k in self.primaries:
            owned = self.assignment[k - 1]
            reps = [replica_ip(k, j) for j in range(1, cfg.replicas + 1)]
            for j, ip in enumerate(reps, start=1):
                self._start(f"r{k}{j}", "nf.instance", {
                    "name": f"r{k}{j}", "lease": f"svc{k}", "role": "secondary", "data_ip": ip,
                    "workers": cfg.workers, "flow_groups": FLOW_GROUPS,
                    "control_socket": str(self.dir / f"r{k}{j}.sock"), "statestore": store,
                    "engine": engine, "nf": nf}, self.ns[f"r{k}{j}"], "status")
            self._start(f"n{k}", "nf.instance", {
                "name": f"n{k}", "lease": f"svc{k}", "role": "primary", "data_ip": primary_ip(k),
                "workers": cfg.workers, "flow_groups": FLOW_GROUPS,
                "replicas": [f"{ip}:9200" for ip in reps],
                "control_socket": str(self.dir / f"n{k}.sock"), "statestore": store,
                "engine": engine, "nf": nf}, self.ns[f"n{k}"], "status")
            steering.append({"groups": ",".join(map(str, owned)), "target": {
                "primary": f"{primary_ip(k)}:9000", "secondaries": [f"{ip}:9100" for ip in reps],
                "workers": cfg.workers}})
        self._start("stamper", "nf.stamper", {
            "id": 1, "tun": "deft0", "routes": ["10.204.1.0/24", "10.204.2.0/24"],
            "flow_groups": FLOW_GROUPS, "duplicate": "stamper", "steering": steering,
            "control_socket": str(self.dir / "stamper.sock")}, self.ns["st"], "status")

    def run_traffic(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Sink in ``sv``, generator in ``cl`` (both ``python -m traffic``); returns their reports."""
        cfg = self.cfg
        profile = {
            "name": "point", "duration_s": cfg.duration_s, "method": "raw", "distribution": cfg.distribution,
            "zipf_s": cfg.zipf_s,
            "flows": [{"proto": "udp", "dst": SINK_IP, "dport": SINK_PORT, "sport": 20000,
                       "count": cfg.flows, "size_bytes": cfg.size_bytes}],
            "pattern": {"kind": "constant", "rate_pps": cfg.rate_pps},
            "sink": {"mode": "udp", "idle_timeout_s": 1.5, "grace_s": 5.0, "first_packet_timeout_s": 30.0},
        }
        prof = self.dir / "profile.yml"
        prof.write_text(yaml.safe_dump(profile))
        sink_out, ready, gen_out = self.dir / "sink.json", self.dir / "sink.ready", self.dir / "gen.json"
        sink = self.topo.start([sys.executable, "-m", "traffic", "sink", "-p", str(prof), "--json-out",
                                str(sink_out), "--ready-file", str(ready)], ns=self.ns["sv"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if sink.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("traffic sink did not start")
            time.sleep(0.05)
        netns.run([sys.executable, "-m", "traffic", "gen", "-p", str(prof), "--json-out", str(gen_out)],
                  ns=self.ns["cl"], timeout=cfg.duration_s + 60)
        _, err = sink.communicate(timeout=cfg.duration_s + 60)
        if sink.returncode != 0:
            raise RuntimeError(f"traffic sink failed: {err.decode(errors='replace')[-1000:]}")
        return json.loads(gen_out.read_text()), json.loads(sink_out.read_text())

    def nf_metrics(self) -> list[dict[str, Any]]:
        return [self.clients[f"n{k}"].metrics() for k in self.primaries]

    def close(self) -> None:
        for cc in self.clients.values():
            cc.close()
        self.clients.clear()
