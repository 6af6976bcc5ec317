"""Flow identity: 5-tuple parsing, the canonical bidirectional key and the flow-group hash.

Why a canonical *bidirectional* key: a stateful NF (firewall, NAT, load balancer) must see both
directions of a connection in the same per-flow state, on the same worker, on the same instance.
The key orders the two endpoints, so ``A->B`` and ``B->A`` give the same 13 bytes::

    proto u8 | ip_lo 4B | port_lo u16 | ip_hi 4B | port_hi u16      (network byte order)

The *flow group* (``crc32(key) % flow_groups``) is the unit of steering and migration: the stamper
looks up the primary/secondaries of a group, an instance shards groups over its workers
(``group % workers``), and a migration moves whole groups. Address translators (NAT, FULLNAT load
balancer) choose their public port so that the translated return flow lands in the same group
(``port_group``), which keeps both directions on one worker without a shared table.

Parsing uses ``struct`` directly: it runs for every packet at the stamper and the instance.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import zlib

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

_IPV4_HDR = struct.Struct("!BBHHHBBH4s4s")
_PORTS = struct.Struct("!HH")
KEY_LEN = 13


def parse_5tuple(pkt: bytes, off: int = 0) -> tuple[int, bytes, int, bytes, int] | None:
    """``(proto, src_ip4, src_port, dst_ip4, dst_port)`` of the IPv4 packet at ``pkt[off:]``.

    Returns ``None`` for anything that is not a well-formed IPv4 header (the caller counts it as
    malformed). Ports are 0 for protocols without ports and for non-first fragments; for ICMP echo
    the identifier is used as both ports so pings form a flow.
    """
    n = len(pkt) - off
    if n < 20:
        return None
    vihl = pkt[off]
    if vihl >> 4 != 4:
        return None
    ihl = (vihl & 0x0F) * 4
    total = (pkt[off + 2] << 8) | pkt[off + 3]
    if ihl < 20 or total < ihl or total > n:
        return None
    proto = pkt[off + 9]
    src = pkt[off + 12:off + 16]
    dst = pkt[off + 16:off + 20]
    frag = ((pkt[off + 6] << 8) | pkt[off + 7]) & 0x1FFF
    l4 = off + ihl
    if frag == 0 and proto in (PROTO_TCP, PROTO_UDP) and total >= ihl + 4:
        sp, dp = _PORTS.unpack_from(pkt, l4)
        return proto, src, sp, dst, dp
    if frag == 0 and proto == PROTO_ICMP and total >= ihl + 8 and pkt[l4] in (0, 8):
        ident = (pkt[l4 + 4] << 8) | pkt[l4 + 5]
        return proto, src, ident, dst, ident
    return proto, src, 0, dst, 0


def canonical_key(proto: int, src: bytes, sport: int, dst: bytes, dport: int) -> tuple[bytes, bool]:
    """``(key, forward)``: the 13-byte bidirectional key and whether src is the key's low endpoint."""
    a = src + sport.to_bytes(2, "big")
    b = dst + dport.to_bytes(2, "big")
    if a <= b:
        return bytes((proto,)) + a + b, True
    return bytes((proto,)) + b + a, False


def wire_key(pkt: bytes, off: int = 0) -> tuple[bytes, bool] | None:
    """``(canonical key, forward)`` of the IPv4 packet at ``pkt[off:]``, or ``None`` if malformed.

    Hot path of the stamper and the engine: for the common case (20-byte header, TCP/UDP, not a
    non-first fragment) the key is sliced straight out of the packet bytes, no integer decoding.
    """
    if len(pkt) >= off + 24 and pkt[off] == 0x45 and pkt[off + 9] in (6, 17) \
            and not (pkt[off + 6] & 0x1F or pkt[off + 7]):
        total = (pkt[off + 2] << 8) | pkt[off + 3]
        if total < 24 or total > len(pkt) - off:
            return None
        a = pkt[off + 12:off + 16] + pkt[off + 20:off + 22]
        b = pkt[off + 16:off + 20] + pkt[off + 22:off + 24]
        if a <= b:
            return pkt[off + 9:off + 10] + a + b, True
        return pkt[off + 9:off + 10] + b + a, False
    t = parse_5tuple(pkt, off)
    if t is None:
        return None
    return canonical_key(*t)


def group_of_key(key: bytes, flow_groups: int) -> int:
    """Flow group of a canonical key (stable across processes and hosts: CRC-32, not ``hash``)."""
    return zlib.crc32(key) % flow_groups


def port_group(port: int, port_lo: int, flow_groups: int) -> int:
    """Flow group owning public port ``port`` of a translator pool starting at ``port_lo``.

    Port ``port_lo + g + k * flow_groups`` belongs to group ``g``: a NAT that allocates its public
    port from the forward flow's group makes the stamper steer the return flow to the same group.
    """
    return (port - port_lo) % flow_groups


def key_to_str(key: bytes) -> str:
    """Human/JSON form of a key: ``proto-ipA-portA-ipB-portB`` (same shape as nf.store.keys.flow_id)."""
    proto = key[0]
    a_ip = socket.inet_ntoa(key[1:5])
    a_port = int.from_bytes(key[5:7], "big")
    b_ip = socket.inet_ntoa(key[7:11])
    b_port = int.from_bytes(key[11:13], "big")
    return f"{proto}-{a_ip}-{a_port}-{b_ip}-{b_port}"


def key_from_str(text: str) -> bytes:
    """Inverse of :func:`key_to_str`; raises ``ValueError`` naming the bad part."""
    parts = text.split("-")
    if len(parts) != 5:
        raise ValueError(f"flow {text!r}: expected proto-ipA-portA-ipB-portB")
    proto, a_ip, a_port, b_ip, b_port = parts
    return (bytes((int(proto),)) + ipaddress.IPv4Address(a_ip).packed + int(a_port).to_bytes(2, "big")
            + ipaddress.IPv4Address(b_ip).packed + int(b_port).to_bytes(2, "big"))
