"""Every ordered pair of NFV hosts exchanges packets over the VXLAN overlay, not the underlay.

Proof: host A pings host B's overlay address (br-int, 10.80.<i>.1); the tx counter of A's tunnel
port towards B (``vx-<index of B>``) and the rx counter of B's port from A (``vx-<index of A>``)
rise. Counters are read live with ``ovs-ofctl dump-ports`` (the Interface ``statistics`` column is
refreshed only every 5 s); the userspace datapath credits tunnel packets to port counters in
batches, so the test waits (up to ~10 s) for the rise instead of expecting an exact count.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import pytest

from deftctl.playbook import PlaybookRun

pytestmark = [pytest.mark.lab, pytest.mark.netns, pytest.mark.slow]
PINGS = 3


def _stats(on_host: Any, host: str, port: str) -> dict[str, int]:
    raw = on_host(host, "ovs-ofctl", "dump-ports", "br-int", port)
    rx, tx = re.search(r"rx pkts=(\d+)", raw), re.search(r"tx pkts=(\d+)", raw)
    assert rx and tx, f"{host}: no counters for {port}: {raw}"
    return {"rx_packets": int(rx[1]), "tx_packets": int(tx[1])}


def test_every_ordered_pair_uses_its_tunnel(
    provisioned_lab: PlaybookRun, on_host: Any, nfv_hosts: dict[str, dict[str, Any]]
) -> None:
    assert provisioned_lab.returncode == 0, provisioned_lab.tail()
    nfv = nfv_hosts
    for a, b in itertools.permutations(sorted(nfv), 2):
        port_ab, port_ba = f"vx-{nfv[b]['host_index']}", f"vx-{nfv[a]['host_index']}"
        before_a, before_b = _stats(on_host, a, port_ab), _stats(on_host, b, port_ba)
        out = on_host(a, "ping", "-c", str(PINGS), "-i", "0.2", "-W", "2", nfv[b]["overlay_ip"])
        assert f"{PINGS} received" in out, f"{a} -> {b} overlay ping lost packets:\n{out}"
        for _ in range(20):
            after_a, after_b = _stats(on_host, a, port_ab), _stats(on_host, b, port_ba)
            rose = (
                after_a["tx_packets"] > before_a["tx_packets"],
                after_a["rx_packets"] > before_a["rx_packets"],
                after_b["rx_packets"] > before_b["rx_packets"],
            )
            if all(rose):
                break
            time.sleep(0.5)
        assert all(rose), f"{a}->{b}: {port_ab} tx/rx rose, {b}'s {port_ba} rx rose: {rose}"


def test_overlay_address_is_not_on_the_underlay(
    provisioned_lab: PlaybookRun, on_host: Any, nfv_hosts: dict[str, dict[str, Any]]
) -> None:
    """The overlay subnet is reachable only through br-int (no underlay route shortcuts it)."""
    assert provisioned_lab.returncode == 0, provisioned_lab.tail()
    nfv = nfv_hosts
    for host, hv in nfv.items():
        peer_ip = next(v["overlay_ip"] for h, v in nfv.items() if h != host)
        route = on_host(host, "ip", "-4", "route", "get", peer_ip)
        assert " dev br-int " in route, f"{host}: route to {peer_ip} is not via br-int: {route}"
        assert hv["overlay_ip"] in on_host(host, "ip", "-4", "-o", "addr", "show", "dev", "br-int")
