"""`lab up` creates hosts that behave like separate servers: SSH, hostname, private directories."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab.config import LabConfig
from lab.privdirs import PRIVATE_DIRS
from lab.sshd import ssh_run as ssh

MakeLab = Callable[..., LabConfig]

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_hosts_reachable_with_own_hostname_and_private_dirs(make_lab: MakeLab) -> None:
    cfg = make_lab("ltup", hosts=2)
    plans = cfg.plan()
    assert [ssh(cfg, p, "hostname").strip() for p in plans] == ["nfv1", "nfv2", "client", "sink"]
    nfv1, nfv2 = plans[0], plans[1]
    ssh(cfg, nfv1, "echo only-on-nfv1 > /etc/deft/marker && echo x > /var/lib/docker/marker")
    assert ssh(cfg, nfv1, "cat /etc/deft/marker").strip() == "only-on-nfv1"
    assert ssh(cfg, nfv2, "ls -A /etc/deft /var/lib/docker").split() == ["/etc/deft:", "/var/lib/docker:"]
    # every private dir is a mount point inside the host, /run is a private tmpfs
    mounts = ssh(cfg, nfv2, "cat /proc/self/mounts")
    targets = {line.split()[1] for line in mounts.splitlines()}
    assert set(PRIVATE_DIRS) <= targets
    assert "tmpfs /run tmpfs" in mounts


def test_host_network_and_cgroups(make_lab: MakeLab) -> None:
    cfg = make_lab("ltup", hosts=1)
    nfv1, client = cfg.plan()[0], cfg.plan()[1]
    addrs = ssh(cfg, nfv1, "ip -br -4 addr show eth0; ip -br -4 addr show eth1; cat /sys/class/net/eth1/mtu")
    assert nfv1.mgmt_ip in addrs and nfv1.data_ip in addrs and addrs.split()[-1] == "1600"
    assert f"default via {cfg.mgmt_gateway} dev eth0" in ssh(cfg, nfv1, "ip route")
    # underlay reaches the other host with a full 1572-byte payload (1600 MTU), no fragmentation
    ssh(cfg, nfv1, f"ping -c1 -W2 -M do -s 1572 {client.data_ip}")
    cg = ssh(cfg, nfv1, "ls /sys/fs/cgroup; cat /proc/self/cgroup").split()
    for h in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"):
        assert h in cg
