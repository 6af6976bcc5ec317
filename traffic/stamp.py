"""Payload stamp: the 18-byte header every generated packet carries at the start of its L4 payload.

Why 18 bytes: a 64-byte Ethernet frame (FCS included) holds 14 (Ethernet) + 20 (IPv4) + 8 (UDP)
+ 18 bytes of payload, so the smallest standard test packet still carries a full stamp.

Wire format (network byte order)::

    offset 0  u16  magic      0xDF57 ("DEFT stamp"); anything else is a malformed packet
    offset 2  u32  flow_id    generator-assigned flow number (0-based, unique per run)
    offset 6  u32  seq        per-flow sequence number, 0-based, +1 per packet of the flow
    offset 10 u64  tx_ns      send time, CLOCK_REALTIME in ns (0 = unknown, e.g. pcap replay)

Offsets 6 and 10 are even, so a sender can update the TCP checksum incrementally (RFC 1624) by
adding the 16-bit words of ``seq`` and ``tx_ns`` to a checksum precomputed with them zeroed.
"""

from __future__ import annotations

import struct
from typing import Final

MAGIC: Final = 0xDF57
STAMP: Final = struct.Struct("!HIIQ")
STAMP_LEN: Final = STAMP.size  # 18 bytes
SEQ_TS: Final = struct.Struct("!IQ")  # seq and tx_ns, patched per packet at offset 6
SEQ_OFFSET: Final = 6
MAX_SEQ: Final = 2**32 - 1


def pack(flow_id: int, seq: int, tx_ns: int) -> bytes:
    """Serialise one stamp (used when crafting templates and in tests)."""
    return STAMP.pack(MAGIC, flow_id, seq, tx_ns)


def unpack(buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int, int] | None:
    """``(flow_id, seq, tx_ns)`` or ``None`` if the buffer is too short or the magic is wrong."""
    if len(buf) - offset < STAMP_LEN:
        return None
    magic, flow_id, seq, tx_ns = STAMP.unpack_from(buf, offset)
    if magic != MAGIC:
        return None
    return flow_id, seq, tx_ns
