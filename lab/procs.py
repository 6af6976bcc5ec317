"""Which processes belong to a lab host, which daemons run there, and how to stop them all.

A process belongs to a host when any of these holds:

1. it lives in the host's network namespace (sshd, supervisord, ovsdb-server, dockerd, redis ...);
2. it lives in the host's mount namespace (recorded when the host was created) - e.g. something that
   moved itself into another network namespace;
3. it descends from a process of (1) or (2) - e.g. a Docker container: ``runc`` puts it in its own
   network and mount namespaces, but it is a child of the host's ``containerd-shim``.

``lab down`` kills exactly this set, so it also removes what Ansible started later inside the hosts,
and nothing else. Namespace identity is the inode of ``/proc/<pid>/ns/{net,mnt}`` (read with
``os.stat``), which is what ``ip netns pids`` compares too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

DAEMONS: dict[str, re.Pattern[str]] = {
    "sshd": re.compile(r"^(/usr/sbin/)?sshd\b"),
    "supervisord": re.compile(r"(^|/|\s)supervisord\b"),
    "ovsdb-server": re.compile(r"(^|/)ovsdb-server\b"),
    "ovs-vswitchd": re.compile(r"(^|/)ovs-vswitchd\b"),
    "dockerd": re.compile(r"(^|/)dockerd\b"),
    "containerd": re.compile(r"(^|/)containerd(\s|$)"),
    "redis-server": re.compile(r"(^|/)redis-server\b(?!.*(\[sentinel\]|--sentinel))"),
    "redis-sentinel": re.compile(r"(^|/)redis-sentinel\b|redis-server .*\[sentinel\]|--sentinel"),
    "influxd": re.compile(r"(^|/)influxd\b"),
    "grafana": re.compile(r"(^|/)grafana(-server)?\b"),
    "hazelcast": re.compile(r"com\.hazelcast\.|hazelcast.*\.jar"),
    "deft-agent": re.compile(r"deftctl agent|-m agent\b|(^|/)deft-agent\b"),
    "placement": re.compile(r"deftctl placement serve|-m placement\b"),
}
"""Daemon name -> pattern on the full command line; what ``lab status`` reports per host."""


def ns_inode(path: str | Path) -> int | None:
    """Inode of a namespace file (``/run/netns/X``, ``/proc/<pid>/ns/mnt``), None if unreadable."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pid_ns(pid: int, kind: str) -> int | None:
    return ns_inode(f"/proc/{pid}/ns/{kind}")


def netns_inode(ns: str) -> int | None:
    return ns_inode(f"/run/netns/{ns}")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    cmdline: str
    netns: int | None
    mntns: int | None


def snapshot() -> list[ProcInfo]:
    """One pass over /proc: pid, parent, command line and namespaces of every process."""
    out: list[ProcInfo] = []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline", "name"]):
        info = proc.info
        cmd = " ".join(info.get("cmdline") or []) or f"[{info.get('name') or ''}]"
        pid = int(info["pid"])
        out.append(ProcInfo(pid, int(info.get("ppid") or 0), cmd, pid_ns(pid, "net"), pid_ns(pid, "mnt")))
    return out


def host_pids(netns: int | None, mntns: Iterable[int], procs: list[ProcInfo] | None = None) -> set[int]:
    """PIDs that belong to one host (see module docstring), never this process or its ancestors."""
    procs = snapshot() if procs is None else procs
    # Safety: the machine's own namespaces (those of PID 1) never identify a lab host.
    root_net, root_mnt = pid_ns(1, "net"), pid_ns(1, "mnt")
    if netns is not None and netns == root_net:
        netns = None
    mnts = {m for m in mntns if m and m != root_mnt}
    members = {
        p.pid
        for p in procs
        if (netns is not None and p.netns == netns) or (p.mntns is not None and p.mntns in mnts)
    }
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    todo = list(members)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in members:
                members.add(child)
                todo.append(child)
    members -= _self_and_ancestors()
    return members


def _self_and_ancestors() -> set[int]:
    out: set[int] = set()
    with contextlib.suppress(psutil.Error):
        proc: psutil.Process | None = psutil.Process(os.getpid())
        while proc is not None:
            out.add(proc.pid)
            proc = proc.parent()
    return out


def daemons_in(pids: set[int], procs: list[ProcInfo]) -> dict[str, list[int]]:
    """Which of :data:`DAEMONS` run among ``pids`` (name -> pids)."""
    found: dict[str, list[int]] = {}
    for p in procs:
        if p.pid not in pids:
            continue
        for name, pattern in DAEMONS.items():
            if pattern.search(p.cmdline):
                found.setdefault(name, []).append(p.pid)
    return found


def kill_all(pids_fn: Callable[[], set[int]], grace_s: float = 5.0) -> int:
    """SIGTERM what ``pids_fn()`` returns, re-scanning (children may appear), SIGKILL after ``grace_s``.

    ``pids_fn`` is a zero-argument callable returning the current set; returns how many PIDs were
    signalled in total. Daemons get the grace period to shut down cleanly (dockerd stops containers,
    redis may save), then whatever is left is killed.
    """
    signalled: set[int] = set()
    deadline = time.monotonic() + grace_s
    sig = signal.SIGTERM
    while True:
        pids: set[int] = pids_fn()
        alive = {p for p in pids if _alive(p)}
        if not alive:
            return len(signalled)
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        for pid in alive:
            if sig == signal.SIGKILL or pid not in signalled:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
                signalled.add(pid)
        if sig == signal.SIGKILL and time.monotonic() > deadline + 10:
            log.warning("processes survive SIGKILL: %s", sorted(alive))
            return len(signalled)
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def pid_alive(pid: int | None) -> bool:
    return pid is not None and pid > 0 and _alive(pid)


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
