"""A Docker container attached to the overlay on one NFV host reaches a container on every other.

Each NFV host runs one container of the runtime image (``--network none``) and gives it an overlay
port with ``deft-ovs-attach`` (address 10.80.<host_index>.250); every container pings every other.
A container re-created on the same overlay address (a new instance after a failover or migration
gets a new MAC) is announced at once: its peers' ARP entries follow without waiting for expiry.
Containers and ports are removed afterwards, also when an assertion fails.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deftctl.playbook import PlaybookRun

pytestmark = [pytest.mark.lab, pytest.mark.netns, pytest.mark.slow]
NAME = "deft-test-ping"


def _attach(on_host: Any, host: str, ip: str) -> None:
    on_host(host, "deft-ovs-attach", "del", NAME, check=False)
    on_host(host, "docker", "rm", "-f", NAME, check=False)
    on_host(host, "docker", "run", "-d", "--network", "none", "--name", NAME,
            "deft-rl:latest", "sleep", "600")
    on_host(host, "deft-ovs-attach", "add", NAME, f"{ip}/16")


def _arp_mac(on_host: Any, host: str, ip: str) -> str:
    """The MAC ``host``'s container has for ``ip`` (``/proc/net/arp``: IP, HW type, flags, MAC, ...)."""
    for line in on_host(host, "docker", "exec", NAME, "cat", "/proc/net/arp").splitlines()[1:]:
        f = line.split()
        if f and f[0] == ip:
            return str(f[3])
    return ""


@pytest.fixture
def attached(
    provisioned_lab: PlaybookRun, on_host: Any, nfv_hosts: dict[str, dict[str, Any]]
) -> Iterator[dict[str, str]]:
    assert provisioned_lab.returncode == 0, provisioned_lab.tail()
    nfv = nfv_hosts
    ips: dict[str, str] = {}
    try:
        for host, hv in sorted(nfv.items()):
            ip = f"10.80.{hv['host_index']}.250"
            ips[host] = ip
            _attach(on_host, host, ip)
        yield ips
    finally:
        for host in ips:
            on_host(host, "deft-ovs-attach", "del", NAME, check=False)
            on_host(host, "docker", "rm", "-f", NAME, check=False)


def test_containers_reach_each_other(on_host: Any, attached: dict[str, str]) -> None:
    for a, b in itertools.permutations(sorted(attached), 2):
        out = on_host(a, "docker", "exec", NAME, "ping", "-c", "2", "-W", "2", attached[b], check=False)
        assert " 0% packet loss" in out, f"{a} cannot reach {b}'s container ({attached[b]}):\n{out}"


def test_runtime_image_runs_the_nf_package(on_host: Any, attached: dict[str, str]) -> None:
    host = next(iter(attached))
    out = on_host(host, "docker", "exec", NAME, "python3", "-c",
                  "import nf, redis, hazelcast, yaml, dacite, typer; print('ok')")
    assert out.strip() == "ok"


def test_reattached_address_is_announced(on_host: Any, attached: dict[str, str]) -> None:
    a, b = sorted(attached)[:2]
    out = on_host(b, "docker", "exec", NAME, "ping", "-c", "1", "-W", "2", attached[a], check=False)
    assert " 0% packet loss" in out, out
    old = _arp_mac(on_host, b, attached[a])
    _attach(on_host, a, attached[a])  # same address, new container, new MAC; no traffic from b
    new = on_host(a, "docker", "exec", NAME, "cat", "/sys/class/net/eth1/address").strip()
    assert old and new and new != old
    deadline = time.monotonic() + 3.0
    while _arp_mac(on_host, b, attached[a]) != new and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _arp_mac(on_host, b, attached[a]) == new, f"{b} still sends {attached[a]} to the old MAC {old}"
