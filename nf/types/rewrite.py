"""In-place IPv4/L4 address and port rewriting with incremental checksum updates (RFC 1624).

Why incremental: recomputing a TCP checksum over the whole payload costs O(bytes) in Python;
updating it for a changed 16-bit word is three integer operations. UDP checksum 0 ("none") stays 0.
The IPv4 header checksum is updated too, so rewritten packets are valid on any egress path
(a raw socket with IP_HDRINCL would refill it anyway).
"""

from __future__ import annotations

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17


def _csum_update(csum: int, old: int, new: int) -> int:
    # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
    s = (~csum & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _get16(b: bytearray, off: int) -> int:
    return (b[off] << 8) | b[off + 1]


def _set16(b: bytearray, off: int, v: int) -> None:
    b[off] = v >> 8
    b[off + 1] = v & 0xFF


def _fix(b: bytearray, csum_off: int, old: int, new: int, udp: bool = False) -> None:
    if csum_off < 0:
        return
    cur = _get16(b, csum_off)
    if udp and cur == 0:
        return
    v = _csum_update(cur, old, new)
    if udp and v == 0:
        v = 0xFFFF
    _set16(b, csum_off, v)


def rewrite(pkt: bytes, src_ip: bytes | None = None, src_port: int | None = None,
            dst_ip: bytes | None = None, dst_port: int | None = None) -> bytes:
    """Copy of IPv4 packet ``pkt`` with the given fields replaced and all checksums fixed.

    For ICMP echo the "port" is the identifier (both src_port and dst_port rewrite it).
    """
    b = bytearray(pkt)
    ihl = (b[0] & 0x0F) * 4
    proto = b[9]
    frag = ((b[6] << 8) | b[7]) & 0x1FFF
    l4 = ihl
    if frag:
        l4_csum = -1
        ports_ok = False
    elif proto == PROTO_TCP and len(b) >= l4 + 18:
        l4_csum, ports_ok = l4 + 16, True
    elif proto == PROTO_UDP and len(b) >= l4 + 8:
        l4_csum, ports_ok = l4 + 6, True
    elif proto == PROTO_ICMP and len(b) >= l4 + 8:
        l4_csum, ports_ok = l4 + 2, False
    else:
        l4_csum, ports_ok = -1, False
    udp = proto == PROTO_UDP
    pseudo = proto in (PROTO_TCP, PROTO_UDP)  # ICMP has no pseudo-header
    for ip, off in ((src_ip, 12), (dst_ip, 16)):
        if ip is None or b[off:off + 4] == ip:
            continue
        for half in (0, 2):
            old = _get16(b, off + half)
            new = (ip[half] << 8) | ip[half + 1]
            _fix(b, 10, old, new)
            if pseudo:
                _fix(b, l4_csum, old, new, udp)
        b[off:off + 4] = ip
    if ports_ok:
        for port, off in ((src_port, l4), (dst_port, l4 + 2)):
            if port is None:
                continue
            old = _get16(b, off)
            if old != port:
                _fix(b, l4_csum, old, port, udp)
                _set16(b, off, port)
    elif proto == PROTO_ICMP and l4_csum >= 0 and b[l4] in (0, 8):
        port = src_port if src_port is not None else dst_port
        if port is not None:
            old = _get16(b, l4 + 4)
            if old != port:
                _fix(b, l4_csum, old, port)
                _set16(b, l4 + 4, port)
    return bytes(b)
