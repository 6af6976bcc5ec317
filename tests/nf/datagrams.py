"""Stamped datagrams for tests that drive one :class:`nf.engine.Worker` directly (no sockets in
between): what the stamper would send for one UDP flow 10.0.0.1:<sport> -> 10.0.0.2:5000."""

from __future__ import annotations

import socket
import struct
import time

from nf import shim


def udp_ipv4(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP/IPv4 packet (UDP checksum 0 = none; IP checksum 0, which a raw socket's kernel fills)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + udp


def stamped_udp(seq: int, group: int, sport: int = 40000) -> bytes:
    """Shim (epoch 1, ``seq``, ingress time now) + a 4-byte UDP packet of the flow ``sport``."""
    ip = udp_ipv4("10.0.0.1", "10.0.0.2", sport, 5000, b"abcd")
    return shim.pack(shim.Stamp(0, 1, group, 1, seq, time.time_ns()), ip)
