"""Every ordered pair of NFV hosts exchanges packets over the VXLAN overlay, not the underlay.

Proof: host A pings host B's overlay address (br-int, 10.80.<i>.1); the tx counter of A's tunnel
port towards B (``vx-<index of B>``) and the rx counter of B's port from A (``vx-<index of A>``)
rise by at least the number of echo requests / replies.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from deftctl.playbook import PlaybookRun

pytestmark = [pytest.mark.lab, pytest.mark.netns, pytest.mark.slow]
PINGS = 3


def _stats(on_host: Any, host: str, port: str) -> dict[str, int]:
    raw = on_host(host, "ovs-vsctl", "get", "interface", port, "statistics")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", raw)}


def test_every_ordered_pair_uses_its_tunnel(
    provisioned_lab: PlaybookRun, on_host: Any, nfv_hosts: dict[str, dict[str, Any]]
) -> None:
    assert provisioned_lab.returncode == 0, provisioned_lab.tail()
    nfv = nfv_hosts
    for a, b in itertools.permutations(sorted(nfv), 2):
        port_ab, port_ba = f"vx-{nfv[b]['host_index']}", f"vx-{nfv[a]['host_index']}"
        before_a, before_b = _stats(on_host, a, port_ab), _stats(on_host, b, port_ba)
        on_host(a, "ping", "-c", str(PINGS), "-i", "0.2", "-W", "2", nfv[b]["overlay_ip"])
        after_a, after_b = _stats(on_host, a, port_ab), _stats(on_host, b, port_ba)
        assert after_a["tx_packets"] - before_a["tx_packets"] >= PINGS, f"{a}->{b}: {port_ab} tx did not rise"
        assert after_a["rx_packets"] - before_a["rx_packets"] >= PINGS, f"{a}<-{b}: {port_ab} rx did not rise"
        assert after_b["rx_packets"] - before_b["rx_packets"] >= PINGS, f"{b}: {port_ba} rx did not rise"


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
