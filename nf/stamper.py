"""The ingress stamper/gateway: client packets in, stamped datagrams to the flow group's primary.

Packet path: the service prefix (and the translators' public addresses, for return traffic) is
routed into a TUN device on the ingress host; the stamper reads whole IP packets from it — the
client's packet stays byte-for-byte unchanged, no proxy chain collapses flow identity (DEFT's
nginx/timestamper chain did) — and for each packet:

1. 5-tuple -> canonical flow key -> flow group (``crc32 % flow_groups``; for packets to a
   translator's public ``ip:port`` the port's group, see :func:`nf.flow.port_group`);
2. per-flow sequence number (in this stamper's *epoch*) and ingress timestamp into the shim;
3. ``sendto(primary ip, data_port + group % workers)``; in ``duplicate: stamper`` mode also a copy
   (flag DUPLICATE) to every secondary's ``dup_port + group % workers`` (normally OVS duplicates).

No single point of failure: a restarted (or additional) stamper takes a fresh epoch from the store
(atomic ``increment`` of ``stamper/<id>/epoch``) and starts every flow at seq 0 of that epoch;
instances order by (epoch, seq), so nothing needs to survive the crash. The steering table comes
from the store (``steering/<service>/<group>``, written by nf-control, watched with a local cache)
or from the config's static ``steering`` list (tests, deployments without a store); ``steer`` on
the control socket overrides entries at run time.

Control socket (JSON lines, like :mod:`nf.control`): ``status``, ``metrics``, ``steer`` (``groups``,
``primary``, ``secondaries``, ``workers``), ``shutdown``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import select
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deftctl import setup_logging
from deftctl.config import ConfigError, load
from nf import shim
from nf.flow import parse_5tuple
from nf.neigh import NeighbourWarmer

if TYPE_CHECKING:
    from nf.steering import SteeringEntry

log = logging.getLogger("nf.stamper")

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


@dataclass(frozen=True)
class Target:
    """Where a flow group goes: ``primary`` ``ip:data_port`` (base), ``secondaries`` ``ip:dup_port``
    (base), ``workers`` of those instances."""

    primary: str
    secondaries: list[str] = field(default_factory=list)
    workers: int = 1


@dataclass(frozen=True)
class StaticSteering:
    """Static steering for ``groups`` (``"all"``, ``"0-15"``, ``"3"``, ``"1,5,9"``)."""

    groups: str
    target: Target


@dataclass(frozen=True)
class Translated:
    """A translator pool (NAT public ip / LB snat ip): return traffic to ``ip`` with a port in
    ``port_lo``..``port_hi`` belongs to the flow group of the port."""

    ip: str
    port_lo: int
    port_hi: int


@dataclass(frozen=True)
class StamperConfig:
    """``id``: stamper number (shim stamper_id, store key); ``service``: steering namespace;
    ``tun``: TUN device name; ``routes``: prefixes routed into it at start; ``flow_groups`` must
    equal the instances'; ``epoch``: used only without a store; ``duplicate``: ``ovs`` or
    ``stamper``; ``workers``: default worker count of instances steered from the store;
    ``control_socket``: JSON control path; ``flow_idle_timeout_s``: forget a flow's counter after
    this long without packets (0 = never; must be >= 1.5 x the instances' engine timeout so an
    instance never still remembers a flow the stamper restarts at seq 0); ``neigh_refresh_s``:
    re-probe interval (s) of the neighbour entries of every primary and secondary in the steering
    table (nf.neigh: a switch-over to a secondary must not start with ARP resolution);
    ``tun_txqueuelen``: packets the kernel queues on the TUN device for the stamper. Why not the
    kernel's 500: that is 25 ms at 20 kpps, and on a shared 2-core host the stamper is sometimes
    descheduled longer, so packets were dropped there first, below the overlay's capacity (lab,
    2026-12-04: 3.5 % lost at 20 kpps with 500, none with 10 000). Same depth as the overlay's
    ``br-int`` (``overlay_bridge_txqueuelen``)."""

    id: int = 1
    service: str = "nf"
    tun: str = "deft0"
    routes: list[str] = field(default_factory=list)
    flow_groups: int = 64
    epoch: int = 1
    statestore: str | None = None
    duplicate: str = "ovs"
    workers: int = 1
    steering: list[StaticSteering] = field(default_factory=list)
    translated: list[Translated] = field(default_factory=list)
    control_socket: str = ""
    flow_idle_timeout_s: float = 0.0
    neigh_refresh_s: float = 10.0
    tun_txqueuelen: int = 10000

    def __post_init__(self) -> None:
        if self.duplicate not in ("ovs", "stamper"):
            raise ValueError(f"duplicate: {self.duplicate!r} must be ovs or stamper")
        if not 0 <= self.id < 65536:
            raise ValueError(f"id: {self.id} must fit 16 bits")
        if self.tun_txqueuelen < 1:
            raise ValueError(f"tun_txqueuelen: {self.tun_txqueuelen} must be >= 1 (packets)")
        for s in self.steering:
            parse_groups(s.groups, self.flow_groups)


def parse_groups(spec: str, flow_groups: int) -> list[int]:
    """``"all"`` / ``"a-b"`` / ``"a,b,c"`` -> group list; ``ValueError`` naming the bad part."""
    if spec == "all":
        return list(range(flow_groups))
    out: list[int] = []
    for part in str(spec).split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"groups: {spec!r}: {part!r} is not N or N-M")
        a, b = int(lo), int(hi) if sep else int(lo)
        if not 0 <= a <= b < flow_groups:
            raise ValueError(f"groups: {spec!r}: {part!r} outside 0..{flow_groups - 1}")
        out.extend(range(a, b + 1))
    return out


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    ipaddress.IPv4Address(host)
    return host, int(port)


def target_of(entry: SteeringEntry) -> Target:
    """The stamper's view of a steering entry: stamped input to the primary's ``data_port`` (+
    worker), copies to every secondary's ``dup_port`` (+ worker), never to a secondary's data port
    (a replica must log copies, not process them as a primary would), with the primary's
    ``workers`` (an entry names its own worker count; the config's ``workers`` is only the default
    of static steering)."""
    return Target(f"{entry.primary.ip}:{entry.primary.data_port}",
                  [f"{s.ip}:{s.dup_port}" for s in entry.secondaries], entry.primary.workers)


#: compiled steering of one group: (primary ip, primary base port, workers, [(ip, base port)])
Compiled = tuple[str, int, int, tuple[tuple[str, int], ...]]


class Stamper:
    """The stamping loop plus its steering cache; see the module docstring."""

    def __init__(self, cfg: StamperConfig, store: Any = None) -> None:
        self.cfg = cfg
        self._neigh_new: deque[str] = deque()  # addresses to probe (appended by any thread)
        self.store = store
        self.table: list[Compiled | None] = [None] * cfg.flow_groups
        for s in cfg.steering:
            self.steer(parse_groups(s.groups, cfg.flow_groups), s.target)
        self.translated = [(ipaddress.IPv4Address(t.ip).packed, t.port_lo, t.port_hi) for t in cfg.translated]
        self.epoch = self._take_epoch()
        self.seqs: dict[bytes, int] = {}
        self.old_seqs: dict[bytes, int] = {}  # previous generation (idle expiry)
        self.counters = {"received": 0, "stamped": 0, "malformed": 0, "no_route": 0, "duplicated": 0,
                         "send_errors": 0}
        self.running = True
        self._watcher: Any = None
        self.neigh = NeighbourWarmer(cfg.neigh_refresh_s)

    def _take_epoch(self) -> int:
        if self.store is None:
            return self.cfg.epoch
        from nf.store import keys  # noqa: PLC0415 - store is optional
        ep = int(self.store.increment(keys.stamper_epoch(str(self.cfg.id))))
        log.info("stamper %d: epoch %d from the store", self.cfg.id, ep)
        return ep

    def steer(self, groups: list[int], target: Target) -> None:
        pip, pport = _addr(target.primary)
        secs = tuple(_addr(s) for s in target.secondaries) if self.cfg.duplicate == "stamper" else ()
        entry: Compiled = (pip, pport, target.workers, secs)
        for g in groups:
            self.table[g] = entry
        # every replica may become the primary: resolve its address now (the serve loop probes;
        # steer() runs on the watcher and control threads, deque appends are thread-safe)
        self._neigh_new.append(pip)
        self._neigh_new.extend(_addr(s)[0] for s in target.secondaries)

    def watch_store(self) -> None:
        """Follow ``steering/<service>/`` in the store (nf.steering.SteeringEntry JSON)."""
        from nf.steering import decode_entries  # noqa: PLC0415
        from nf.store import PrefixWatcher, keys  # noqa: PLC0415

        def apply(raw: dict[str, bytes]) -> None:
            for e in decode_entries(raw):
                if not str(e.group).isdigit() or int(e.group) >= self.cfg.flow_groups:
                    log.error("steering %s/%s: group is not in 0..%d", e.service, e.group,
                              self.cfg.flow_groups - 1)
                    continue
                self.steer([int(e.group)], target_of(e))

        self._watcher = PrefixWatcher(self.store, keys.steering_prefix(self.cfg.service), apply).start()

    def group_of(self, t: tuple[int, bytes, int, bytes, int]) -> tuple[int, bytes]:
        """(flow group, canonical key) of a parsed packet (same key as nf.flow.canonical_key)."""
        proto, src, sp, dst, dp = t
        a = src + sp.to_bytes(2, "big")
        b = dst + dp.to_bytes(2, "big")
        key = bytes((proto,)) + (a + b if a <= b else b + a)
        for ip, lo, hi in self.translated:
            if dst == ip and lo <= dp <= hi:
                return (dp - lo) % self.cfg.flow_groups, key
        return zlib.crc32(key) % self.cfg.flow_groups, key

    def stamp(self, pkt: bytes) -> None:
        """Stamp and send one client packet (the hot path)."""
        c = self.counters
        c["received"] += 1
        t = parse_5tuple(pkt)
        if t is None:
            c["malformed"] += 1
            return
        group, fkey = self.group_of(t)
        entry = self.table[group]
        if entry is None:
            c["no_route"] += 1
            return
        seq = self.seqs.get(fkey)
        if seq is None:
            seq = self.old_seqs.pop(fkey, 0) if self.old_seqs else 0
        self.seqs[fkey] = seq + 1
        pip, pport, workers, secs = entry
        w = group % workers
        hdr = shim.SHIM.pack(shim.MAGIC, shim.VERSION, 0, self.cfg.id, 0, group, self.epoch, seq,
                             time.time_ns())
        try:
            self.sock.sendto(hdr + pkt, (pip, pport + w))
            c["stamped"] += 1
            if secs:
                dup = shim.set_flags(hdr, shim.FLAG_DUPLICATE) + pkt
                for sip, sport in secs:
                    self.sock.sendto(dup, (sip, sport + w))
                    c["duplicated"] += 1
        except OSError:
            c["send_errors"] += 1

    def open_tun(self) -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        ifr = struct.pack("16sH", self.cfg.tun.encode(), IFF_TUN | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
        from lab.netns import run  # noqa: PLC0415 - the one wrapper around `ip`
        run(["ip", "link", "set", self.cfg.tun, "txqueuelen", str(self.cfg.tun_txqueuelen), "up"])
        for r in self.cfg.routes:
            run(["ip", "route", "replace", r, "dev", self.cfg.tun])
        return fd

    def serve(self, fd: int) -> None:
        """Read the TUN device ``fd`` (from :meth:`open_tun`) until :meth:`stop`."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        read = os.read
        stamp = self.stamp
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        os.set_blocking(fd, False)
        idle_s = self.cfg.flow_idle_timeout_s
        rotate_at = time.monotonic() + idle_s
        neigh_at = 0.0
        while self.running:
            now = time.monotonic()
            if idle_s and now >= rotate_at:
                # two generations: a flow idle for idle_s..2*idle_s is forgotten
                self.old_seqs, self.seqs = self.seqs, {}
                rotate_at = now + idle_s
            if self._neigh_new or now >= neigh_at:
                self._warm_neighbours(now)
                neigh_at = now + 1.0
            if not poller.poll(200):
                continue
            for _ in range(256):
                try:
                    pkt = read(fd, 65535)
                except BlockingIOError:
                    break
                stamp(pkt)
        os.close(fd)
        self.neigh.close()

    def _warm_neighbours(self, now: float) -> None:
        q = self._neigh_new
        while q:
            self.neigh.want(q.popleft(), now)
        self.neigh.tick(now)

    def status(self) -> dict[str, Any]:
        return {"id": self.cfg.id, "epoch": self.epoch, "flows": len(self.seqs) + len(self.old_seqs),
                "groups_routed": sum(1 for e in self.table if e is not None),
                "neigh_probes": self.neigh.probes, **self.counters}

    def command(self, cmd: str, args: dict[str, Any]) -> Any:
        if cmd in ("status", "metrics"):
            return self.status()
        if cmd == "steer":
            groups = parse_groups(str(args["groups"]), self.cfg.flow_groups)
            t = Target(str(args["primary"]), [str(s) for s in args.get("secondaries", [])],
                       int(args.get("workers", 1)))
            self.steer(groups, t)
            return {"groups": len(groups)}
        if cmd == "shutdown":
            self.running = False
            return {"stopping": True}
        raise ValueError(f"unknown command {cmd!r} (status, metrics, steer, shutdown)")


def serve_control(path: str, handler: Any) -> socketserver.ThreadingUnixStreamServer:
    """JSON-lines control server on Unix socket ``path`` calling ``handler(cmd, args)``."""

    class H(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                try:
                    req = json.loads(line)
                    ans = {"ok": True, "result": handler(str(req.pop("cmd")), req)}
                except Exception as exc:  # bad requests never stop the server
                    ans = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                self.wfile.write(json.dumps(ans).encode() + b"\n")

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()
    srv = socketserver.ThreadingUnixStreamServer(path, H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True, name="stamper-control").start()
    return srv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nf.stamper", description="Run the DEFT ingress stamper.")
    ap.add_argument("--config", required=True)
    ap.add_argument("--log-level", default="INFO")
    ns = ap.parse_args(argv)
    setup_logging(ns.log_level.upper())
    try:
        cfg = load(StamperConfig, ns.config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    store = None
    if cfg.statestore:
        from nf.store import open_store  # noqa: PLC0415
        store = open_store(None if cfg.statestore == "default" else cfg.statestore)
    st = Stamper(cfg, store)
    if store is not None:
        st.watch_store()
    import signal  # noqa: PLC0415

    def _stop(*_: object) -> None:
        st.running = False

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # The device (queue length, routes) is configured before the control socket answers, so a
    # caller that sees ``status`` answered can rely on it.
    fd = st.open_tun()
    srv = serve_control(cfg.control_socket or f"/run/deft/nf/stamper-{cfg.id}.sock", st.command)
    log.info("stamper %d epoch %d on %s (%d groups routed)", cfg.id, st.epoch, cfg.tun,
             sum(1 for e in st.table if e is not None))
    try:
        st.serve(fd)
    finally:
        srv.shutdown()
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
