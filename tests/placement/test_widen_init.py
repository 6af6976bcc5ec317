"""Fine-tuning with new inputs: a network without the make-room inputs, widened into one with them
(``widen_into``, ``TrainConfig.init_from``), starts out computing exactly the old network's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from placement.observation import pair_mask
from placement.policies.rl import NetConfig, ScoringNet, TorchObs, save_checkpoint, widen_into
from placement.train import TrainConfig, train
from tests.placement.test_make_room import STUCK


def _outputs(net: ScoringNet, o: TorchObs) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        eh, ev, g, st = net.encode(o)
        lv = net.vnf_logits(o, ev, g, st)
        lh = net.host_logits(o, eh, ev, g, torch.tensor([2]), st)
    return lv, lh


def test_widened_network_keeps_the_old_outputs() -> None:
    torch.manual_seed(0)
    src = ScoringNet(NetConfig(hidden=16, trend=True))
    net = ScoringNet(NetConfig(hidden=16, trend=True, room=True))
    widen_into(net, src)
    o = TorchObs.from_numpy(STUCK, pair_mask(STUCK))
    assert net.encode(o)[3].glob[0, -1] > 0.0  # the room input is non-zero here, and still ignored
    for a, b in zip(_outputs(src, o), _outputs(net, o), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="cannot widen"):
        widen_into(ScoringNet(NetConfig(hidden=32, trend=True, room=True)), src)
    with pytest.raises(ValueError, match="cannot widen"):
        widen_into(src, net)  # dropping inputs is not widening


def test_train_init_from_widens(tmp_path: Path) -> None:
    torch.manual_seed(1)
    src = ScoringNet(NetConfig(hidden=16, trend=True))
    save_checkpoint(src, tmp_path / "src.pt", {})
    cfg = TrainConfig(
        scenarios=["hetero-small"],
        bc_iterations=0,
        hidden=16,
        room_features=True,
        init_from=str(tmp_path / "src.pt"),
        eval_seeds=1,
        out=tmp_path / "ft.pt",
    )
    best = train(cfg, progress=False)
    sd = torch.load(best, weights_only=True)["state_dict"]
    assert sd["vnf_enc.0.weight"].shape[1] == src.state_dict()["vnf_enc.0.weight"].shape[1] + 1
    assert torch.equal(sd["vnf_head.0.weight"], src.state_dict()["vnf_head.0.weight"])
