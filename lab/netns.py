"""Network-namespace primitives: the one place that drives ``ip netns``/``ip link``.

Why a thin wrapper over ``ip`` instead of netlink code: ``iproute2`` is on every Debian host, its
semantics are what operators know, and every failure message already names the device. Each call
raises :class:`NetnsError` with the full command and stderr so a broken topology is diagnosable.

:class:`Topology` is a context manager for tests and benchmarks: everything it creates (namespaces,
veths, bridges, processes) is removed on exit, even when the body raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

IFNAMSIZ = 15  # Linux interface-name limit (bytes, without the NUL)


class NetnsError(RuntimeError):
    """An ``ip`` (or in-namespace) command failed; the message holds the command and its stderr."""


def run(
    args: Sequence[str],
    ns: str | None = None,
    check: bool = True,
    timeout: float = 30.0,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (in namespace ``ns`` when given) and return the completed process."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    try:
        cp = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, input=input_text
        )
    except FileNotFoundError as exc:
        raise NetnsError(f"{cmd[0]}: not installed (apt-get install iproute2)") from exc
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    if check and cp.returncode != 0:
        raise NetnsError(f"`{' '.join(cmd)}` failed ({cp.returncode}): {cp.stderr.strip()}")
    return cp


def list_ns() -> list[str]:
    """Names of all network namespaces known to ``ip netns``."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def ns_exists(name: str) -> bool:
    return name in list_ns()


def link_exists(name: str, ns: str | None = None) -> bool:
    return run(["ip", "link", "show", "dev", name], ns=ns, check=False).returncode == 0


def add_ns(name: str) -> None:
    """Create namespace ``name`` (idempotent) and bring its loopback up."""
    if not ns_exists(name):
        run(["ip", "netns", "add", name])
    run(["ip", "link", "set", "lo", "up"], ns=name)


def ns_pids(name: str) -> list[int]:
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(p) for p in out.split()]


def kill_ns_processes(name: str, grace_s: float = 2.0) -> None:
    """SIGTERM every process in namespace ``name``, then SIGKILL what is left after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = ns_pids(name)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and ns_pids(name):
            time.sleep(0.05)


def del_ns(name: str) -> None:
    """Kill the namespace's processes and delete it (idempotent)."""
    if ns_exists(name):
        kill_ns_processes(name)
        run(["ip", "netns", "del", name], check=False)


def add_bridge(name: str, cidr: str | None = None, mtu: int | None = None) -> None:
    """Linux bridge in the root namespace (idempotent), optionally with an address and MTU."""
    _check_ifname(name)
    if not link_exists(name):
        run(["ip", "link", "add", name, "type", "bridge"])
    if mtu:
        run(["ip", "link", "set", name, "mtu", str(mtu)])
    if cidr and cidr not in run(["ip", "-o", "addr", "show", "dev", name]).stdout:
        run(["ip", "addr", "add", cidr, "dev", name])
    run(["ip", "link", "set", name, "up"])


def del_link(name: str, ns: str | None = None) -> None:
    if link_exists(name, ns):
        run(["ip", "link", "del", name], ns=ns, check=False)


def add_veth(
    outer: str,
    inner: str,
    ns: str,
    inner_name: str | None = None,
    bridge: str | None = None,
    cidr: str | None = None,
    mtu: int | None = None,
) -> None:
    """veth pair: ``outer`` stays in the root namespace (optionally enslaved to ``bridge``),
    ``inner`` moves into ``ns`` and is renamed ``inner_name`` (e.g. ``eth0``) with ``cidr``."""
    _check_ifname(outer)
    _check_ifname(inner)
    final = inner_name or inner
    if not link_exists(outer):
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
        run(["ip", "link", "set", inner, "netns", ns])
        if inner_name:
            run(["ip", "link", "set", inner, "name", inner_name], ns=ns)
    if mtu:
        run(["ip", "link", "set", outer, "mtu", str(mtu)])
        run(["ip", "link", "set", final, "mtu", str(mtu)], ns=ns)
    if bridge:
        run(["ip", "link", "set", outer, "master", bridge])
    run(["ip", "link", "set", outer, "up"])
    if cidr and cidr not in run(["ip", "-o", "addr", "show", "dev", final], ns=ns).stdout:
        run(["ip", "addr", "add", cidr, "dev", final], ns=ns)
    run(["ip", "link", "set", final, "up"], ns=ns)


def add_veth_between(ns_a: str, if_a: str, ns_b: str, if_b: str, mtu: int | None = None) -> None:
    """A direct veth link between two namespaces (no bridge), e.g. for a benchmark path."""
    _check_ifname(if_a)
    _check_ifname(if_b)
    if link_exists(if_a, ns_a):
        return
    tmp_a, tmp_b = f"{if_a[:10]}{os.getpid() % 10000}a", f"{if_b[:10]}{os.getpid() % 10000}b"
    run(["ip", "link", "add", tmp_a[:IFNAMSIZ], "type", "veth", "peer", "name", tmp_b[:IFNAMSIZ]])
    run(["ip", "link", "set", tmp_a[:IFNAMSIZ], "netns", ns_a])
    run(["ip", "link", "set", tmp_b[:IFNAMSIZ], "netns", ns_b])
    run(["ip", "link", "set", tmp_a[:IFNAMSIZ], "name", if_a], ns=ns_a)
    run(["ip", "link", "set", tmp_b[:IFNAMSIZ], "name", if_b], ns=ns_b)
    for ns, ifn in ((ns_a, if_a), (ns_b, if_b)):
        if mtu:
            run(["ip", "link", "set", ifn, "mtu", str(mtu)], ns=ns)
        run(["ip", "link", "set", ifn, "up"], ns=ns)


def add_addr(ns: str | None, dev: str, cidr: str) -> None:
    if cidr not in run(["ip", "-o", "addr", "show", "dev", dev], ns=ns).stdout:
        run(["ip", "addr", "add", cidr, "dev", dev], ns=ns)


def add_route(ns: str | None, dest: str, via: str | None = None, dev: str | None = None) -> None:
    args = ["ip", "route", "replace", dest]
    if via:
        args += ["via", via]
    if dev:
        args += ["dev", dev]
    run(args, ns=ns)


def popen(
    args: Sequence[str], ns: str | None = None, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.Popen[bytes]:
    """Start a long-running process (in ``ns``); the caller owns it (see :class:`Topology`)."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, env=full_env, start_new_session=True, **kw)
    return proc


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace_s``; never raises."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace_s)


def _check_ifname(name: str) -> None:
    if len(name.encode()) > IFNAMSIZ:
        raise NetnsError(f"interface name {name!r} is longer than {IFNAMSIZ} bytes")


@dataclass
class Topology:
    """Namespaces, links and processes for one test or benchmark, all removed on exit.

    Names are prefixed with ``prefix`` so concurrent topologies never collide; keep the prefix
    short (interface names are limited to 15 bytes).

    >>> with Topology("t1") as topo:              # doctest: +SKIP
    ...     a, b = topo.ns("a"), topo.ns("b")
    ...     topo.link(a, "eth0", b, "eth0")
    ...     netns.add_addr(a, "eth0", "192.0.2.1/24")
    """

    prefix: str
    namespaces: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, name: str) -> str:
        full = f"{self.prefix}-{name}"
        add_ns(full)
        if full not in self.namespaces:
            self.namespaces.append(full)
        return full

    def bridge(self, name: str, cidr: str | None = None, mtu: int | None = None) -> str:
        full = f"{self.prefix}{name}"
        add_bridge(full, cidr, mtu)
        self.root_links.append(full)
        return full

    def link(self, ns_a: str, if_a: str, ns_b: str, if_b: str, mtu: int | None = None) -> None:
        add_veth_between(ns_a, if_a, ns_b, if_b, mtu)

    def attach(self, ns: str, bridge: str, cidr: str | None = None, ifname: str = "eth0") -> None:
        outer = f"{self.prefix}{ns[len(self.prefix) + 1:]}"[:IFNAMSIZ]
        add_veth(outer, f"{outer}p"[:IFNAMSIZ], ns, inner_name=ifname, bridge=bridge, cidr=cidr)
        self.root_links.append(outer)

    def start(
        self, args: Sequence[str], ns: str | None = None, env: dict[str, str] | None = None, **kw: Any
    ) -> subprocess.Popen[bytes]:
        proc = popen(args, ns=ns, env=env, **kw)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        for ns in reversed(self.namespaces):
            try:
                del_ns(ns)
            except NetnsError as exc:  # keep cleaning the rest
                log.warning("cleanup of namespace %s failed: %s", ns, exc)
        for link in reversed(self.root_links):
            with contextlib.suppress(NetnsError):
                del_link(link)
        self.procs.clear()
        self.namespaces.clear()
        self.root_links.clear()

    def __enter__(self) -> Topology:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextlib.contextmanager
def topology(prefix: str) -> Iterator[Topology]:
    """Function form of :class:`Topology` for ``with`` statements in fixtures."""
    topo = Topology(prefix)
    try:
        yield topo
    finally:
        topo.close()
