"""Pluggable NF logic: one engine, many NF types.

Each type (``counter``, ``firewall``, ``nat``, ``lb``) is an :class:`nf.types.base.NFLogic`:
it owns the per-flow state of one worker (a dict keyed by the canonical flow key), decides what
happens to a packet (forward unchanged, rewrite, drop) and serialises a flow's state for
replication and migration. The engine does everything else (order, batching, commit, egress).
"""

from __future__ import annotations

from typing import Any

from nf.types.base import NFContext, NFLogic


def create(kind: str, ctx: NFContext) -> NFLogic:
    """NF logic of type ``kind`` (imports lazily so a counter NF never imports the pool code)."""
    if kind == "counter":
        from nf.types.counter import CounterNF
        return CounterNF(ctx)
    if kind == "firewall":
        from nf.types.firewall import FirewallNF
        return FirewallNF(ctx)
    if kind == "nat":
        from nf.types.nat import NatNF
        return NatNF(ctx)
    if kind == "lb":
        from nf.types.lb import LoadBalancerNF
        return LoadBalancerNF(ctx)
    raise ValueError(f"unknown NF type {kind!r} (known: counter, firewall, nat, lb)")


KINDS: tuple[str, ...] = ("counter", "firewall", "nat", "lb")

__all__ = ["KINDS", "NFContext", "NFLogic", "create"]


def _unused(_: Any) -> None:  # keep Any imported for type checkers of subclasses
    return None
