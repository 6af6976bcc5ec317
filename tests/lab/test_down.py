"""`lab down` removes namespaces, veths, bridges, mounts, NAT rule and every process - also ones
started later inside hosts, including processes in their own network/mount namespaces (containers)."""

from __future__ import annotations

import glob
import subprocess
import time
from collections.abc import Callable

import pytest

from lab import lifecycle, netns, procs, rootns
from lab.config import LabConfig
from lab.sshd import ssh_run as ssh

MakeLab = Callable[..., LabConfig]

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_down_leaves_nothing(make_lab: MakeLab) -> None:
    cfg = make_lab("ltdown", hosts=1)
    nfv1, client = cfg.plan()[0], cfg.plan()[1]
    # Daemons started "by Ansible" inside the hosts: a detached one, one in its own network
    # namespace (like a container's process), and one in its own mount+network namespace below a
    # parent that stays in the host (like containerd-shim -> container init).
    ssh(cfg, nfv1, "setsid -f sleep 7301 </dev/null >/dev/null 2>&1")
    ssh(cfg, nfv1, "setsid -f unshare -n sleep 7302 </dev/null >/dev/null 2>&1")
    ssh(cfg, client, "setsid -f sh -c 'unshare -m -n sleep 7303 & wait' </dev/null >/dev/null 2>&1")
    pattern = "^sleep 730[123]$"
    for _ in range(100):  # `setsid -f` returns before its child has exec'd
        if len(_live(pattern)) == 3:
            break
        time.sleep(0.1)
    assert len(_live(pattern)) == 3
    storage = str(cfg.lab_dir)

    lifecycle.down(cfg.name, purge=True, storage_root=cfg.storage_root)

    assert not [n for n in netns.list_ns() if n.startswith(f"{cfg.name}-")]
    links = netns.run(["ip", "-br", "link"]).stdout
    assert f"{cfg.name}-" not in links
    nat = netns.run(["iptables", "-t", "nat", "-S", "POSTROUTING"]).stdout
    assert f"deft-lab:{cfg.name}" not in nat
    assert " ".join(rootns.nat_rule(cfg)[1:3]) not in nat
    assert _live(pattern) == []
    assert _live("unshare -m -n sleep 7303") == []
    assert _live(f"sshd -f {storage}") == []
    leaked = [p for p in glob.glob("/proc/[0-9]*/mountinfo") if storage in _read(p)]
    assert leaked == []
    assert not cfg.lab_dir.exists()


def _live(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split() if procs.pid_alive(int(p))]


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""
