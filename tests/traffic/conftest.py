"""Fixtures for traffic tests: a two-namespace veth pair (prefix ``tg``) and helpers that run the
generator and the sink as real processes inside those namespaces (``python -m traffic ...``).

Everything is created through ``lab.netns.Topology`` and removed on exit, even on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import netns
from lab.netns import Topology

A_IP, B_IP = "10.201.0.1", "10.201.0.2"
A_MAC, B_MAC = "02:00:0a:c9:00:01", "02:00:0a:c9:00:02"


@dataclass
class Pair:
    """Client namespace ``a`` (10.201.0.1) -- veth -- sink namespace ``b`` (10.201.0.2)."""

    topo: Topology
    a: str
    b: str
    tmp: Path

    def profile(self, name: str, **fields: Any) -> Path:
        data: dict[str, Any] = {"name": name}
        data.update(fields)
        path = self.tmp / f"{name}.yml"
        path.write_text(yaml.safe_dump(data))
        return path

    def start_sink(self, profile: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
        out = self.tmp / f"sink-{time.monotonic_ns()}.json"
        ready = out.with_suffix(".ready")
        proc = self.topo.start(
            [sys.executable, "-m", "traffic", "sink", "--profile", str(profile), "--json-out", str(out),
             "--ready-file", str(ready), *extra],
            ns=self.b, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sink did not start: {proc.communicate(timeout=5)}")
            time.sleep(0.05)
        return proc, out

    def sink_result(self, proc: subprocess.Popen[bytes], out: Path, timeout: float = 60) -> dict[str, Any]:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err.decode()[-2000:]
        result: dict[str, Any] = json.loads(out.read_text())
        return result

    def gen(self, profile: Path, *extra: str, ns: str | None = None, timeout: float = 120) -> dict[str, Any]:
        out = self.tmp / f"gen-{time.monotonic_ns()}.json"
        cp = netns.run(
            [sys.executable, "-m", "traffic", "gen", "--profile", str(profile), "--dst", B_IP,
             "--json-out", str(out), *extra],
            ns=ns or self.a, check=False, timeout=timeout,
        )
        assert cp.returncode == 0, cp.stderr[-2000:]
        result: dict[str, Any] = json.loads(out.read_text())
        result["_wall_s"] = None
        return result


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    with Topology(f"tg{os.getpid() % 10000}") as topo:
        a, b = topo.ns("a"), topo.ns("b")
        topo.link(a, "eth0", b, "eth0")
        for ns, ip, mac, peer_ip, peer_mac in ((a, A_IP, A_MAC, B_IP, B_MAC), (b, B_IP, B_MAC, A_IP, A_MAC)):
            netns.run(["ip", "link", "set", "eth0", "address", mac], ns=ns)
            netns.add_addr(ns, "eth0", f"{ip}/24")
            # static neighbours and no IPv6: no ARP/ND packets, so deterministic impairments
            # (nft numgen counters) see only the test's own packets
            neigh = ["ip", "neigh", "replace", peer_ip, "lladdr", peer_mac, "dev", "eth0", "nud", "permanent"]
            netns.run(neigh, ns=ns)
            netns.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], ns=ns)
        yield Pair(topo, a, b, tmp_path)
