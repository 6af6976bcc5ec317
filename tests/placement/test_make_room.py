"""The make-room teacher: when no hot VNF fits anywhere, it frees room on a target host first, and the
network's make-room input says the same thing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from placement.observation import pair_mask
from placement.policies import NOOP, make_policy
from placement.policies.heuristics import MakeRoomPolicy
from placement.policies.rl import (
    NetConfig,
    RlPolicy,
    ScoringNet,
    TorchObs,
    load_checkpoint,
    pair_stats,
    room_gain,
    save_checkpoint,
)
from placement.train import make_teacher
from tests.placement.test_baselines import HOT, _obs

# host 0 at 120 % (two hot VNFs of 60 pps); hosts 1-3 at 45 % (30 + 15 pps each): a 60-pps VNF fits
# under 100 % on none of them, so least-loaded is stuck. Moving a 30-pps VNF from host g to another
# cold host k (k at 75 %) leaves g at 15 %, where a hot VNF then fits (g at 75 %, host 0 at 60 %).
STUCK = _obs([0, 0, 1, 1, 2, 2, 3, 3], [60, 60, 30, 15, 30, 15, 30, 15], [100, 100, 100, 100])


def test_least_loaded_is_stuck_and_make_room_frees_a_host() -> None:
    mask = pair_mask(STUCK)
    assert not mask[0, :2].any()  # no hot VNF fits anywhere
    assert make_policy("least-loaded").decide(STUCK, mask)[0, 0] == NOOP
    pol = make_policy("make-room-least-loaded")
    pol.reset(1)
    w, k = (int(x) for x in pol.decide(STUCK, mask)[0])
    assert w != NOOP and mask[0, w, k]
    g = int(STUCK.vnf_host[0, w])
    assert g != 0 and k != 0 and STUCK.vnf_rate_pps[0, w] == 30  # the larger cold VNF makes more room
    # carry the move out: now a hot VNF fits on g and the follow-up step moves it there
    host = STUCK.vnf_host[0].copy()
    host[w] = k
    nxt = _obs(host.tolist(), STUCK.vnf_rate_pps[0].tolist(), [100, 100, 100, 100])
    v2, h2 = (int(x) for x in pol.decide(nxt, pair_mask(nxt))[0])
    assert v2 in (0, 1) and h2 == g


def test_make_room_acts_like_least_loaded_when_not_stuck() -> None:
    mask = pair_mask(HOT)
    ll = make_policy("least-loaded").decide(HOT, mask)
    assert np.array_equal(MakeRoomPolicy().decide(HOT, mask), ll)
    calm = _obs([0, 1, 2], [50, 60, 70], [100, 100, 100])
    assert MakeRoomPolicy().decide(calm, pair_mask(calm))[0, 0] == NOOP


def test_teacher_spec() -> None:
    mr = make_teacher("make-room-least-loaded@0.7/0.05")
    assert isinstance(mr, MakeRoomPolicy) and mr.threshold == 0.7 and mr.margin == 0.05


def test_room_gain_input(tmp_path: Path) -> None:
    o = TorchObs.from_numpy(STUCK, pair_mask(STUCK))
    gain = room_gain(o, pair_stats(o))[0]
    # a 30-pps VNF: host 0 from 1.20 to max(0.60, 0.75, 0.75) = 0.75; a 15-pps one: to 0.90
    assert torch.allclose(gain[[2, 4, 6]], torch.tensor(0.45), atol=1e-5)
    assert torch.allclose(gain[[3, 5, 7]], torch.tensor(0.30), atol=1e-5)
    assert (gain[:2] == 0).all()  # the hot VNFs themselves make no room
    torch.manual_seed(0)
    net = ScoringNet(NetConfig(hidden=16, trend=True, room=True))
    save_checkpoint(net, tmp_path / "m.pt", {})
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert loaded.cfg.room
    v, h = RlPolicy(loaded).decide(STUCK, pair_mask(STUCK))[0]
    assert v == NOOP or pair_mask(STUCK)[0, v, h]
