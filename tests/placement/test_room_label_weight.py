"""TrainConfig.room_label_weight: the DAgger states where a make-room teacher is stuck are drawn more
often; at the default 1 the minibatch draw is the shipped model's (torch.randint)."""

from __future__ import annotations

import numpy as np
import torch

from placement.observation import pair_mask
from placement.policies.heuristics import MakeRoomPolicy
from placement.train import TrainConfig, label_weights, make_teacher, sample_minibatch
from tests.placement.test_baselines import HOT
from tests.placement.test_make_room import STUCK


def test_make_room_teacher_flags_its_stuck_moves() -> None:
    pol = MakeRoomPolicy()
    pol.decide(STUCK, pair_mask(STUCK))
    assert pol.last_stuck_moves.tolist() == [True]
    pol.decide(HOT, pair_mask(HOT))  # least-loaded's own move: not a stuck state
    assert pol.last_stuck_moves.tolist() == [False]


def test_label_weights() -> None:
    cfg = TrainConfig(room_label_weight=8.0)
    teacher = make_teacher("make-room-least-loaded@0.7/0.02")
    teacher.decide(STUCK, pair_mask(STUCK))
    assert label_weights(cfg, teacher, 1).tolist() == [8.0]
    assert label_weights(TrainConfig(), teacher, 1).tolist() == [1.0]  # default: no weighting
    other = make_teacher("least-loaded")
    other.decide(STUCK, pair_mask(STUCK))
    assert label_weights(cfg, other, 1).tolist() == [1.0]


def test_default_draw_is_uniform_randint() -> None:
    assert TrainConfig().room_label_weight == 1.0
    w = torch.ones(100)
    w[7] = 50.0  # ignored at the default weight: the draw depends on the buffer size only
    got = sample_minibatch(TrainConfig(), w, 64, torch.Generator().manual_seed(3))
    want = torch.randint(100, (64,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(got, want)


def test_weighted_draw_oversamples_flagged_states() -> None:
    w = torch.ones(100)
    w[7] = 100.0  # one flagged state of 100, weight 100: drawn about half of the time
    idx = sample_minibatch(TrainConfig(room_label_weight=100.0), w, 4000, torch.Generator().manual_seed(0))
    share = float((idx == 7).float().mean())
    assert 0.45 < share < 0.56, share
    assert np.isin(idx.numpy(), np.arange(100)).all()
