"""Imitation teachers and the no-op bias: the greedy ILP-objective step, teacher specs, bias effect."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from placement.observation import pair_mask
from placement.policies import NOOP
from placement.policies.heuristics import ExcessGreedyPolicy, LeastLoadedPolicy
from placement.policies.ilp import objective
from placement.policies.rl import RlPolicy, ScoringNet
from placement.train import make_teacher
from tests.placement.test_baselines import HOT, _obs


def _greedy_by_enumeration(obs, thr: float = 0.8) -> float:  # type: ignore[no-untyped-def]
    """The lowest ILP objective reachable by one feasible move (or none)."""
    rates, caps, cur = obs.vnf_rate_pps[0], obs.host_capacity_pps[0], obs.vnf_host[0]
    mask = pair_mask(obs)[0]
    best = objective(cur, rates, caps, cur, thr, 0.1, 0.02)
    for v, h in zip(*np.nonzero(mask), strict=True):
        a = cur.copy()
        a[v] = h
        best = min(best, objective(a, rates, caps, cur, thr, 0.1, 0.02))
    return best


@pytest.mark.parametrize(
    "obs",
    [
        HOT,
        _obs([0, 0, 1, 1, 2], [60, 35, 50, 40, 10], [100, 100, 100]),  # two hosts over 80 %
        _obs([0, 0, 0, 1], [90, 50, 40, 20], [200, 80, 80]),  # heterogeneous capacities, host 0 at 90 %
    ],
)
def test_excess_greedy_makes_the_best_single_move(obs) -> None:  # type: ignore[no-untyped-def]
    pol = ExcessGreedyPolicy()
    pol.reset(1)
    v, h = (int(x) for x in pol.decide(obs, pair_mask(obs))[0])
    assert v != NOOP
    a = obs.vnf_host[0].copy()
    a[v] = h
    got = objective(a, obs.vnf_rate_pps[0], obs.host_capacity_pps[0], obs.vnf_host[0], 0.8, 0.1, 0.02)
    assert got == pytest.approx(_greedy_by_enumeration(obs), abs=1e-9)


def test_excess_greedy_stays_when_nothing_is_overloaded() -> None:
    obs = _obs([0, 1, 2], [50, 60, 70], [100, 100, 100])
    assert ExcessGreedyPolicy().decide(obs, pair_mask(obs))[0, 0] == NOOP


def test_teacher_specs() -> None:
    ll = make_teacher("least-loaded@0.7/0.05")
    assert isinstance(ll, LeastLoadedPolicy) and ll.threshold == 0.7 and ll.margin == 0.05
    eg = make_teacher("excess-greedy@0.75/0.02")
    assert isinstance(eg, ExcessGreedyPolicy) and eg.threshold == 0.75 and eg.migration_weight == 0.02
    assert make_teacher("ilp").name == "ilp"


def test_large_noop_bias_means_no_moves() -> None:
    torch.manual_seed(0)
    net = ScoringNet()
    net.cfg = replace(net.cfg, noop_bias=1e4)
    assert RlPolicy(net).decide(HOT, pair_mask(HOT))[0, 0] == NOOP
    net.cfg = replace(net.cfg, noop_bias=-1e4)
    assert RlPolicy(net).decide(HOT, pair_mask(HOT))[0, 0] != NOOP
