"""OpenFlow programming of a host's ``br-int`` through ``ovs-ofctl``/``ovs-vsctl`` (the NF control side).

Why the CLI tools and not an OpenFlow library: they are on every OVS host, speak to the bridge's
local management socket (no controller, no TCP port, as in DEFT), and their error messages name the
bad match or action. Each lab host runs its own ovsdb-server/ovs-vswitchd; :class:`OvsSwitch`
reaches it through that host's run directory (``OVS_RUNDIR``) and, in the lab, its network namespace.

Flows that DEFT owns carry a cookie whose top 16 bits are :data:`COOKIE_BASE` (0xDEF7); the rest is
a digest of the flow text, so "is this exact flow installed?" is a cookie lookup and removing a
flow is ``del-flows cookie=<c>/-1`` — nothing else on the bridge is touched.

:class:`LocalOvs` starts a private ovsdb-server + ovs-vswitchd (userspace datapath) under a work
directory, optionally inside a namespace, for tests and benchmarks, and stops them on exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from lab.netns import popen, stop_process

log = logging.getLogger(__name__)

COOKIE_BASE = 0xDEF7
COOKIE_MASK = 0xFFFF << 48
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


class OvsError(RuntimeError):
    """An ovs-* command failed; the message holds the command and its stderr."""


def flow_cookie(kind: int, text: str) -> int:
    """Cookie of a DEFT flow: ``0xDEF7 | kind (8 bit) | crc32(text) (32 bit)``; ``kind`` names the owner."""
    return (COOKIE_BASE << 48) | ((kind & 0xFF) << 40) | zlib.crc32(text.encode())


@dataclass(frozen=True)
class FlowStats:
    """One flow as ``dump-flows`` reports it."""

    cookie: int
    table: int
    priority: int
    n_packets: int
    n_bytes: int
    text: str


_DUMP_FIELD = re.compile(r"(cookie|table|priority|n_packets|n_bytes)=(0x[0-9a-fA-F]+|\d+)")


@dataclass
class OvsSwitch:
    """One bridge of one OVS instance (``rundir`` = its OVS_RUNDIR, ``ns`` = its namespace)."""

    bridge: str = "br-int"
    rundir: Path | None = None
    ns: str | None = None
    timeout_s: float = 10.0

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.rundir is not None:
            env["OVS_RUNDIR"] = str(self.rundir)
        return env

    def run(self, args: list[str], input_text: str | None = None) -> str:
        cmd = (["ip", "netns", "exec", self.ns] if self.ns else []) + args
        try:
            cp = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.timeout_s, env=self._env(),
                input=input_text, check=False,
            )
        except FileNotFoundError as exc:
            raise OvsError(f"{cmd[0]}: not installed (apt-get install openvswitch-switch)") from exc
        except subprocess.TimeoutExpired as exc:
            raise OvsError(f"timed out: {' '.join(cmd)}") from exc
        if cp.returncode != 0:
            raise OvsError(f"`{' '.join(cmd)}` failed ({cp.returncode}): {cp.stderr.strip()}")
        return cp.stdout

    def vsctl(self, *args: str) -> str:
        db = [f"--db=unix:{self.rundir / 'db.sock'}"] if self.rundir is not None else []
        return self.run(["ovs-vsctl", *db, "--timeout=10", *args])

    def ofctl(self, *args: str, input_text: str | None = None) -> str:
        return self.run(["ovs-ofctl", *args], input_text=input_text)

    # ---- ports -------------------------------------------------------------------------------
    def ofport(self, iface: str) -> int | None:
        """OpenFlow port number of interface ``iface`` on this host's OVS, ``None`` when absent."""
        try:
            out = self.vsctl("--if-exists", "get", "Interface", iface, "ofport").strip()
        except OvsError:
            return None
        if not out or not out.lstrip("-").isdigit() or int(out) <= 0:
            return None
        return int(out)

    def ports(self) -> list[str]:
        return [p for p in self.vsctl("list-ports", self.bridge).split() if p]

    # ---- flows -------------------------------------------------------------------------------
    def add_flows(self, flows: Iterable[str]) -> None:
        """Add flows (one ``ovs-ofctl add-flows`` call reading them from stdin)."""
        text = "\n".join(flows)
        if text:
            self.ofctl("add-flows", self.bridge, "-", input_text=text + "\n")

    def del_cookie(self, cookie: int) -> None:
        self.ofctl("del-flows", self.bridge, f"cookie={cookie:#x}/-1")

    def dump_flows(self, cookie_kind: int | None = None) -> list[FlowStats]:
        """Flows of the bridge; only DEFT flows of ``cookie_kind`` when given."""
        args = ["dump-flows", self.bridge]
        if cookie_kind is not None:
            args.append(f"cookie={(COOKIE_BASE << 48) | ((cookie_kind & 0xFF) << 40):#x}/{0xFFFFFF << 40:#x}")
        out = self.ofctl(*args)
        flows = []
        for raw in out.splitlines():
            line = raw.strip()
            if not line or line.startswith(("OFPST", "NXST")):
                continue
            f = dict(_DUMP_FIELD.findall(line))
            flows.append(
                FlowStats(
                    cookie=int(f.get("cookie", "0"), 0),
                    table=int(f.get("table", "0")),
                    priority=int(f.get("priority", "32768")),
                    n_packets=int(f.get("n_packets", "0")),
                    n_bytes=int(f.get("n_bytes", "0")),
                    text=line,
                )
            )
        return flows


@dataclass
class LocalOvs:
    """A private ovsdb-server + ovs-vswitchd (userspace datapath) in ``workdir`` (and namespace ``ns``)."""

    workdir: Path
    ns: str | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def rundir(self) -> Path:
        return self.workdir / "run"

    def switch(self, bridge: str = "br-int") -> OvsSwitch:
        return OvsSwitch(bridge=bridge, rundir=self.rundir, ns=self.ns)

    def start(self, timeout_s: float = 20.0) -> LocalOvs:
        for d in ("run", "db", "log"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        env = {
            "OVS_RUNDIR": str(self.rundir),
            "OVS_DBDIR": str(self.workdir / "db"),
            "OVS_LOGDIR": str(self.workdir / "log"),
        }
        db = self.workdir / "db" / "conf.db"
        if not db.exists():
            subprocess.run(
                ["ovsdb-tool", "create", str(db), str(OVS_SCHEMA)], check=True, capture_output=True
            )
        sock = self.rundir / "db.sock"
        self.procs.append(
            popen(
                [
                    "ovsdb-server", str(db), f"--remote=punix:{sock}",
                    f"--pidfile={self.rundir / 'ovsdb-server.pid'}",
                    f"--unixctl={self.rundir / 'ovsdb-server.ctl'}",
                    f"--log-file={self.workdir / 'log' / 'ovsdb-server.log'}",
                ],
                ns=self.ns, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )
        self._wait_for(sock, timeout_s)
        sw = self.switch()
        sw.vsctl("--no-wait", "init")
        self.procs.append(
            popen(
                [
                    "ovs-vswitchd", f"unix:{sock}",
                    f"--pidfile={self.rundir / 'ovs-vswitchd.pid'}",
                    f"--unixctl={self.rundir / 'ovs-vswitchd.ctl'}",
                    f"--log-file={self.workdir / 'log' / 'ovs-vswitchd.log'}",
                ],
                ns=self.ns, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                sw.vsctl("show")  # waits on the db; vswitchd readiness: a bridge add below waits on it
                break
            except OvsError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return self

    def add_bridge(self, bridge: str = "br-int") -> OvsSwitch:
        sw = self.switch(bridge)
        sw.vsctl("--may-exist", "add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev")
        deadline = time.monotonic() + 20
        while not (self.rundir / f"{bridge}.mgmt").exists():
            if time.monotonic() > deadline:
                raise OvsError(f"bridge {bridge}: management socket never appeared (is ovs-vswitchd up?)")
            time.sleep(0.05)
        return sw

    def add_port(self, bridge: str, iface: str) -> int:
        sw = self.switch(bridge)
        sw.vsctl("--may-exist", "add-port", bridge, iface)
        deadline = time.monotonic() + 10
        while (p := sw.ofport(iface)) is None:
            if time.monotonic() > deadline:
                raise OvsError(f"port {iface} on {bridge}: no ofport assigned")
            time.sleep(0.05)
        return p

    @staticmethod
    def _wait_for(path: Path, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if time.monotonic() > deadline:
                raise OvsError(f"{path} did not appear after {timeout_s} s")
            time.sleep(0.05)

    def stop(self) -> None:
        for p in reversed(self.procs):
            with contextlib.suppress(Exception):
                stop_process(p)
        self.procs.clear()

    def __enter__(self) -> LocalOvs:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
