"""Decision-time lookahead (policies/lookahead.py): the cost model picks among the network's
proposals; with depth 2 a make-room move is worth the move it enables, with depth 1 it is not; the
network's own choice stands unless another candidate saves more than the margin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from placement.observation import pair_mask
from placement.policies import NOOP, make_policy
from placement.policies.lookahead import (
    DEFAULT_LOOKAHEAD,
    CostModel,
    LookaheadConfig,
    choose,
    parse_lookahead,
)
from placement.policies.rl import NetConfig, RlPolicy, ScoringNet, save_checkpoint
from placement.service import ServiceConfig
from tests.placement.test_baselines import HOT
from tests.placement.test_make_room import STUCK

NOOP_MOVE = np.array([[NOOP, 0]])


def _choose(cfg: LookaheadConfig, greedy: np.ndarray, cand: list[tuple[int, int]]) -> tuple[int, int]:
    cv = np.array([[v for v, _ in cand]])
    ch = np.array([[h for _, h in cand]])
    v, h = choose(CostModel(cfg), STUCK, greedy, cv, ch)[0]
    return int(v), int(h)


def test_depth_two_plays_make_room_and_depth_one_does_not() -> None:
    # STUCK: host 0 at 120 % with two 60-pps VNFs that fit nowhere; VNF 2 (30 pps, host 1) -> host 2
    # makes room for one of them on host 1. The network proposes that move and a useless one.
    mask = pair_mask(STUCK)
    make_room, useless = (2, 2), (3, 3)
    assert mask[0, 2, 2] and mask[0, 3, 3]
    cand = [useless, make_room]
    assert _choose(LookaheadConfig(depth=2), NOOP_MOVE, cand) == make_room
    assert _choose(LookaheadConfig(depth=1), NOOP_MOVE, cand) == (NOOP, 0)  # no gain on its own


def test_greedy_choice_stands_within_the_margin() -> None:
    cand = [(3, 3), (2, 2)]
    # the make-room plan saves 1 host-second of overload + 2 VNF-seconds of SLA per second (~12 over 5 s)
    assert _choose(LookaheadConfig(margin=1e3), NOOP_MOVE, cand) == (NOOP, 0)
    greedy = np.array([[3, 3]])
    assert _choose(LookaheadConfig(margin=1e3), greedy, cand) == (3, 3)
    assert _choose(LookaheadConfig(margin=0.5), greedy, cand) == (2, 2)


def test_direct_move_preferred_when_a_hot_vnf_fits() -> None:
    # HOT: host 0 at 90 %; moving VNF 0 (50 pps) to host 1 (15 %) ends the overload at once
    # (1 host-second per second; waiting a step for the same move costs one of them, so a margin
    # below 1)
    cv, ch = np.array([[0, 2]]), np.array([[1, 1]])
    v, h = choose(CostModel(LookaheadConfig(margin=0.5)), HOT, NOOP_MOVE, cv, ch)[0]
    assert (v, h) != (NOOP, 0) and pair_mask(HOT)[0, v, h]
    assert HOT.vnf_host[0, v] == 0  # a VNF of the hot host moves


def test_rl_policy_with_lookahead_returns_feasible_moves() -> None:
    torch.manual_seed(0)
    net = ScoringNet(NetConfig(hidden=16))
    for obs in (STUCK, HOT):
        mask = pair_mask(obs)
        v, h = RlPolicy(net, lookahead=LookaheadConfig(k=4, m=2)).decide(obs, mask)[0]
        assert v == NOOP or mask[0, v, h]
    plain = RlPolicy(net).decide(HOT, pair_mask(HOT))
    assert np.array_equal(RlPolicy(net, lookahead=None).decide(HOT, pair_mask(HOT)), plain)


def test_parse_lookahead() -> None:
    assert parse_lookahead("off") is None and parse_lookahead("") is None
    assert parse_lookahead("on") == LookaheadConfig()
    cfg = parse_lookahead("k=4, margin=2.5,extrapolate=1,depth=1")
    assert cfg == LookaheadConfig(k=4, margin=2.5, extrapolate=True, depth=1)
    with pytest.raises(ValueError, match="key=value"):
        parse_lookahead("bogus=1")


def test_make_policy_passes_lookahead(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(ScoringNet(NetConfig(hidden=16)), path, {})
    pol = make_policy("rl", model=path, lookahead=LookaheadConfig(k=3))
    assert isinstance(pol, RlPolicy) and pol.search is not None and pol.search.cfg.k == 3
    default = make_policy("rl", model=path)  # on by default since the sixth round
    assert isinstance(default, RlPolicy) and default.search is not None
    assert default.search.cfg == DEFAULT_LOOKAHEAD
    off = make_policy("rl", model=path, lookahead=None)
    assert isinstance(off, RlPolicy) and off.search is None


def test_service_lookahead_steps_at_its_decision_interval() -> None:
    cfg = ServiceConfig(interval_s=2.0, sla_ms=20.0)
    la = cfg.lookahead_config()
    assert la is not None and la.step_s == 2.0 and la.sla_ms == 20.0
    assert CostModel(la).rates(HOT).shape[1] >= 2  # a follow-up step even when interval >= horizon
    assert ServiceConfig(interval_s=30.0).lookahead_config() is not None
    assert CostModel(ServiceConfig(interval_s=30.0).lookahead_config()).rates(HOT).shape[1] == 2  # type: ignore[arg-type]
    assert ServiceConfig(lookahead=False).lookahead_config() is None
