"""A small training run (behaviour-cloning warm start + PPO) beats the random policy on held-out seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from placement.calibration import load_calibration
from placement.evaluate import run_policy
from placement.policies.rl import load_checkpoint
from placement.scenario import load_scenario
from placement.train import TrainConfig, train


@pytest.mark.slow
def test_smoke_training_beats_random(tmp_path: Path) -> None:
    cfg = TrainConfig(
        scenarios=["hetero-small", "diurnal-small"],
        iterations=2,
        bc_iterations=6,
        num_envs=16,
        learning_rate=1e-3,
        eval_seeds=1,
        eval_every=2,
        out=tmp_path / "smoke.pt",
    )
    best = train(cfg, progress=False)
    assert best.exists() and best.stat().st_size < 1_000_000
    _, meta = load_checkpoint(best)
    assert meta["config"]["iterations"] == 2
    cal = load_calibration()
    held_out = [424242]  # training uses seeds >= 1_000_000
    for name in cfg.scenarios:
        sc = load_scenario(name)
        rl = np.mean([r.cost for r in run_policy("rl", sc, held_out, cal, model=best)])
        rnd = np.mean([r.cost for r in run_policy("random", sc, held_out, cal)])
        assert rl < rnd, f"{name}: RL cost {rl:.1f} not below random {rnd:.1f}"
