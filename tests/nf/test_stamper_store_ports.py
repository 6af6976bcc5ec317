"""A stamper following the steering table in the store addresses the right ports.

Stamped input goes to the primary's ``data_port + worker``; in ``duplicate: stamper`` mode the copy
(shim flag DUPLICATE) goes to each secondary's ``dup_port + worker`` — never to a secondary's data
port, where a replica would take it for primary input. The worker count comes from the entry's
primary (``Endpoint.workers``), not from the stamper's default. Real Redis (random port, tmp dir)
and real UDP sockets on 127.0.0.1; no namespaces.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

from nf import shim
from nf.stamper import Stamper, StamperConfig
from nf.steering import Endpoint, SteeringEntry, SteeringTable
from nf.store import StoreConfig, open_store
from nf.store.localredis import LocalRedis, free_port

GROUPS = 4


def _udp_packet(sport: int, dport: int) -> bytes:
    """A minimal IPv4/UDP packet 10.1.0.1:sport -> 10.2.0.1:dport (no checksums needed)."""
    payload = b"x" * 8
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1]))
    return ip + udp


def _bind(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(0.2)
    return s


def _drain(s: socket.socket) -> list[bytes]:
    out: list[bytes] = []
    while True:
        try:
            out.append(s.recv(65535))
        except TimeoutError:
            return out


def _free_base(n: int) -> int:
    """A base port with ``n`` consecutive free ports (checked by binding them)."""
    for _ in range(50):
        base = free_port("127.0.0.1")
        if base + n >= 65000:
            continue
        socks: list[socket.socket] = []
        try:
            for i in range(n):
                socks.append(_bind(base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free UDP ports")


def test_store_steering_copies_go_to_dup_port_of_the_right_worker(tmp_path: Path) -> None:
    workers = 2
    base = _free_base(8)
    prim = Endpoint("p1", "h1", 1, "127.0.0.1", "02:00:00:00:00:01", data_port=base, dup_port=base + 2,
                    repl_port=base + 4, workers=workers)
    sec = Endpoint("s1", "h2", 2, "127.0.0.1", "02:00:00:00:00:02", data_port=base + 4, dup_port=base + 6,
                   repl_port=base + 4, workers=workers)
    with LocalRedis(tmp_path / "redis") as srv:
        store = open_store(StoreConfig(backend="redis", endpoints=(srv.endpoint,)))
        ports = {"p_data": prim.data_port, "s_data": sec.data_port, "s_dup": sec.dup_port}
        socks = {name: [_bind(p + w) for w in range(workers)] for name, p in ports.items()}
        # the stamper's own default is 1 worker: the entry's workers must win
        st = Stamper(StamperConfig(flow_groups=GROUPS, duplicate="stamper", workers=1), store)
        try:
            table = SteeringTable(store)
            for g in range(GROUPS):
                table.put(SteeringEntry("nf", str(g), prim, (sec,), epoch=1, lease="svc"))
            st.watch_store()
            deadline = time.monotonic() + 10
            while any(e is None for e in st.table) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert all(e is not None for e in st.table), "stamper did not pick up the steering table"
            st.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sent_groups: dict[int, int] = {}
            for sport in range(41000, 41040):
                pkt = _udp_packet(sport, 7000)
                t = st.group_of((17, bytes([10, 1, 0, 1]), sport, bytes([10, 2, 0, 1]), 7000))
                sent_groups[t[0] % workers] = sent_groups.get(t[0] % workers, 0) + 1
                st.stamp(pkt)
            assert set(sent_groups) == {0, 1}, "test flows should cover both workers"
            for w in range(workers):
                got_p = _drain(socks["p_data"][w])
                got_dup = _drain(socks["s_dup"][w])
                got_sdata = _drain(socks["s_data"][w])
                assert len(got_p) == sent_groups[w], f"worker {w}: primary data port"
                assert len(got_dup) == sent_groups[w], f"worker {w}: secondary dup port"
                assert got_sdata == [], f"worker {w}: a copy reached the secondary's DATA port"
                for d in got_p:
                    stamp, _ = shim.unpack(d)
                    assert stamp.group % workers == w and not stamp.flags & shim.FLAG_DUPLICATE
                for d in got_dup:
                    stamp, _ = shim.unpack(d)
                    assert stamp.group % workers == w and stamp.flags & shim.FLAG_DUPLICATE
            assert st.counters["stamped"] == 40 and st.counters["duplicated"] == 40
        finally:
            if st._watcher is not None:
                st._watcher.stop()
            if getattr(st, "sock", None) is not None:
                st.sock.close()
            for lst in socks.values():
                for s in lst:
                    s.close()
            store.close()
