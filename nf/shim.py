"""The stamp shim: THE wire format between the ingress stamper and an NF instance.

Why a binary shim in front of the packet (not text in the payload as in DEFT's seeds): the client's
packet must leave the chain byte-for-byte unchanged except for what the NF itself rewrites, so the
stamp cannot live inside it; a fixed 32-byte header parses with one ``struct.unpack_from`` (~150 ns)
and a bad packet is recognised by its magic/version instead of by a failing ``split``.

A stamped datagram is the UDP payload sent to the instance::

    | shim (32 B, network byte order) | original inner IPv4 packet (unchanged) |

Shim layout (``SHIM``)::

    magic      u16  0xDEF7
    version    u8   1
    flags      u8   FLAG_* bits
    stamper_id u16  which stamper stamped it (informational; ordering uses epoch)
    reserved   u16  0
    group      u32  flow group (hash of the canonical 5-tuple mod flow_groups, see nf.flow)
    epoch      u32  stamper epoch: a restarted stamper takes a new one from the store (atomic
                    increment), so (epoch, seq) stays totally ordered per flow without any
                    persistent per-flow counter: no single point of failure
    seq        u64  per-flow sequence number inside the epoch, starting at 0
    ts_ns      u64  ingress timestamp, ns since the epoch (CLOCK_REALTIME; lab hosts share a clock,
                    real hosts run NTP/PTP: path latency is only as good as the clock sync)

The instance removes the shim: only the inner packet is forwarded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = 0xDEF7
VERSION = 1

#: the copy was sent to a replica (stamper ``duplicate: stamper`` mode or OVS duplication)
FLAG_DUPLICATE = 0x01
#: the packet was forwarded by a migration source to the new owner (already stamped, unchanged)
FLAG_FORWARDED = 0x02

SHIM = struct.Struct("!HBBHHIIQQ")
SHIM_LEN = SHIM.size  # 32 bytes
assert SHIM_LEN == 32


class ShimError(ValueError):
    """A datagram does not start with a valid shim; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """Decoded shim (slow path: tests, tools; the engine unpacks the tuple directly)."""

    flags: int
    stamper_id: int
    group: int
    epoch: int
    seq: int
    ts_ns: int


def pack(stamp: Stamp, inner: bytes) -> bytes:
    """Shim + inner packet, ready to send to an instance's data port."""
    return SHIM.pack(MAGIC, VERSION, stamp.flags, stamp.stamper_id, 0, stamp.group, stamp.epoch,
                     stamp.seq, stamp.ts_ns) + inner


def unpack(datagram: bytes) -> tuple[Stamp, bytes]:
    """Decode a stamped datagram into (stamp, inner packet); raises :class:`ShimError`."""
    if len(datagram) < SHIM_LEN + 20:
        raise ShimError(f"datagram of {len(datagram)} bytes is shorter than shim + IPv4 header "
                        f"({SHIM_LEN + 20} bytes)")
    magic, ver, flags, sid, _res, group, epoch, seq, ts = SHIM.unpack_from(datagram)
    if magic != MAGIC:
        raise ShimError(f"bad magic 0x{magic:04x} (expected 0x{MAGIC:04x})")
    if ver != VERSION:
        raise ShimError(f"unsupported shim version {ver} (this build speaks {VERSION})")
    return Stamp(flags, sid, group, epoch, seq, ts), datagram[SHIM_LEN:]


def set_flags(datagram: bytes, flags: int) -> bytes:
    """Copy of ``datagram`` with ``flags`` OR-ed into the shim (used when forwarding)."""
    return datagram[:3] + bytes([datagram[3] | flags]) + datagram[4:]
