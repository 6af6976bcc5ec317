"""Namespace test network for the NF data-plane tests (prefix ``ne``).

Layout (one Linux bridge, every host a namespace)::

    client  10.98.1.2/24  (default via the stamper)      server  10.98.2.2-4/24 (default via the stamper)
    stamper 10.98.0.1/24 + 10.98.1.1, 10.98.2.1 (/32): routes clients, servers and 10.98.3.0/24
            (NAT public / LB VIP / SNAT addresses) into its TUN device
    NF instances 10.98.0.11, .12, .13 (/24) with on-link routes to clients and servers

Client -> server packets go client -> stamper (TUN) -> stamped to the primary (and in
``duplicate: stamper`` mode a copy to the secondary) -> processed -> forwarded by the instance's
raw socket straight to the server. Replies go server -> stamper -> instance -> client.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from lab import netns
from lab.netns import Topology
from nf.control import ControlClient, ControlError

REPO = Path(__file__).resolve().parents[2]
TRAFFIC = str(Path(__file__).with_name("nftraffic.py"))
NF_IPS = {"p": "10.98.0.11", "s": "10.98.0.12", "b": "10.98.0.13"}
CLIENT = "10.98.1.2"
SERVERS = ["10.98.2.2", "10.98.2.3", "10.98.2.4"]

#: Engine settings of the NF tests: small batches (8 packets, 2 ms batch timer) so a few hundred
#: packets make many batches, commits and (in migrations) batch boundaries
BASE_ENGINE: dict[str, Any] = {"batch_size": 8, "batch_timeout_ms": 2.0}
#: :data:`BASE_ENGINE` with a deep input buffer (200 batches): tail drops at admission on a CPU-starved
#: CI box (2 cores shared by OVS, the stamper, instances, senders and sinks) are not what the tests
#: using it test
DEEP_ENGINE: dict[str, Any] = {**BASE_ENGINE, "buffer_size": 200}


class NFNet:
    """Builds the layout above inside ``topo``; instances and traffic are started on demand."""

    def __init__(self, topo: Topology, workdir: Path, instances: tuple[str, ...] = ("p", "s")) -> None:
        self.topo = topo
        self.dir = workdir
        br = topo.bridge("br", cidr="10.98.0.254/24")
        self.ns: dict[str, str] = {}
        for name in ("st", "cl", "sv", *instances):
            self.ns[name] = topo.ns(name)
            topo.attach(self.ns[name], br)
        st, cl, sv = self.ns["st"], self.ns["cl"], self.ns["sv"]
        netns.add_addr(st, "eth0", "10.98.0.1/24")
        netns.add_addr(st, "eth0", "10.98.1.1/32")
        netns.add_addr(st, "eth0", "10.98.2.1/32")
        for k in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                  "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"):
            netns.run(["sysctl", "-qw", k], ns=st)
        netns.add_addr(cl, "eth0", f"{CLIENT}/24")
        netns.add_route(cl, "default", via="10.98.1.1")
        for ip in SERVERS:
            netns.add_addr(sv, "eth0", f"{ip}/24")
        netns.add_route(sv, "default", via="10.98.2.1")
        for i in instances:
            netns.add_addr(self.ns[i], "eth0", f"{NF_IPS[i]}/24")
            netns.add_route(self.ns[i], "10.98.1.0/24", dev="eth0")
            netns.add_route(self.ns[i], "10.98.2.0/24", dev="eth0")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.clients: dict[str, ControlClient] = {}

    # ---- NF instances ---------------------------------------------------------------------
    def instance(self, name: str, host: str, nf: dict[str, Any], role: str = "primary",
                 replicas: list[str] | None = None, workers: int = 1, lease: str = "svc",
                 epoch: int = 1, engine: dict[str, Any] | None = None, statestore: str | None = None,
                 flow_groups: int = 16) -> ControlClient:
        sock = str(self.dir / f"{name}.sock")
        cfg = {"name": name, "lease": lease, "role": role, "epoch": epoch, "data_ip": NF_IPS[host],
               "workers": workers, "flow_groups": flow_groups, "replicas": replicas or [],
               "control_socket": sock, "statestore": statestore,
               "engine": {**BASE_ENGINE, **(engine or {})}, "nf": nf}
        path = self.dir / f"{name}.yml"
        path.write_text(yaml.safe_dump(cfg))
        log = (self.dir / f"{name}.log").open("wb")
        proc = self.topo.start([sys.executable, "-m", "nf.instance", "--config", str(path)],
                               ns=self.ns[host], stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
        self.procs[name] = proc
        cc = ControlClient(sock, timeout_s=30)
        deadline = time.monotonic() + 20
        while True:
            try:
                cc.status()
                break
            except ControlError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"instance {name} did not start:\n{self.log(name)}") from None
                time.sleep(0.1)
        self.clients[name] = cc
        return cc

    def log(self, name: str) -> str:
        p = self.dir / f"{name}.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def stamper(self, steering: list[dict[str, Any]], duplicate: str = "stamper",
                translated: list[dict[str, Any]] | None = None, flow_groups: int = 16,
                statestore: str | None = None, idle_s: float = 0.0) -> ControlClient:
        sock = str(self.dir / "stamper.sock")
        cfg = {"id": 1, "tun": "deft0", "routes": ["10.98.1.0/24", "10.98.2.0/24", "10.98.3.0/24"],
               "flow_groups": flow_groups, "duplicate": duplicate, "steering": steering,
               "translated": translated or [], "control_socket": sock, "statestore": statestore,
               "flow_idle_timeout_s": idle_s}
        path = self.dir / "stamper.yml"
        path.write_text(yaml.safe_dump(cfg))
        log = (self.dir / "stamper.log").open("wb")
        proc = self.topo.start([sys.executable, "-m", "nf.stamper", "--config", str(path)],
                               ns=self.ns["st"], stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
        self.procs["stamper"] = proc
        cc = ControlClient(sock)
        deadline = time.monotonic() + 20
        while True:
            try:
                cc.call("status")
                break
            except ControlError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"stamper did not start:\n{self.log('stamper')}") from None
                time.sleep(0.1)
        self.clients["stamper"] = cc
        return cc

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(5)

    # ---- traffic ------------------------------------------------------------------------------
    def sink(self, name: str, port: int, bind: str = "0.0.0.0", echo: bool = False,
             latency: bool = False, host: str = "sv",
             live: bool = False) -> tuple[subprocess.Popen[bytes], Path]:
        out = self.dir / f"sink-{name}.json"
        args = [sys.executable, TRAFFIC, "sink", "--bind", bind, "--port", str(port), "--out", str(out)]
        if live:
            args.append("--live")
        if echo:
            args.append("--echo")
        if latency:
            args.append("--latency")
        proc = self.topo.start(args, ns=self.ns[host])
        time.sleep(0.3)
        return proc, out

    def send(self, dst: str, flows: int, rate: float, count: int, sport: int = 40000,
             echo: bool = False, linger: float = 1.0, wait: bool = True,
             size: int = 64, host: str = "cl") -> tuple[subprocess.Popen[bytes], Path]:
        out = self.dir / f"send-{sport}.json"
        args = [sys.executable, TRAFFIC, "send", "--dst", dst, "--flows", str(flows), "--rate", str(rate),
                "--count", str(count), "--sport", str(sport), "--out", str(out), "--linger", str(linger),
                "--size", str(size)]
        if echo:
            args.append("--echo")
        proc = self.topo.start(args, ns=self.ns[host])
        if wait:
            proc.wait(120)
        return proc, out

    @staticmethod
    def stop_read(proc: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
        netns.stop_process(proc)
        for _ in range(50):
            if out.exists() and out.stat().st_size:
                break
            time.sleep(0.1)
        return dict(json.loads(out.read_text()))

    def close(self) -> None:
        for cc in self.clients.values():
            cc.close()

    def redis(self) -> str:
        """A Redis state store in the stamper namespace (reachable by the instances); returns the
        path of its contract file (``statestore`` in instance/stamper configs)."""
        from nf.store.localredis import LocalRedis  # noqa: PLC0415

        r = LocalRedis(self.dir / "redis", bind="10.98.0.1", ns=self.ns["st"]).start()
        self.topo.procs.append(r.proc)  # type: ignore[arg-type]
        path = self.dir / "statestore.yml"
        path.write_text(yaml.safe_dump({"backend": "redis", "endpoints": [r.endpoint]}))
        return str(path)


def counter_section() -> dict[str, Any]:
    return {"type": "counter"}


def wait_for(pred: Any, timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def client_packets(export: dict[str, Any], client: str = CLIENT, owned_only: bool = False) -> dict[str, int]:
    """``"ip:port"`` of the ``client`` end -> packets counted by the counter NF, from an instance's
    ``export_state``; ``owned_only`` leaves out the flows it only holds as a replica."""
    out: dict[str, int] = {}
    for f in export["flows"]:
        if owned_only and f["replica_of"]:
            continue
        _proto, a_ip, a_port, b_ip, b_port = f["key"].split("-")  # canonical order: either end first
        ip, port = (a_ip, a_port) if a_ip == client else (b_ip, b_port)
        out[f"{ip}:{port}"] = int(f["view"]["packets"])
    return out


def instance_packets(control: str) -> dict[str, int]:
    """:func:`client_packets` of every flow the instance at ``control`` holds (owned or replica)."""
    with ControlClient(control) as cc:
        return client_packets(cc.export_state("all"))


def seq_defects(seqs: list[int], n: int) -> str:
    """What differs between a flow's received sequence numbers and ``0..n-1`` in order, exactly once:
    the missing and duplicated numbers and the first out-of-order spot, for an assertion message
    that tells loss from reordering (pytest's list diff is truncated to its first lines)."""
    missing = sorted(set(range(n)) - set(seqs))
    dups = sorted(s for s, k in Counter(seqs).items() if k > 1)
    first = next((i for i, (a, b) in enumerate(itertools.pairwise(seqs)) if b <= a), None)
    around = ""
    if first is not None:
        around = f", out of order at index {first + 1}: {seqs[max(0, first - 3) : first + 5]}"
    return f"{len(seqs)} received, missing {missing[:20]}, duplicated {dups[:20]}{around}"
