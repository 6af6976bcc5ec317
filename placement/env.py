"""Gymnasium view of one simulated cluster (for external RL libraries and the env checker).

The simulator itself is batched; this wrapper runs a batch of one. Spaces:

* observation ``Dict(hosts=Box(H, N_HOST_FEATURES), vnfs=Box(V, N_VNF_FEATURES),
  vnf_host=MultiDiscrete(H^V), host_trend=Box(H, N_HOST_TREND), vnf_trend=Box(V, N_VNF_TREND))``
  built by THE observation builder (:mod:`placement.observation`);
* action ``MultiDiscrete([V + 1, H])``: which VNF to move (index ``V`` = no-op) and to which host.

Masking: :meth:`PlacementEnv.action_masks` returns the flat ``[V + 1 + H]`` mask in the convention of
sb3-contrib's MaskablePPO (VNFs with at least one feasible target + no-op; hosts that are up); the
exact pair mask ``[V, H]`` is in ``info["pair_mask"]`` and the flat one in ``info["action_mask"]``.
An infeasible pair is carried out as a no-op and counted in ``info["invalid_actions"]``.
The reward is ``-(composite cost of the step) / n_hosts``; the episode truncates at the scenario's
``steps``. Each ``reset(seed=s)`` draws a new world from seed ``s``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from placement.calibration import Calibration, load_calibration
from placement.observation import (
    FEATURE_CLIP,
    N_HOST_FEATURES,
    N_HOST_TREND,
    N_VNF_FEATURES,
    N_VNF_TREND,
    Observation,
    action_masks,
    pair_mask,
)
from placement.scenario import Scenario, load_scenario
from placement.simulator import NOOP, ClusterSim


class PlacementEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """One cluster of ``scenario`` as a gymnasium env (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: Scenario | str = "diurnal-small", calibration: Calibration | None = None):
        self.sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.cal = calibration or load_calibration()
        h, v = self.sc.n_hosts, self.sc.n_vnfs
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {
                "hosts": spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (h, N_HOST_FEATURES), np.float32),
                "vnfs": spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (v, N_VNF_FEATURES), np.float32),
                "vnf_host": spaces.MultiDiscrete(np.full(v, h)),
                "host_trend": spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (h, N_HOST_TREND), np.float32),
                "vnf_trend": spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (v, N_VNF_TREND), np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([v + 1, h])
        self._seed = 0
        self.sim = ClusterSim(self.sc, [0], self.cal)
        self._obs: Observation = self.sim.observe()

    def _pack(self) -> dict[str, np.ndarray]:
        o = self._obs
        return {
            "hosts": o.hosts[0],
            "vnfs": o.vnfs[0],
            "vnf_host": o.vnf_host[0].astype(np.int64),
            "host_trend": o.host_trend[0],
            "vnf_trend": o.vnf_trend[0],
        }

    def _info(self) -> dict[str, Any]:
        pm = pair_mask(self._obs)
        m = self.sim.metrics
        return {
            "pair_mask": pm[0],
            "action_mask": action_masks(self._obs, pm)[0],
            "cost": float(m.cost(self.cal)[0]),
            "migrations": int(m.migrations[0]),
            "invalid_actions": int(m.invalid_actions[0]),
        }

    def action_masks(self) -> np.ndarray:
        """Flat ``[V + 1 + H]`` bool mask (sb3-contrib MaskablePPO convention)."""
        m: np.ndarray = action_masks(self._obs)[0]
        return m

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._seed = seed
        else:
            self._seed = int(self.np_random.integers(0, 2**31 - 1))
        self.sim = ClusterSim(self.sc, [self._seed], self.cal)
        self._obs = self.sim.observe()
        return self._pack(), self._info()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.int64).reshape(2)
        v = int(a[0])
        move = np.array([[NOOP if v >= self.sc.n_vnfs else v, int(a[1])]], dtype=np.int64)
        cost = float(self.sim.step(move)[0])
        self._obs = self.sim.observe()
        reward = -cost / self.sc.n_hosts
        return self._pack(), reward, False, self.sim.done, self._info()
