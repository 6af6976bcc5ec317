"""Global NF state in the store: batched global counters (DEFT's GLOBAL_UPDATE_FREQUENCY), generic
read-modify-CAS updates, and administration of the shared NAT port pools.

Global state is state that many flows, workers and instances update (a service-wide packet
counter, the NAT public-port pool). Every update is one linearizable single-key operation in the
store — ``increment`` or ``compare_and_set`` — instead of DEFT's lock/get/set/unlock (4 round trips
on an AP map). Because a store round trip per packet would cap the NF at the store's rate,
:class:`GlobalCounter` accumulates locally and pushes every ``update_every`` packets: DEFT's
GLOBAL_UPDATE_FREQUENCY as "packets per global update" (0 = only on :meth:`GlobalCounter.flush`).

NAT pools: ``nf.types.portpool.PortPool`` (the NF side) claims blocks of ports of one flow group
with a CAS on ``global/natpool/<pool>/<group>`` (decimal: next free index). :class:`PortPoolAdmin`
is the operator side: how full each group is, and a reset once no instance uses the pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from nf.store import keys as keyspace
from nf.store.base import StateStore

log = logging.getLogger(__name__)


class CasConflictError(RuntimeError):
    """A read-modify-CAS loop kept losing the race; the message names the key."""


def cas_update(
    store: StateStore, key: str, change: Callable[[bytes | None], bytes | None], attempts: int = 64
) -> bytes | None:
    """Apply ``change(current) -> new`` atomically with a CAS loop; returns the value written.

    ``new = None`` deletes; returning ``current`` unchanged writes nothing. Raises
    :class:`CasConflictError` after ``attempts`` lost races.
    """
    for _ in range(attempts):
        cur = store.get(key)
        new = change(cur)
        if new == cur:
            return cur
        if store.compare_and_set(key, cur, new):
            return new
    raise CasConflictError(f"{key}: compare-and-set lost {attempts} races in a row")


class GlobalCounter:
    """A service-wide counter ``global/<name>`` updated every ``update_every`` local increments.

    Not thread-safe: use one per worker (workers are processes in the engine).
    """

    def __init__(self, store: StateStore, name: str, update_every: int = 1) -> None:
        if update_every < 0:
            raise ValueError(f"global counter {name}: update_every must be >= 0, got {update_every}")
        self.store = store
        self.key = keyspace.global_key(name)
        self.update_every = update_every
        self.pending = 0
        #: store operations done (the NF's "global updates" metric)
        self.updates = 0
        #: value the store returned at the last update
        self.last_value = 0

    def add(self, n: int = 1) -> None:
        """Count ``n`` locally; push to the store when ``update_every`` is reached."""
        self.pending += n
        if self.update_every and self.pending >= self.update_every:
            self.flush()

    def flush(self) -> int:
        """Push the pending amount now (no-op when 0); returns the global value."""
        if self.pending:
            self.last_value = self.store.increment(self.key, self.pending)
            self.updates += 1
            self.pending = 0
        return self.last_value

    def value(self) -> int:
        """Global value in the store (without the local pending amount)."""
        raw = self.store.get(self.key)
        return int(raw) if raw is not None else 0


@dataclass(frozen=True)
class PoolGroupUsage:
    """How much of one flow group's share of a NAT pool has been claimed."""

    group: int
    claimed: int
    capacity: int


class PortPoolAdmin:
    """Operator view of a NAT port pool shared through ``global/natpool/<pool>/<group>``.

    ``port_lo``..``port_hi`` and ``flow_groups`` must match the NAT instances' config: group ``g``
    owns ports ``port_lo + g + k * flow_groups``.
    """

    def __init__(self, store: StateStore, pool: str, port_lo: int, port_hi: int, flow_groups: int) -> None:
        if not 0 < port_lo <= port_hi < 65536:
            raise ValueError(f"port pool {pool!r}: bad port range {port_lo}..{port_hi}")
        if flow_groups < 1:
            raise ValueError(f"port pool {pool!r}: flow_groups must be >= 1")
        self.store = store
        self.pool = pool
        self.lo, self.hi, self.groups = port_lo, port_hi, flow_groups

    def capacity(self, group: int) -> int:
        span = self.hi - self.lo + 1
        return 0 if group >= span else (span - group + self.groups - 1) // self.groups

    def usage(self) -> list[PoolGroupUsage]:
        """Claimed ports per flow group (groups never claimed report 0)."""
        raw = self.store.scan(keyspace.global_key("natpool", self.pool) + "/")
        claimed = {int(k.rsplit("/", 1)[1]): int(v) for k, v in raw.items()}
        return [PoolGroupUsage(g, claimed.get(g, 0), self.capacity(g)) for g in range(self.groups)]

    def claim(self, group: int, block: int) -> list[int]:
        """Claim up to ``block`` ports of ``group`` with one CAS (what ``PortPool`` does per block)."""
        cap = self.capacity(group)
        got: list[int] = []

        def change(cur: bytes | None) -> bytes | None:
            start = int(cur) if cur is not None else 0
            end = min(start + block, cap)
            got[:] = [self.lo + group + i * self.groups for i in range(start, end)]
            return str(end).encode() if end != start else cur

        cas_update(self.store, keyspace.global_key("natpool", self.pool, group), change)
        return list(got)

    def reset(self) -> int:
        """Forget every claim (only safe when no instance of the pool runs); returns groups reset."""
        keys = list(self.store.scan(keyspace.global_key("natpool", self.pool) + "/"))
        n = self.store.delete_many(keys)
        log.warning("port pool %s: reset %d flow group(s)", self.pool, n)
        return n
