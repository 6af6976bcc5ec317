"""Fixtures of the Ansible tests: commands run with a lab host's view, and the lab's NFV hosts.

``on_host(host, *argv)`` enters a lab host's namespaces (network, mounts, hostname) through
:func:`lab.lifecycle.exec_argv` - exactly what an SSH session into that host sees, so ``ovs-vsctl``
and ``docker`` talk to that host's own daemons.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import lifecycle

OnHost = Callable[..., str]


@pytest.fixture(scope="session")
def on_host(lab_inventory: Path) -> OnHost:
    lab = lab_inventory.name

    def run(host: str, *argv: str, check: bool = True, timeout: float = 60.0) -> str:
        cp = subprocess.run(
            lifecycle.exec_argv(lab, host, list(argv)),
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and cp.returncode != 0:
            raise AssertionError(f"{host}: `{' '.join(argv)}` failed ({cp.returncode}): {cp.stderr.strip()}")
        return cp.stdout

    return run


@pytest.fixture(scope="session")
def nfv_hosts(lab_inventory: Path) -> dict[str, dict[str, Any]]:
    """NFV host -> its host variables (host_index, tunnel_ip, overlay_ip, ...) from hosts.yml."""
    data = yaml.safe_load((lab_inventory / "hosts.yml").read_text(encoding="utf-8"))
    hosts: dict[str, dict[str, Any]] = data["all"]["children"]["nfv"]["hosts"]
    return hosts
