"""PPO training of the placement policy, CleanRL-style: one readable loop, top to bottom.

1. (optional) behaviour-cloning warm start: run a teacher heuristic on the simulator and fit the
   network to its moves (cross-entropy), so PPO starts from "competent" instead of "random";
2. PPO with action masking: each iteration runs one full episode of one training scenario on
   ``num_envs`` seeds at once (the simulator is vectorised), computes GAE advantages from the
   per-step reward ``-cost * reward_scale / n_hosts``, and does ``update_epochs`` clipped updates.

Training seeds start at ``TRAIN_SEED_BASE`` (10^6), the "best" checkpoint is chosen on validation
seeds from ``VALIDATION_SEED_BASE`` (5 x 10^5), and evaluation reports use seeds below that, so
every reported number is on worlds neither training nor model selection has seen. Scenarios rotate
each iteration, so one network learns all of them. Checkpoints go to ``out`` (the last) and ``out``
with ``-best`` (the best validation score).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from placement.calibration import Calibration, load_calibration
from placement.observation import pair_mask
from placement.policies import make_policy
from placement.policies.rl import NetConfig, RlPolicy, ScoringNet, TorchObs, save_checkpoint, to_moves
from placement.scenario import Scenario, load_scenario
from placement.simulator import NOOP, ClusterSim

log = logging.getLogger(__name__)
TRAIN_SEED_BASE = 1_000_000
VALIDATION_SEED_BASE = 500_000  # checkpoint selection; evaluation reports use seeds < 500_000
SMALL_SCENARIOS = [
    "diurnal-small",
    "flash-small",
    "drift-small",
    "failure-small",
    "hetero-small",
    "churn-small",
]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (saved inside the checkpoint)."""

    scenarios: list[str] = field(default_factory=lambda: list(SMALL_SCENARIOS))
    seed: int = 1
    iterations: int = 60  # PPO iterations (one full episode on num_envs seeds each)
    num_envs: int = 32
    bc_iterations: int = 6  # behaviour-cloning warm-start iterations (0 = off)
    bc_teacher: str = "least-loaded"
    bc_minibatch: int = 256  # samples per behaviour-cloning gradient step
    learning_rate: float = 3e-4
    gamma: float = 0.98
    gae_lambda: float = 0.95
    update_epochs: int = 4
    minibatches: int = 4
    clip_coef: float = 0.2
    ent_coef: float = 0.003
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 0.1  # reward = -step cost * reward_scale / n_hosts
    hidden: int = 64
    eval_seeds: int = 4  # validation seeds per scenario for the "best" checkpoint
    eval_every: int = 6
    out: Path = Path("runs/placement/model.pt")
    threads: int = 1  # torch intra-op threads; >1 only slows these small matrices down


def _cat(obs: list[TorchObs]) -> TorchObs:
    return TorchObs(
        torch.cat([o.hosts for o in obs]),
        torch.cat([o.vnfs for o in obs]),
        torch.cat([o.vnf_host for o in obs]),
        torch.cat([o.pair_mask for o in obs]),
    )


def _take(o: TorchObs, idx: torch.Tensor) -> TorchObs:
    return TorchObs(o.hosts[idx], o.vnfs[idx], o.vnf_host[idx], o.pair_mask[idx])


def _episode_seeds(cfg: TrainConfig, it: int) -> list[int]:
    base = TRAIN_SEED_BASE + cfg.seed * 100_000 + it * cfg.num_envs
    return list(range(base, base + cfg.num_envs))


def evaluate_net(net: ScoringNet, scenarios: list[Scenario], seeds: list[int], cal: Calibration) -> float:
    """Mean composite cost of the greedy policy over scenarios x seeds (lower is better)."""
    pol = RlPolicy(net)
    costs = []
    for sc in scenarios:
        sim = ClusterSim(sc, seeds, cal)
        obs = sim.observe()
        while not sim.done:
            sim.step(pol.decide(obs, pair_mask(obs)))
            obs = sim.observe()
        costs.append(float(sim.metrics.cost(cal).mean()))
    return float(np.mean(costs))


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Run BC warm start + PPO; return the path of the best checkpoint."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    cal = load_calibration()
    scenarios = [load_scenario(s) for s in cfg.scenarios]
    net = ScoringNet(NetConfig(hidden=cfg.hidden))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, eps=1e-5)
    out = Path(cfg.out)
    best_path = out.with_name(out.stem + "-best" + out.suffix)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    meta: dict[str, Any] = {"config": config}
    best = float("inf")
    eval_seeds = list(range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + cfg.eval_seeds))
    t0 = time.time()
    total = cfg.bc_iterations + cfg.iterations
    bar = tqdm(total=total, disable=not progress, desc="train", unit="it")

    # ---- 1. behaviour cloning from a heuristic teacher ----------------------------------------
    teacher = make_policy(cfg.bc_teacher) if cfg.bc_iterations else None
    for it in range(cfg.bc_iterations):
        assert teacher is not None
        sc = scenarios[it % len(scenarios)]
        sim = ClusterSim(sc, _episode_seeds(cfg, it), cal)
        teacher.reset(sim.B)
        obs = sim.observe()
        batch: list[tuple[TorchObs, torch.Tensor]] = []
        while not sim.done:
            mask = pair_mask(obs)
            moves = teacher.decide(obs, mask)
            teach = moves.copy()
            teach[teach[:, 0] == NOOP] = (sim.V, 0)
            batch.append((TorchObs.from_numpy(obs, mask), torch.from_numpy(teach)))
            sim.step(moves)
            obs = sim.observe()
        o_all = _cat([o for o, _ in batch])
        a_all = torch.cat([a for _, a in batch])
        n = a_all.shape[0]
        gen = torch.Generator().manual_seed(cfg.seed * 31 + it)
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, cfg.bc_minibatch):
                idx = perm[s : s + cfg.bc_minibatch]
                _, logp, _, _ = net.act(_take(o_all, idx), a_all[idx])
                loss = -logp.mean()
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        bar.set_postfix(phase="bc", loss=f"{loss.item():.3f}", cost=f"{sim.metrics.cost(cal).mean():.0f}")
        bar.update(1)

    # ---- 2. PPO ---------------------------------------------------------------------------------
    for it in range(cfg.iterations):
        sc = scenarios[it % len(scenarios)]
        sim = ClusterSim(sc, _episode_seeds(cfg, cfg.bc_iterations + it), cal)
        obs = sim.observe()
        traj_o: list[TorchObs] = []
        traj_a: list[torch.Tensor] = []
        traj_logp: list[torch.Tensor] = []
        traj_v: list[torch.Tensor] = []
        traj_r: list[torch.Tensor] = []
        with torch.no_grad():
            while not sim.done:
                o = TorchObs.from_numpy(obs, pair_mask(obs))
                a, logp, _, val = net.act(o)
                cost = sim.step(to_moves(a, sim.V))
                traj_o.append(o)
                traj_a.append(a)
                traj_logp.append(logp)
                traj_v.append(val)
                traj_r.append(torch.as_tensor(-cost * cfg.reward_scale / sim.H, dtype=torch.float32))
                obs = sim.observe()
        n_t = len(traj_r)
        values = torch.stack(traj_v)
        rewards = torch.stack(traj_r)
        adv = torch.zeros_like(rewards)
        last = torch.zeros(sim.B)
        for t in reversed(range(n_t)):  # GAE; the episode ends at the horizon (terminal)
            nxt_v = values[t + 1] if t + 1 < n_t else torch.zeros(sim.B)
            delta = rewards[t] + cfg.gamma * nxt_v - values[t]
            last = delta + cfg.gamma * cfg.gae_lambda * last
            adv[t] = last
        returns = adv + values
        o_all = _cat(traj_o)
        a_all, lp_all = torch.cat(traj_a), torch.cat(traj_logp)
        adv_all, ret_all = adv.reshape(-1), returns.reshape(-1)
        n = adv_all.numel()
        mb = n // cfg.minibatches
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + it)
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, mb):
                idx = perm[s : s + mb]
                o = _take(o_all, idx)
                _, newlogp, ent, newv = net.act(o, a_all[idx])
                ratio = (newlogp - lp_all[idx]).exp()
                a_mb = adv_all[idx]
                a_mb = (a_mb - a_mb.mean()) / (a_mb.std() + 1e-8)
                pg = torch.max(
                    -a_mb * ratio, -a_mb * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)
                ).mean()
                v_loss = 0.5 * ((newv - ret_all[idx]) ** 2).mean()
                loss = pg + cfg.vf_coef * v_loss - cfg.ent_coef * ent.mean()
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
                opt.step()
        bar.set_postfix(
            phase="ppo",
            scen=sc.name,
            cost=f"{sim.metrics.cost(cal).mean():.0f}",
            moves=f"{sim.metrics.migrations.mean():.0f}",
        )
        bar.update(1)
        if (it + 1) % cfg.eval_every == 0 or it + 1 == cfg.iterations:
            score = evaluate_net(net, scenarios, eval_seeds, cal)
            meta.update(
                iteration=cfg.bc_iterations + it + 1, eval_cost=score, wall_s=round(time.time() - t0, 1)
            )
            save_checkpoint(net, out, meta)
            log.info("iteration %d: held-out mean cost %.1f", it + 1, score)
            if score < best:
                best = score
                save_checkpoint(net, best_path, meta)
    if cfg.iterations == 0:
        meta.update(eval_cost=evaluate_net(net, scenarios, eval_seeds, cal))
        save_checkpoint(net, out, meta)
        save_checkpoint(net, best_path, meta)
    bar.close()
    return best_path
