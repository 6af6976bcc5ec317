"""NetConfig.move_first: the greedy decision compares the no-op with the summed probability of all
moves, so labels split between equally good VNFs still lead to a move; off, it is the plain argmax."""

from __future__ import annotations

from dataclasses import replace

import torch

from placement.observation import pair_mask
from placement.policies import NOOP
from placement.policies.rl import NEG, NetConfig, PairStats, RlPolicy, ScoringNet, TorchObs
from tests.placement.test_make_room import STUCK


class _FixedLogits(ScoringNet):
    """VNF-step logits fixed: the no-op 0.4, six cold VNFs 0.1 each (a split "move" label)."""

    def vnf_logits(self, o: TorchObs, ev: torch.Tensor, g: torch.Tensor, st: PairStats) -> torch.Tensor:
        p = torch.tensor([[0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4]])
        p[0, 4] += 1e-3  # a unique most likely VNF
        return torch.where(p > 0, p.log(), torch.full_like(p, NEG)).expand(o.vnfs.shape[0], -1)


def test_move_first_moves_when_moving_is_more_likely_than_staying() -> None:
    torch.manual_seed(0)
    mask = pair_mask(STUCK)
    plain = _FixedLogits(NetConfig(hidden=16))
    assert RlPolicy(plain).decide(STUCK, mask)[0, 0] == NOOP  # 0.4 beats every single VNF
    first = _FixedLogits(NetConfig(hidden=16))
    first.cfg = replace(first.cfg, move_first=True)
    v, h = RlPolicy(first).decide(STUCK, mask)[0]
    assert v == 4 and mask[0, v, h]  # 0.6 to move beats 0.4 to stay: the most likely VNF moves


def test_move_first_stays_when_staying_is_more_likely() -> None:
    class _Calm(_FixedLogits):
        def vnf_logits(self, o: TorchObs, ev: torch.Tensor, g: torch.Tensor, st: PairStats) -> torch.Tensor:
            out = super().vnf_logits(o, ev, g, st).clone()
            out[:, -1] = torch.tensor(0.7).log()  # no-op 0.7 of 1.3: stay
            return out

    net = _Calm(NetConfig(hidden=16, move_first=True))
    assert RlPolicy(net).decide(STUCK, pair_mask(STUCK))[0, 0] == NOOP
