"""DEFT's per-flow packet/byte counter, as a forwarding NF (the seeds' NF was a sink).

State per canonical flow: ``[packets, bytes]`` of both directions (bytes = inner IP length).
Optionally adds the batch's packet count to a global counter in the store every
``global_update_every`` packets (DEFT's GLOBAL_UPDATE_FREQUENCY; a linearizable ``increment``
instead of the seeds' lock/get/set/unlock).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from nf.store import keys
from nf.types.base import NFContext, NFLogic

_ST = struct.Struct("!QQ")


@dataclass(frozen=True)
class CounterConfig:
    """``global_update_every``: packets between global-counter updates (0 = off);
    ``global_name``: store key ``global/<name>``."""

    global_update_every: int = 0
    global_name: str = "packets"


class CounterNF(NFLogic):
    kind = "counter"

    def __init__(self, ctx: NFContext) -> None:
        super().__init__(ctx)
        cfg = ctx.config if isinstance(ctx.config, CounterConfig) else CounterConfig()
        self.every = cfg.global_update_every if ctx.store is not None else 0
        self._pending = 0
        self._gkey = ""
        if self.every:
            self._gkey = keys.global_key(cfg.global_name)

    def process(self, pkt: bytes, key: bytes, forward: bool, group: int) -> bytes | None:
        st = self.state.get(key)
        if st is None:
            st = self.state[key] = [0, 0]
            self.groups[key] = group
        st[0] += 1
        st[1] += len(pkt)
        self.dirty.add(key)
        if self.every:
            self._pending += 1
            if self._pending >= self.every:
                self.ctx.store.increment(self._gkey, self._pending)
                self._pending = 0
                self.global_updates += 1
        return pkt

    def dump(self, skey: bytes) -> bytes:
        p, b = self.state[skey]
        return _ST.pack(p, b)

    def _decode(self, blob: bytes) -> Any:
        return list(_ST.unpack(blob))

    def describe(self, skey: bytes) -> dict[str, Any]:
        p, b = self.state[skey]
        return {"packets": p, "bytes": b}
