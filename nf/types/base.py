"""Base class of NF logic: per-flow state, dirty tracking and (de)serialisation.

Contract with the engine (one :class:`NFLogic` per worker process, used from one thread):

* ``process(pkt, key, forward, group)`` returns the packet to send on (possibly rewritten; a new
  ``bytes``) or ``None`` to drop it on purpose. It must mark every state key it changed with
  ``self.dirty.add(skey)`` — the engine ships exactly those in the batch's DELTA.
* ``state_key(key)`` maps a wire flow key to the key its state lives under (translators map the
  translated return flow onto the forward flow); ``dump``/``load``/``remove`` move one flow's state.
* ``self.groups[skey]`` is the flow group of each state (migration moves whole groups).

State must be a deterministic function of the ordered input plus global state read through the
store, so a replica replaying buffered input after promotion computes the same result.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class NFContext:
    """What an NF type may use: its config section, the store (or None), flow-group count."""

    config: Any
    store: Any  # nf.store.base.StateStore | None (kept Any: the store package is optional here)
    flow_groups: int
    instance: str
    worker: int


class NFLogic(abc.ABC):
    """Per-worker NF logic; see the module docstring for the engine contract."""

    kind = "abstract"

    def __init__(self, ctx: NFContext) -> None:
        self.ctx = ctx
        self.state: dict[bytes, Any] = {}
        self.groups: dict[bytes, int] = {}
        self.dirty: set[bytes] = set()
        #: global-state updates done by this NF (added to metrics by the engine)
        self.global_updates = 0

    def next_hops(self) -> list[bytes]:
        """Packed IPv4 addresses this NF sends to whatever its input says (e.g. the balancer's
        backends); the engine keeps their neighbour entries resolved while it is a replica."""
        return []

    @abc.abstractmethod
    def process(self, pkt: bytes, key: bytes, forward: bool, group: int) -> bytes | None:
        """Handle one inner IPv4 packet of flow ``key`` (``forward``: src is the key's low end)."""

    @abc.abstractmethod
    def dump(self, skey: bytes) -> bytes:
        """Serialised state of flow ``skey``."""

    @abc.abstractmethod
    def _decode(self, blob: bytes) -> Any:
        """Inverse of :meth:`dump` for one state value."""

    def state_key(self, key: bytes) -> bytes:
        return key

    def load(self, skey: bytes, group: int, blob: bytes) -> None:
        """Install flow state received from a primary (replica) or a migration source."""
        self.state[skey] = self._decode(blob)
        self.groups[skey] = group

    def remove(self, skey: bytes) -> None:
        self.state.pop(skey, None)
        self.groups.pop(skey, None)

    def expire(self, wire_keys: list[bytes], alive: Callable[[bytes], bool]) -> list[bytes]:
        """Drop the state of idle flows; returns the state keys removed.

        ``alive(wire_key)`` tells whether a wire flow is still tracked; translators keep a mapping
        while either of its two wire flows is alive.
        """
        out = []
        for k in wire_keys:
            if k in self.state:
                self.remove(k)
                out.append(k)
        return out

    def keys_in_groups(self, groups: set[int] | None) -> list[bytes]:
        """State keys whose flow group is in ``groups`` (all keys when ``None``)."""
        if groups is None:
            return list(self.state)
        return [k for k, g in self.groups.items() if g in groups]

    def describe(self, skey: bytes) -> dict[str, Any]:
        """JSON-friendly view of one flow's state (control API ``export_state``)."""
        return {"blob": self.dump(skey).hex()}

    def close(self) -> None:  # noqa: B027 - optional hook, most NF types hold no resources
        """Release resources (store connections)."""
