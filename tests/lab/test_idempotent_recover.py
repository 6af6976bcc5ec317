"""`lab up` twice is harmless, and `lab up` repairs a host whose sshd or keeper died."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable

import pytest

from lab import lifecycle, netns, procs
from lab.config import LabConfig
from lab.sshd import ssh_run as ssh
from lab.sshd import sshd_pid

MakeLab = Callable[..., LabConfig]

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def _wait_dead(pid: int) -> None:
    for _ in range(100):
        if not procs.pid_alive(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} did not exit")


def test_up_twice_changes_nothing(make_lab: MakeLab) -> None:
    cfg = make_lab("ltidem", hosts=1)
    before = lifecycle.status(cfg.name, cfg.storage_root)
    ssh(cfg, cfg.plan()[0], "echo kept > /etc/deft/k")
    report = lifecycle.up(cfg)
    assert all(line.endswith("up (unchanged)") for line in report.lines), report.lines
    after = lifecycle.status(cfg.name, cfg.storage_root)
    assert {h: v["sshd_pid"] for h, v in after["hosts"].items()} == {
        h: v["sshd_pid"] for h, v in before["hosts"].items()
    }
    assert sorted(n for n in netns.list_ns() if n.startswith("ltidem-")) == sorted(p.ns for p in cfg.plan())
    assert ssh(cfg, cfg.plan()[0], "cat /etc/deft/k").strip() == "kept"


def test_killed_sshd_is_restarted_in_the_same_host_view(make_lab: MakeLab) -> None:
    cfg = make_lab("ltrec", hosts=1)
    nfv1 = cfg.plan()[0]
    ssh(cfg, nfv1, "echo survives > /run/marker")  # /run is tmpfs: only the same mount ns has it
    pid = sshd_pid(nfv1)
    assert pid
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)
    assert not lifecycle.status(cfg.name, cfg.storage_root)["up"]
    report = lifecycle.up(cfg)
    assert "restarted" in report.lines[0]
    assert ssh(cfg, nfv1, "cat /run/marker; hostname").split() == ["survives", "nfv1"]


def test_killed_keeper_and_sshd_rebuilds_host(make_lab: MakeLab) -> None:
    cfg = make_lab("ltrec", hosts=1)
    sink = cfg.plan()[-1]
    st = lifecycle.status(cfg.name, cfg.storage_root)["hosts"]["sink"]
    keeper = procs.read_pidfile(sink.storage / "keeper.pid")
    assert keeper and st["sshd_pid"]
    for pid in (keeper, st["sshd_pid"]):
        os.kill(pid, signal.SIGKILL)
        _wait_dead(pid)
    report = lifecycle.up(cfg)
    assert "re-created" in report.lines[-1]
    assert ssh(cfg, sink, "hostname").strip() == "sink"


def test_resize_adds_and_removes_hosts(make_lab: MakeLab) -> None:
    cfg = make_lab("ltrsz", hosts=1)
    bigger = dataclasses.replace(cfg, hosts=2)
    lifecycle.up(bigger)
    plans = bigger.plan()
    assert [ssh(bigger, p, "hostname").strip() for p in plans] == ["nfv1", "nfv2", "client", "sink"]
    assert ssh(bigger, plans[2], "ip -br -4 addr show eth0").split()[2] == f"{plans[2].mgmt_ip}/24"
    lifecycle.up(cfg)
    assert not netns.ns_exists("ltrsz-nfv2")
    assert [ssh(cfg, p, "hostname").strip() for p in cfg.plan()] == ["nfv1", "client", "sink"]
