"""Each baseline makes the move its definition demands on small hand-made clusters."""

from __future__ import annotations

import numpy as np
import pytest

from placement.observation import Observation, Snapshot, build_observation, pair_mask
from placement.policies import NOOP, make_policy


def _obs(
    vnf_host: list[int], rates: list[float], caps: list[float], up: list[bool] | None = None
) -> Observation:
    h, v = len(caps), len(rates)
    snap = Snapshot(
        host_capacity_pps=np.array([caps], dtype=float),
        host_up=np.array([up or [True] * h]),
        host_pps=np.zeros((1, h)),
        host_cpu=np.zeros((1, h)),
        vnf_rate_pps=np.array([rates], dtype=float),
        vnf_host=np.array([vnf_host]),
        vnf_latency_ms=np.zeros((1, v)),
        vnf_active=np.ones((1, v), dtype=bool),
        vnf_state_bytes=np.zeros((1, v)),
        vnf_migrating=np.zeros((1, v), dtype=bool),
        sla_ms=10.0,
        overload_threshold=0.8,
    )
    return build_observation(snap)


# host 0 at 90 % (VNFs 0,1,2 = 50,30,10); host 1 at 15 %, host 2 at 40 %, host 3 at 20 %
HOT = _obs([0, 0, 0, 1, 2, 3], [50, 30, 10, 15, 40, 20], [100, 100, 100, 100])


def _decide(name: str, obs: Observation) -> tuple[int, int]:
    pol = make_policy(name)
    pol.reset(1)
    v, h = pol.decide(obs, pair_mask(obs))[0]
    return int(v), int(h)


@pytest.mark.parametrize(
    ("policy", "move"),
    [
        ("first-fit", (0, 1)),  # largest VNF (50) -> first host where 50 fits under 80 %: host 1
        ("best-fit", (0, 3)),  # same VNF -> host with least room left under 80 %: host 3 (80-20-50=10)
        ("least-loaded", (1, 1)),  # VNF 1 (30) to host 1 gives max(0.60, 0.45) = 0.60, the best min-max
        ("thesis-80", (0, 1)),  # highest-rate flow -> lowest-usage host, 0.65 < 0.8
        ("static", (NOOP, 0)),
    ],
)
def test_hotspot_move(policy: str, move: tuple[int, int]) -> None:
    assert _decide(policy, HOT) == move


def test_thesis_gives_up_when_target_would_overload() -> None:
    # host 0 at 90 % with one 70-pps VNF; the least-loaded host is at 30 %: 100 % after the move
    obs = _obs([0, 0, 1, 2], [70, 20, 30, 40], [100, 100, 100])
    assert _decide("thesis-80", obs)[0] == NOOP


@pytest.mark.parametrize("policy", ["first-fit", "best-fit", "least-loaded", "thesis-80", "ilp"])
def test_no_move_when_nothing_is_overloaded(policy: str) -> None:
    obs = _obs([0, 1, 2], [50, 60, 70], [100, 100, 100])
    assert _decide(policy, obs)[0] == NOOP


def test_down_host_is_never_a_target() -> None:
    obs = _obs([0, 0, 0, 2], [50, 30, 10, 20], [100, 100, 100], up=[True, False, True])
    for name in ("first-fit", "best-fit", "least-loaded", "thesis-80", "random"):
        v, h = _decide(name, obs)
        assert v == NOOP or h == 2, name


def test_random_only_picks_feasible_moves() -> None:
    pol = make_policy("random", seed=3)
    pol.reset(1)
    mask = pair_mask(HOT)
    moves = [pol.decide(HOT, mask)[0] for _ in range(200)]
    picked = [(int(v), int(h)) for v, h in moves if v != NOOP]
    assert picked and all(mask[0, v, h] for v, h in picked)


def test_ilp_moves_toward_optimum() -> None:
    v, h = _decide("ilp", HOT)
    assert v != NOOP and HOT.vnf_host[0, v] == 0 and h != 0
