"""Pluggable NF logic: one engine, many NF types.

Each type (``counter``, ``firewall``, ``nat``, ``lb``) is an :class:`nf.types.base.NFLogic`:
it owns the per-flow state of one worker (a dict keyed by the canonical flow key), decides what
happens to a packet (forward unchanged, rewrite, drop) and serialises a flow's state for
replication and migration. The engine does everything else (order, batching, commit, egress).
"""

from __future__ import annotations

from typing import Any

from nf.types.base import NFContext, NFLogic
from nf.types.counter import CounterNF
from nf.types.firewall import FirewallNF
from nf.types.lb import LoadBalancerNF
from nf.types.nat import NatNF

#: NF type name -> class (the ``nf.type`` config value)
REGISTRY: dict[str, type[NFLogic]] = {
    "counter": CounterNF, "firewall": FirewallNF, "nat": NatNF, "lb": LoadBalancerNF,
}
KINDS: tuple[str, ...] = tuple(REGISTRY)


def create(kind: str, ctx: NFContext) -> NFLogic:
    """NF logic of type ``kind`` for one worker."""
    cls: Any = REGISTRY.get(kind)
    if cls is None:
        raise ValueError(f"unknown NF type {kind!r} (known: {', '.join(KINDS)})")
    return cls(ctx)  # type: ignore[no-any-return]


__all__ = ["KINDS", "REGISTRY", "NFContext", "NFLogic", "create"]
