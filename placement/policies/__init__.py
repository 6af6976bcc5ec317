"""Placement policies behind one interface (:class:`placement.policies.base.Policy`).

:func:`make_policy` builds any of them by name; ``rl`` loads a torch checkpoint (torch is imported
only then). :data:`BASELINES` lists the heuristic names in the order reports show them.
"""

from __future__ import annotations

from pathlib import Path

from placement.policies.base import NOOP, Policy, noop_moves
from placement.policies.heuristics import (
    BestFitPolicy,
    FirstFitPolicy,
    LeastLoadedPolicy,
    MakeRoomPolicy,
    RandomPolicy,
    StaticPolicy,
    ThesisBalancerPolicy,
)
from placement.policies.ilp import IlpPolicy
from placement.policies.lookahead import DEFAULT_LOOKAHEAD, LookaheadConfig

BASELINES = ("static", "random", "first-fit", "best-fit", "least-loaded", "thesis-80")
TEACHERS = ("make-room-least-loaded",)  # imitation teachers runnable by name; not in the reference set
ALL_POLICIES = (*BASELINES, *TEACHERS, "ilp", "rl")
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default.pt"

__all__ = [
    "ALL_POLICIES",
    "BASELINES",
    "DEFAULT_MODEL",
    "NOOP",
    "TEACHERS",
    "Policy",
    "make_policy",
    "noop_moves",
]


def make_policy(
    name: str,
    model: Path | None = None,
    seed: int = 0,
    lookahead: LookaheadConfig | None = DEFAULT_LOOKAHEAD,
) -> Policy:
    """Policy by name (see :data:`ALL_POLICIES`); ``model`` is the RL checkpoint (default shipped),
    ``lookahead`` the RL policy's decision-time search (:mod:`placement.policies.lookahead`; on by
    default, None = off)."""
    simple: dict[str, type[Policy]] = {
        "static": StaticPolicy,
        "first-fit": FirstFitPolicy,
        "best-fit": BestFitPolicy,
        "least-loaded": LeastLoadedPolicy,
        "make-room-least-loaded": MakeRoomPolicy,
        "thesis-80": ThesisBalancerPolicy,
        "ilp": IlpPolicy,
    }
    if name in simple:
        return simple[name]()
    if name == "random":
        return RandomPolicy(seed=seed)
    if name == "rl":
        from placement.policies.rl import RlPolicy  # torch only when asked for  # noqa: PLC0415

        return RlPolicy.load(model or DEFAULT_MODEL, lookahead=lookahead)
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(ALL_POLICIES)}")
