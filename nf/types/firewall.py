"""Stateful firewall: connections opened from the inside are allowed both ways; unsolicited
inbound packets are denied; ICMP errors about an allowed connection are allowed (related).

State per canonical flow: which endpoint opened the connection (low or high end of the key) and
whether the peer answered (established). TCP connections must open with a SYN (a mid-stream
packet of an unknown connection is invalid and denied — no state is created from it).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

from nf.flow import canonical_key
from nf.types.base import NFContext, NFLogic

_ST = struct.Struct("!BBI")  # opener_is_low, established, packets
PROTO_TCP = 6
PROTO_ICMP = 1
TCP_SYN = 0x02


@dataclass(frozen=True)
class FirewallConfig:
    """``inside``: CIDRs of the protected side (connections may only be opened from there)."""

    inside: list[str] = field(default_factory=lambda: ["10.0.0.0/8"])

    def __post_init__(self) -> None:
        for c in self.inside:
            try:
                ipaddress.IPv4Network(c, strict=False)
            except ValueError as exc:
                raise ValueError(f"firewall.inside: {c!r} is not an IPv4 CIDR") from exc


class FirewallNF(NFLogic):
    kind = "firewall"

    def __init__(self, ctx: NFContext) -> None:
        super().__init__(ctx)
        cfg = ctx.config if isinstance(ctx.config, FirewallConfig) else FirewallConfig()
        self._nets = [(int(n.network_address), int(n.netmask))
                      for n in (ipaddress.IPv4Network(c, strict=False) for c in cfg.inside)]
        self.denied = 0

    def _inside(self, ip4: bytes) -> bool:
        v = int.from_bytes(ip4, "big")
        return any((v & m) == a for a, m in self._nets)

    def process(self, pkt: bytes, key: bytes, forward: bool, group: int) -> bytes | None:
        st = self.state.get(key)
        if st is not None:
            if not st[1] and forward != st[0]:
                st[1] = 1  # the peer answered: established
            st[2] += 1
            self.dirty.add(key)
            return pkt
        src = pkt[12:16]
        proto = pkt[9]
        ihl = (pkt[0] & 0x0F) * 4
        if self._inside(src):
            if proto == PROTO_TCP and (len(pkt) < ihl + 14 or not pkt[ihl + 13] & TCP_SYN):
                self.denied += 1
                return None
            self.state[key] = [1 if forward else 0, 0, 1]
            self.groups[key] = group
            self.dirty.add(key)
            return pkt
        if proto == PROTO_ICMP and self._related(pkt, ihl):
            return pkt
        self.denied += 1
        return None

    def _related(self, pkt: bytes, ihl: int) -> bool:
        """ICMP destination-unreachable / time-exceeded quoting a packet of a known connection."""
        if len(pkt) < ihl + 8 + 28 or pkt[ihl] not in (3, 11):
            return False
        quoted = _quoted_5tuple(pkt, ihl + 8)
        if quoted is None:
            return False
        key, _ = canonical_key(*quoted)
        return key in self.state

    def dump(self, skey: bytes) -> bytes:
        o, e, n = self.state[skey]
        return _ST.pack(o, e, n & 0xFFFFFFFF)

    def _decode(self, blob: bytes) -> Any:
        return list(_ST.unpack(blob))

    def describe(self, skey: bytes) -> dict[str, Any]:
        o, e, n = self.state[skey]
        return {"opener": "low" if o else "high", "established": bool(e), "packets": n}


def _quoted_5tuple(pkt: bytes, off: int) -> tuple[int, bytes, int, bytes, int] | None:
    """5-tuple of the (truncated) packet quoted in an ICMP error (only header + 8 bytes present)."""
    if len(pkt) < off + 20 or pkt[off] >> 4 != 4:
        return None
    ihl = (pkt[off] & 0x0F) * 4
    proto = pkt[off + 9]
    src, dst = pkt[off + 12:off + 16], pkt[off + 16:off + 20]
    if proto in (6, 17) and len(pkt) >= off + ihl + 4:
        sp, dp = struct.unpack_from("!HH", pkt, off + ihl)
        return proto, src, sp, dst, dp
    return proto, src, 0, dst, 0
