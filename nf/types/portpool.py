"""Shared public-port pool of address translators (NAT, FULLNAT load balancer) = global state.

Why blocks claimed with compare-and-set: every instance of a NAT service (and every worker of each
instance) allocates from one port range of one public IP, so the pool is global state in the
store. A store round trip per new flow would cap new-flow rate at ~10^3-10^4/s (anchors F.3), so a
worker claims a *block* of ``block`` ports of one flow group with one linearizable
``compare_and_set`` on ``global/natpool/<pool>/<group>`` (decimal: next free index) and hands
them out locally; closed flows return ports to the local free list. Ports are per flow group
(``port = port_lo + group + k * flow_groups``, see :func:`nf.flow.port_group`) so the stamper can
steer the translated return flow to the worker holding the mapping.

A crashed worker's unused block is not returned (ports leak until the pool is reset by the
operator: ``deftctl nf pool-reset``-style tooling is nf-control's); a promoted secondary claims
fresh blocks and keeps the mappings it received through replication.
"""

from __future__ import annotations

import logging
from typing import Any

from nf.store import keys

log = logging.getLogger(__name__)


class PoolExhaustedError(RuntimeError):
    """No free public port is left for a flow group."""


class PortPool:
    """Per-worker view of one shared pool; see the module docstring."""

    def __init__(self, store: Any, pool: str, port_lo: int, port_hi: int, flow_groups: int,
                 block: int = 16) -> None:
        if store is None:
            raise ValueError(f"port pool {pool!r}: needs the state store (set `statestore` in the "
                             "instance config): the pool is global state shared by all instances")
        if not 0 < port_lo <= port_hi < 65536:
            raise ValueError(f"port pool {pool!r}: bad port range {port_lo}..{port_hi}")
        self.store = store
        self.pool = pool
        self.lo, self.hi = port_lo, port_hi
        self.groups = flow_groups
        self.block = block
        self.free: dict[int, list[int]] = {}
        #: store operations done (global updates)
        self.updates = 0

    def _capacity(self, group: int) -> int:
        span = self.hi - self.lo + 1
        return 0 if group >= span else (span - group + self.groups - 1) // self.groups

    def _claim(self, group: int) -> list[int]:
        key = keys.global_key("natpool", self.pool, group)
        cap = self._capacity(group)
        for _ in range(64):
            raw = self.store.get(key)
            cur = int(raw) if raw is not None else 0
            if cur >= cap:
                return []
            new = min(cur + self.block, cap)
            self.updates += 1
            if self.store.compare_and_set(key, raw, str(new).encode()):
                return [self.lo + group + i * self.groups for i in range(cur, new)]
        log.warning("port pool %s group %d: CAS contention, giving up this round", self.pool, group)
        return []

    def alloc(self, group: int) -> int:
        """A public port owned by ``group``; raises :class:`PoolExhaustedError`."""
        fl = self.free.get(group)
        if not fl:
            fl = self.free[group] = self._claim(group)
            fl.reverse()
            if not fl:
                raise PoolExhaustedError(f"port pool {self.pool!r}: no free port for flow group {group}")
        return fl.pop()

    def release(self, group: int, port: int) -> None:
        self.free.setdefault(group, []).append(port)
