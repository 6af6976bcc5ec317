"""Source NAT: inside hosts share one public IP; ports come from the shared pool (global state).

Forward (inside -> outside) flow ``K1``: source rewritten to ``public_ip:P``; return flow
``K2`` (remote -> ``public_ip:P``): destination rewritten back to the inside endpoint. State lives
under ``K1``; ``K2`` is an alias rebuilt from the state on every replica, so a promoted secondary
translates return traffic of flows it never saw. ``P`` is taken from the pool slice of ``K1``'s
flow group so the stamper steers ``K2`` to the same group (``nf.flow.port_group``; the stamper's
``translated`` list must name this pool). Packets to the public IP without a mapping are dropped.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nf.flow import canonical_key
from nf.types.base import NFContext, NFLogic
from nf.types.portpool import PoolExhaustedError, PortPool
from nf.types.rewrite import rewrite

# proto, inside ip, inside port, remote ip, remote port, public port
_ST = struct.Struct("!B4sH4sHH")


@dataclass(frozen=True)
class NatConfig:
    """``public_ip``: the shared address; ``port_lo``..``port_hi``: pool range; ``pool``: store name;
    ``inside``: CIDRs whose connections are translated; ``block``: ports claimed per CAS."""

    public_ip: str
    port_lo: int = 20000
    port_hi: int = 60000
    pool: str = "nat"
    inside: list[str] = field(default_factory=lambda: ["10.0.0.0/8"])
    block: int = 16

    def __post_init__(self) -> None:
        ipaddress.IPv4Address(self.public_ip)
        if not 0 < self.port_lo <= self.port_hi < 65536:
            raise ValueError(f"nat: bad port range {self.port_lo}..{self.port_hi}")


class NatNF(NFLogic):
    kind = "nat"

    def __init__(self, ctx: NFContext) -> None:
        super().__init__(ctx)
        if not isinstance(ctx.config, NatConfig):
            raise ValueError("nf.nat: section missing (public_ip, port_lo, port_hi, pool, inside)")
        cfg: NatConfig = ctx.config
        self.cfg = cfg
        self.public = ipaddress.IPv4Address(cfg.public_ip).packed
        self._nets = [(int(n.network_address), int(n.netmask))
                      for n in (ipaddress.IPv4Network(c, strict=False) for c in cfg.inside)]
        self.pool = PortPool(ctx.store, cfg.pool, cfg.port_lo, cfg.port_hi, ctx.flow_groups, cfg.block)
        self.alias: dict[bytes, bytes] = {}

    def _inside(self, ip4: bytes) -> bool:
        v = int.from_bytes(ip4, "big")
        return any((v & m) == a for a, m in self._nets)

    def state_key(self, key: bytes) -> bytes:
        return self.alias.get(key, key)

    def process(self, pkt: bytes, key: bytes, forward: bool, group: int) -> bytes | None:
        k1 = self.alias.get(key)
        if k1 is not None:  # return traffic to public_ip:P
            _p, in_ip, in_port, _rip, _rport, _pub = self.state[k1]
            return rewrite(pkt, dst_ip=in_ip, dst_port=in_port)
        st = self.state.get(key)
        if st is None:
            src = pkt[12:16]
            if not self._inside(src) or pkt[16:20] == self.public:
                return None
            ihl = (pkt[0] & 0x0F) * 4
            proto = pkt[9]
            if proto in (6, 17):
                sport, dport = struct.unpack_from("!HH", pkt, ihl)
            elif proto == 1 and len(pkt) >= ihl + 8:
                sport = dport = (pkt[ihl + 4] << 8) | pkt[ihl + 5]
            else:
                return None
            try:
                pub = self.pool.alloc(group)
            except PoolExhaustedError:
                return None
            finally:
                self.global_updates = self.pool.updates
            st = (proto, src, sport, pkt[16:20], dport, pub)
            self._install(key, group, st)
            self.dirty.add(key)
        proto, _iip, _iport, _rip, _rport, pub = st
        return rewrite(pkt, src_ip=self.public, src_port=pub)

    def _install(self, key: bytes, group: int, st: tuple[Any, ...]) -> None:
        proto, _iip, _iport, rip, rport, pub = st
        self.state[key] = st
        self.groups[key] = group
        k2, _ = canonical_key(proto, rip, rport, self.public, pub)
        self.alias[k2] = key

    def expire(self, wire_keys: list[bytes], alive: Callable[[bytes], bool]) -> list[bytes]:
        """A mapping lives while its forward or its return flow is alive; its port goes back to
        this worker's free list."""
        out = []
        for k in wire_keys:
            sk = self.alias.get(k, k)
            st = self.state.get(sk)
            if st is None:
                continue
            k2, _ = canonical_key(st[0], st[3], st[4], self.public, st[5])
            if alive(sk) or alive(k2):
                continue
            group = self.groups.get(sk, 0)
            self.remove(sk)
            self.pool.release(group, st[5])
            out.append(sk)
        return out

    def load(self, skey: bytes, group: int, blob: bytes) -> None:
        self._install(skey, group, _ST.unpack(blob))

    def remove(self, skey: bytes) -> None:
        st = self.state.get(skey)
        if st is not None:
            k2, _ = canonical_key(st[0], st[3], st[4], self.public, st[5])
            self.alias.pop(k2, None)
        super().remove(skey)

    def dump(self, skey: bytes) -> bytes:
        return _ST.pack(*self.state[skey])

    def _decode(self, blob: bytes) -> Any:
        return _ST.unpack(blob)

    def describe(self, skey: bytes) -> dict[str, Any]:
        proto, iip, iport, rip, rport, pub = self.state[skey]
        return {"proto": proto, "inside": f"{ipaddress.IPv4Address(iip)}:{iport}",
                "remote": f"{ipaddress.IPv4Address(rip)}:{rport}", "public_port": pub}

    def close(self) -> None:
        return None
