"""The one policy interface: ``decide(observation, mask) -> moves``.

A policy sees a batched :class:`~placement.observation.Observation` and the feasible-move mask
``[B, V, H]`` (:func:`~placement.observation.pair_mask`) and returns ``[B, 2]`` int moves: ``(vnf, host)``
or ``(NOOP, 0)``. The simulator, the evaluator and the live service all call policies this way, so
any baseline can stand in for the RL policy (the service's fallback is exactly that).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from placement.observation import Observation

NOOP = -1


@runtime_checkable
class Policy(Protocol):
    """What every placement policy implements."""

    name: str

    def reset(self, batch: int) -> None:
        """Forget per-episode memory (hysteresis timers etc.) for ``batch`` environments."""

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        """Return moves [B, 2] (vnf index or NOOP, target host) for ``obs`` under ``mask`` [B, V, H]."""


def noop_moves(batch: int) -> np.ndarray:
    """[B, 2] array of no-ops."""
    out = np.zeros((batch, 2), dtype=np.int64)
    out[:, 0] = NOOP
    return out
