"""L4 load balancer (FULLNAT, like IPVS FULLNAT): clients talk to ``vip:vport``, backends see
``snat_ip:P`` -> ``backend``; replies are translated back. A flow keeps its backend for life
(affinity), including after failover or migration, because the choice is per-flow state.

New flows are spread round-robin over the backends (so affinity is a property of the state, not
of a hash that would give it for free). Why FULLNAT: backends answer to ``snat_ip:P`` with ``P``
from the shared pool slice of the flow's group, so the return flow reaches the same worker (see
``nf.types.nat``), and backends need no route back through the balancer.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nf.flow import canonical_key
from nf.types.base import NFContext, NFLogic
from nf.types.portpool import PoolExhaustedError, PortPool
from nf.types.rewrite import rewrite

# proto, client ip, client port, backend index, snat port
_ST = struct.Struct("!B4sHHH")


@dataclass(frozen=True)
class LbConfig:
    """``vip``/``vport`` (0 = any port): the service address; ``backends``: ``ip:port`` list
    (port 0 = keep the client's destination port); ``snat_ip`` + pool: source of backend-side flows."""

    vip: str
    backends: list[str]
    snat_ip: str
    vport: int = 0
    port_lo: int = 20000
    port_hi: int = 60000
    pool: str = "lb"
    block: int = 16

    def __post_init__(self) -> None:
        ipaddress.IPv4Address(self.vip)
        ipaddress.IPv4Address(self.snat_ip)
        if not self.backends:
            raise ValueError("lb.backends: at least one backend ip:port is required")
        for b in self.backends:
            ip, sep, port = b.rpartition(":")
            if not sep or not port.isdigit():
                raise ValueError(f"lb.backends: {b!r} is not ip:port")
            ipaddress.IPv4Address(ip)


class LoadBalancerNF(NFLogic):
    kind = "lb"

    def __init__(self, ctx: NFContext) -> None:
        super().__init__(ctx)
        if not isinstance(ctx.config, LbConfig):
            raise ValueError("nf.lb: section missing (vip, backends, snat_ip, ...)")
        cfg: LbConfig = ctx.config
        self.cfg = cfg
        self.vip = ipaddress.IPv4Address(cfg.vip).packed
        self.snat = ipaddress.IPv4Address(cfg.snat_ip).packed
        self.backends = [(ipaddress.IPv4Address(ip).packed, int(port))
                         for ip, _, port in (b.rpartition(":") for b in cfg.backends)]
        self.pool = PortPool(ctx.store, cfg.pool, cfg.port_lo, cfg.port_hi, ctx.flow_groups, cfg.block)
        self.alias: dict[bytes, bytes] = {}
        self.rev: dict[bytes, bytes] = {}  # state key -> return-flow key
        self._rr = ctx.worker  # workers start at different backends

    def next_hops(self) -> list[bytes]:
        return [ip for ip, _ in self.backends]

    def state_key(self, key: bytes) -> bytes:
        return self.alias.get(key, key)

    def process(self, pkt: bytes, key: bytes, forward: bool, group: int) -> bytes | None:
        ihl = (pkt[0] & 0x0F) * 4
        proto = pkt[9]
        if proto not in (6, 17):
            return None
        k1 = self.alias.get(key)
        if k1 is not None:  # backend -> snat_ip:P
            _p, cip, cport, _b, _sp = self.state[k1]
            vport = self.cfg.vport or struct.unpack_from("!H", pkt, ihl)[0]
            return rewrite(pkt, src_ip=self.vip, src_port=vport, dst_ip=cip, dst_port=cport)
        st = self.state.get(key)
        if st is None:
            sport, dport = struct.unpack_from("!HH", pkt, ihl)
            if pkt[16:20] != self.vip or (self.cfg.vport and dport != self.cfg.vport):
                return None
            try:
                snat_port = self.pool.alloc(group)
            except PoolExhaustedError:
                return None
            finally:
                self.global_updates = self.pool.updates
            bidx = self._rr % len(self.backends)
            self._rr += 1
            st = (proto, pkt[12:16], sport, bidx, snat_port)
            self._install(key, group, st, dport)
            self.dirty.add(key)
        _p, _cip, _cport, bidx, snat_port = st
        bip, bport = self.backends[bidx]
        dport = struct.unpack_from("!H", pkt, ihl + 2)[0]
        return rewrite(pkt, src_ip=self.snat, src_port=snat_port, dst_ip=bip, dst_port=bport or dport)

    def _install(self, key: bytes, group: int, st: tuple[Any, ...], dport: int | None = None) -> None:
        proto, _cip, _cport, bidx, snat_port = st
        self.state[key] = st
        self.groups[key] = group
        bip, bport = self.backends[bidx]
        if not bport:  # port-preserving backend: the destination port is in the forward key
            bport = dport if dport is not None else _other_port(key, self.vip)
        k2, _ = canonical_key(proto, bip, bport, self.snat, snat_port)
        self.alias[k2] = key
        self.rev[key] = k2

    def load(self, skey: bytes, group: int, blob: bytes) -> None:
        self._install(skey, group, _ST.unpack(blob))

    def remove(self, skey: bytes) -> None:
        k2 = self.rev.pop(skey, None)
        if k2 is not None:
            self.alias.pop(k2, None)
        super().remove(skey)

    def expire(self, wire_keys: list[bytes], alive: Callable[[bytes], bool]) -> list[bytes]:
        """A flow's backend mapping lives while its client or its backend side is alive."""
        out = []
        for k in wire_keys:
            sk = self.alias.get(k, k)
            st = self.state.get(sk)
            if st is None or alive(sk) or alive(self.rev.get(sk, b"")):
                continue
            group = self.groups.get(sk, 0)
            self.remove(sk)
            self.pool.release(group, st[4])
            out.append(sk)
        return out

    def dump(self, skey: bytes) -> bytes:
        return _ST.pack(*self.state[skey])

    def _decode(self, blob: bytes) -> Any:
        return _ST.unpack(blob)

    def describe(self, skey: bytes) -> dict[str, Any]:
        proto, cip, cport, bidx, sp = self.state[skey]
        bip, bport = self.backends[bidx]
        return {"proto": proto, "client": f"{ipaddress.IPv4Address(cip)}:{cport}",
                "backend": f"{ipaddress.IPv4Address(bip)}:{bport}", "snat_port": sp}


def _other_port(key: bytes, vip: bytes) -> int:
    """The VIP-side port of a canonical key (the client's destination port)."""
    if key[1:5] == vip:
        return int.from_bytes(key[5:7], "big")
    return int.from_bytes(key[11:13], "big")
