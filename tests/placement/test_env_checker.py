"""The gymnasium env passes the official env checker and exposes consistent action masks."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from placement.env import PlacementEnv


@pytest.mark.parametrize("scenario", ["diurnal-small", "failure-small", "churn-small"])
def test_env_checker_passes(scenario: str) -> None:
    check_env(PlacementEnv(scenario), skip_render_check=True)


def test_masks_match_spaces_and_forbid_own_host() -> None:
    env = PlacementEnv("hetero-small")
    obs, info = env.reset(seed=5)
    n_v, n_h = env.sc.n_vnfs, env.sc.n_hosts
    mask = env.action_masks()
    assert mask.shape == (n_v + 1 + n_h,) and mask.dtype == bool
    assert mask[n_v]  # no-op always allowed
    pm = info["pair_mask"]
    assert pm.shape == (n_v, n_h)
    own = obs["vnf_host"]
    assert not pm[np.arange(n_v), own].any()  # moving a VNF onto its own host is never offered
    assert np.array_equal(mask[:n_v], pm.any(axis=1))


def test_episode_truncates_at_horizon_and_noop_costs_nothing_extra() -> None:
    env = PlacementEnv("diurnal-small")
    env.reset(seed=1)
    n_v = env.sc.n_vnfs
    steps, truncated = 0, False
    info: dict[str, object] = {}
    while not truncated:
        _, reward, terminated, truncated, info = env.step(np.array([n_v, 0]))
        assert not terminated and reward <= 0
        steps += 1
    assert steps == env.sc.steps
    assert info["migrations"] == 0 and info["invalid_actions"] == 0
