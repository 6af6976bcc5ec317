"""Stamped datagrams for tests that drive one :class:`nf.engine.Worker` directly (no sockets in
between): what the stamper would send for one UDP flow 10.0.0.1:<sport> -> 10.0.0.2:5000."""

from __future__ import annotations

import socket
import struct
import time

from nf import shim


def stamped_udp(seq: int, group: int, sport: int = 40000) -> bytes:
    """Shim (epoch 1, ``seq``, ingress time now) + a 4-byte UDP packet of the flow ``sport``."""
    udp = struct.pack("!HHHH", sport, 5000, 12, 0) + b"abcd"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")) + udp
    return shim.pack(shim.Stamp(0, 1, group, 1, seq, time.time_ns()), ip)
