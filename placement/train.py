"""Training of the placement policy, CleanRL-style: one readable loop per phase, top to bottom.

1. imitation by DAgger: every iteration runs one episode of one training scenario on ``num_envs``
   seeds; each environment follows the teacher with probability ``beta`` per step and the network
   (greedy) otherwise, ``beta`` falling linearly from 1 to 0 over ``dagger_beta_iterations``. Every
   visited state is labelled with the teacher's move (no-op included) and kept in a bounded
   per-scenario buffer; the network is fitted to all buffers by cross-entropy. The teacher is a fixed
   heuristic, or with ``bc_teacher="auto"`` the member of ``teacher_pool`` with the lowest mean cost
   on that scenario's *training* seeds (chosen once, before imitation). The network then learns the
   states the teachers never visit, and one set of weights acts differently per cluster situation.
   ``EXTRA_TEACHERS`` (the one-step greedy on the ILP objective, and the ILP itself, which labels
   only a sample of the states) can be added to the pool; they validated worse (README "Results").
   The default pool includes ``TREND_TEACHERS`` (least-loaded on rates projected along their rising
   trend) and the network gets the rate-trend inputs (``trend_features``); together they validated
   0.769 vs 0.801 without them (README "Third round"). ``ROOM_TEACHERS`` (least-loaded that frees
   room on a target host when no hot VNF fits anywhere) and the network's make-room inputs
   (``room_features``) are the fourth round's. The fifth round's shipped model fine-tunes the third
   round's (``init_from``, widened by :func:`~placement.policies.rl.widen_into`) with them, draws the
   labels where a make-room teacher is stuck ``room_label_weight`` times as often, and decides with
   the move-first greedy rule (``move_first``); all three are off by default (README "Fifth round").
2. (optional) PPO with action masking: one full episode per iteration, GAE advantages from the
   per-step reward ``-cost * reward_scale / n_hosts``, ``update_epochs`` clipped updates.

Training seeds start at ``TRAIN_SEED_BASE`` (10^6), the "best" checkpoint is chosen on validation
seeds from ``VALIDATION_SEED_BASE`` (5 x 10^5) by the geometric mean over scenarios of
``(cost + 1) / (best heuristic cost + 1)`` (the +1 cost unit keeps near-zero-cost scenarios from
dominating the selection), and evaluation reports use seeds below that, so every reported number is
on worlds neither training nor model selection has seen. Scenarios rotate each iteration, so one
network learns all of them. Checkpoints go to ``out`` (the last) and ``out`` with ``-best`` (the
best validation score).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from placement.calibration import Calibration, load_calibration
from placement.observation import pair_mask
from placement.policies import Policy, make_policy
from placement.policies.heuristics import (
    ExcessGreedyPolicy,
    LeastLoadedPolicy,
    MakeRoomPolicy,
    TrendLeastLoadedPolicy,
)
from placement.policies.rl import (
    NetConfig,
    RlPolicy,
    ScoringNet,
    TorchObs,
    load_checkpoint,
    save_checkpoint,
    to_moves,
    widen_into,
)
from placement.scenario import Scenario, builtin_scenarios, load_scenario
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
ALL_SCENARIOS = [p.stem for p in builtin_scenarios()]
# "least-loaded@T/M": least-loaded with overload trigger T (fraction) and hysteresis margin M;
# "excess-greedy@T/M": the one-step greedy on the ILP objective with threshold T and per-move weight M;
# "trend-least-loaded@T/M/H": least-loaded on rates projected H s ahead along rising slopes;
# "make-room-least-loaded@T/M": least-loaded that frees room on a target host when it is stuck;
# "ilp": the per-step MILP, a candidate only where it runs (hosts x VNFs <= ilp_max_binaries)
BASE_TEACHERS = (  # the pool of the previous model (validation 0.801, no rate-trend inputs)
    "least-loaded",
    "least-loaded@0.7/0.02",
    "least-loaded@0.7/0.05",
    "least-loaded@0.6/0.05",
    "best-fit",
    "first-fit",
)
TREND_TEACHERS = (  # imitable only with the rate-trend network inputs (TrainConfig.trend_features)
    "trend-least-loaded@0.8/0.02/5",
    "trend-least-loaded@0.8/0.02/10",
    "trend-least-loaded@0.7/0.05/5",
)
ROOM_TEACHERS = (  # "make room, then move" (MakeRoomPolicy); imitable with the room_features inputs
    "make-room-least-loaded@0.8/0.02",
    "make-room-least-loaded@0.7/0.02",
    "make-room-least-loaded@0.7/0.05",
)
# the shipped model's pool (validation 0.769); ROOM_TEACHERS are added with --room-teachers
TEACHER_POOL = (*BASE_TEACHERS, *TREND_TEACHERS)
# tried as extra pool members (README "Results"): validated worse (0.89 vs 0.80), not in the default
EXTRA_TEACHERS = ("excess-greedy", "excess-greedy@0.75/0.02", "excess-greedy@0.7/0.05", "ilp")
EXPENSIVE_TEACHERS = ("ilp",)  # ~10 ms per environment and step: label only a sample of the states
HEURISTIC_REFERENCE = ("first-fit", "best-fit", "least-loaded", "thesis-80")  # the "best heuristic" set


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (saved inside the checkpoint)."""

    scenarios: list[str] = field(default_factory=lambda: list(ALL_SCENARIOS))
    seed: int = 1
    iterations: int = 0  # PPO iterations after imitation (one full episode on num_envs seeds each)
    num_envs: int = 16
    bc_iterations: int = 130  # DAgger iterations (0 = off); one scenario episode each
    bc_teacher: str = "auto"  # a policy name, "least-loaded@T/M", "excess-greedy@T/M", or "auto"
    teacher_pool: list[str] = field(default_factory=lambda: list(TEACHER_POOL))
    teacher_select_seeds: int = 8  # training seeds per scenario used to pick the "auto" teacher
    ilp_max_binaries: int = 200  # "ilp" is a teacher candidate only where hosts x VNFs <= this
    expensive_label_fraction: float = 0.25  # share of network-driven steps an expensive teacher labels
    dagger_beta_iterations: int = 39  # beta (teacher share) falls 1 -> 0 over these iterations
    dagger_buffer: int = 4  # episodes kept per scenario in the imitation buffer
    bc_steps: int = 60  # imitation gradient steps per iteration (spread over all scenario buffers)
    bc_minibatch: int = 256  # samples per imitation gradient step (fewer on big clusters)
    pair_budget: int = 1_000_000  # max V*H*samples per imitation minibatch (memory, time)
    store_pairs: int = 20_000_000  # max V*H*states kept per imitation episode (states subsampled)
    learning_rate: float = 3e-4  # imitation (Adam); decays linearly to lr_final_frac of it
    lr_final_frac: float = 1.0  # 1 = constant (the shipped model; 0.1 over 234 iterations validated worse)
    ppo_learning_rate: float = 5e-5  # PPO fine-tuning: small, so it refines the imitation policy
    init_from: str = ""  # start from this checkpoint's weights (room inputs added at weight 0: widen_into)
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
    trend_features: bool = True  # rate-trend network inputs (NetConfig.trend); False = the previous model
    room_features: bool = False  # make-room network inputs (NetConfig.room); False = the shipped model
    # sampling weight (relative to 1 for every other label) of the DAgger states where a make-room
    # teacher played a stuck-state move (MakeRoomPolicy.last_stuck_moves); 1 = uniform minibatches,
    # the shipped model's draw (torch.randint); any other value draws minibatches by torch.multinomial
    room_label_weight: float = 1.0
    move_first: bool = False  # greedy rule NetConfig.move_first (DAgger rollouts, validation, checkpoint)
    eval_seeds: int = 4  # validation seeds per scenario for the "best" checkpoint
    eval_every: int = 13  # iterations between validation runs (imitation and PPO)
    noop_bias_grid: list[float] = field(default_factory=list)  # no-op biases tried after training (off)
    out: Path = Path("runs/placement/model.pt")
    threads: int = 1  # torch intra-op threads; >1 only slows these small matrices down


def _cat(obs: list[TorchObs]) -> TorchObs:
    return TorchObs.cat(obs)


def _take(o: TorchObs, idx: torch.Tensor) -> TorchObs:
    return o.take(idx)


def _episode_seeds(cfg: TrainConfig, it: int) -> list[int]:
    base = TRAIN_SEED_BASE + cfg.seed * 100_000 + it * cfg.num_envs
    return list(range(base, base + cfg.num_envs))


#: teacher specs "<name>@a/b[/c]": the policy class and the keyword argument each number sets
TEACHER_SPECS: dict[str, tuple[Callable[..., Policy], tuple[str, ...]]] = {
    "least-loaded": (LeastLoadedPolicy, ("threshold", "margin")),
    "make-room-least-loaded": (MakeRoomPolicy, ("threshold", "margin")),
    "excess-greedy": (ExcessGreedyPolicy, ("threshold", "migration_weight")),
    "trend-least-loaded": (TrendLeastLoadedPolicy, ("threshold", "margin", "horizon_s")),
}


def make_teacher(spec: str) -> Policy:
    """A teacher policy by name; ``least-loaded@T/M`` is least-loaded with trigger T and margin M
    (the other parametrised names in ``TEACHER_SPECS`` likewise)."""
    name, sep, args = spec.partition("@")
    if sep and name in TEACHER_SPECS:
        cls, keys = TEACHER_SPECS[name]
        values = args.split("/")
        if len(values) != len(keys):
            raise ValueError(f"teacher {spec!r}: expected {name}@{'/'.join(keys)}")
        return cls(**{k: float(v) for k, v in zip(keys, values, strict=True)})
    if spec == "excess-greedy":  # not a reference baseline, so make_policy does not know it
        return ExcessGreedyPolicy()
    return make_policy(spec)


def policy_cost(pol: Policy, sc: Scenario, seeds: list[int], cal: Calibration) -> float:
    """Mean composite cost of ``pol`` on ``sc`` over ``seeds`` (one simulator batch)."""
    sim = ClusterSim(sc, seeds, cal)
    pol.reset(sim.B)
    obs = sim.observe()
    while not sim.done:
        sim.step(pol.decide(obs, pair_mask(obs)))
        obs = sim.observe()
    return float(sim.metrics.cost(cal).mean())


def reference_costs(scenarios: list[Scenario], seeds: list[int], cal: Calibration) -> dict[str, float]:
    """Per scenario: the lowest mean cost of the reference heuristics (the "best heuristic")."""
    return {
        sc.name: min(policy_cost(make_policy(p), sc, seeds, cal) for p in HEURISTIC_REFERENCE)
        for sc in scenarios
    }


def evaluate_net(
    net: ScoringNet,
    scenarios: list[Scenario],
    seeds: list[int],
    cal: Calibration,
    reference: dict[str, float] | None = None,
) -> float:
    """Validation score of the greedy policy (lower is better).

    With ``reference`` (best heuristic cost per scenario on the same seeds): the geometric mean of
    ``(cost + 1) / (reference + 1)``; without: the plain mean composite cost over scenarios.
    """
    pol = RlPolicy(net)
    costs = {sc.name: policy_cost(pol, sc, seeds, cal) for sc in scenarios}
    if reference is None:
        return float(np.mean(list(costs.values())))
    ratios = [(costs[n] + 1.0) / (reference[n] + 1.0) for n in costs]
    return float(np.exp(np.mean(np.log(ratios))))


def pick_teachers(cfg: TrainConfig, scenarios: list[Scenario], cal: Calibration) -> dict[str, str]:
    """Teacher per scenario: ``cfg.bc_teacher``, or for "auto" the pool member with the lowest mean
    cost on ``teacher_select_seeds`` training seeds of that scenario ("ilp" only on instances with
    at most ``ilp_max_binaries`` host x VNF pairs)."""
    if cfg.bc_teacher != "auto":
        return {sc.name: cfg.bc_teacher for sc in scenarios}
    base = TRAIN_SEED_BASE + cfg.seed * 100_000 + 90_000  # training range, apart from the episodes
    seeds = list(range(base, base + cfg.teacher_select_seeds))
    out = {}
    for sc in scenarios:
        pool = [p for p in cfg.teacher_pool if p != "ilp" or sc.n_hosts * sc.n_vnfs <= cfg.ilp_max_binaries]
        costs = {p: policy_cost(make_teacher(p), sc, seeds, cal) for p in pool}
        out[sc.name] = min(costs, key=lambda p: costs[p])
        log.info("teacher for %s: %s (%s)", sc.name, out[sc.name], {k: round(v, 1) for k, v in costs.items()})
    return out


def calibrate_noop_bias(cfg: TrainConfig, path: Path, cal: Calibration | None = None) -> float:
    """Pick the no-op logit bias of the checkpoint at ``path`` on the validation seeds; rewrite it.

    Every value of ``cfg.noop_bias_grid`` is scored like a checkpoint (geometric mean over the
    training scenarios of ``(cost + 1) / (best heuristic + 1)``); the checkpoint keeps its bias unless
    one scores strictly lower. The scores go to ``meta["noop_bias_scores"]``. Returns the bias kept.
    """
    cal = cal or load_calibration()
    net, meta = load_checkpoint(path)
    scenarios = [load_scenario(s) for s in cfg.scenarios]
    eval_seeds = list(range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + cfg.eval_seeds))
    reference = meta.get("validation_reference") or reference_costs(scenarios, eval_seeds, cal)
    base = net.cfg
    if "eval_score" in meta:
        scores = {base.noop_bias: float(meta["eval_score"])}
    else:
        scores = {base.noop_bias: evaluate_net(net, scenarios, eval_seeds, cal, reference)}
    for bias in cfg.noop_bias_grid:
        if bias in scores:
            continue
        net.cfg = replace(base, noop_bias=float(bias))
        scores[float(bias)] = evaluate_net(net, scenarios, eval_seeds, cal, reference)
        log.info("no-op bias %.2f: validation score %.3f", bias, scores[float(bias)])
    chosen = min(scores, key=lambda b: (scores[b], b != base.noop_bias))
    net.cfg = replace(base, noop_bias=chosen)
    meta.update(noop_bias_scores={str(k): v for k, v in scores.items()}, eval_score=scores[chosen])
    save_checkpoint(net, path, meta)
    log.info("no-op bias kept: %.2f (validation score %.3f)", chosen, scores[chosen])
    return chosen


def _minibatch(cfg: TrainConfig, sc: Scenario) -> int:
    return max(8, min(cfg.bc_minibatch, cfg.pair_budget // (sc.n_vnfs * sc.n_hosts)))


def label_weights(cfg: TrainConfig, teacher: Policy, batch: int) -> np.ndarray:
    """Sampling weight [batch] of the states the teacher has just labelled (its last ``decide`` on
    all ``batch`` environments): ``cfg.room_label_weight`` where a make-room teacher played a
    stuck-state move (:attr:`MakeRoomPolicy.last_stuck_moves`), 1 elsewhere and for other teachers."""
    w = np.ones(batch, dtype=np.float32)
    if isinstance(teacher, MakeRoomPolicy) and teacher.last_stuck_moves.shape == (batch,):
        w[teacher.last_stuck_moves] = cfg.room_label_weight
    return w


def sample_minibatch(cfg: TrainConfig, weights: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` buffer indices: uniform (``torch.randint``, the shipped model's draw) when
    ``cfg.room_label_weight`` is 1, else with replacement in proportion to ``weights`` [N]."""
    if cfg.room_label_weight == 1.0:
        return torch.randint(weights.shape[0], (n,), generator=gen)
    return torch.multinomial(weights, n, replacement=True, generator=gen)


def _dagger_episode(
    cfg: TrainConfig, net: ScoringNet, teacher: Policy, sc: Scenario, it: int, cal: Calibration
) -> tuple[TorchObs, torch.Tensor, torch.Tensor, float]:
    """One DAgger episode: mixed teacher/network rollout, every kept state labelled by the teacher.

    An expensive teacher (:data:`EXPENSIVE_TEACHERS`) is asked only where it drives the step and, of
    the network-driven steps, in a random ``expensive_label_fraction`` of them; only those states are
    kept. Returns the kept states, their teacher actions (network indexing, no-op = V), their
    sampling weights (:func:`label_weights`; a label the mask rejects becomes a no-op of weight 1) and
    the mean cost.
    """
    beta = max(0.0, 1.0 - it / max(cfg.dagger_beta_iterations, 1))
    sim = ClusterSim(sc, _episode_seeds(cfg, it), cal)
    teacher.reset(sim.B)
    rng = np.random.default_rng(cfg.seed * 1_000_003 + it)
    keep_p = min(1.0, cfg.store_pairs / (sc.n_vnfs * sc.n_hosts * sim.B * sc.steps))
    student = RlPolicy(net)
    expensive = teacher.name in EXPENSIVE_TEACHERS
    obs = sim.observe()
    states: list[TorchObs] = []
    labels: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    while not sim.done:
        mask = pair_mask(obs)
        if expensive:  # draw who follows the teacher first, then ask it only where needed
            use_t = rng.random(sim.B) < beta
            keep = rng.random(sim.B) < keep_p
            keep &= use_t | (rng.random(sim.B) < cfg.expensive_label_fraction)
            need = np.flatnonzero(use_t | keep)
            t_moves = np.tile(np.array([NOOP, 0], dtype=np.int64), (sim.B, 1))
            w_lab = np.ones(sim.B, dtype=np.float32)
            if need.size:
                t_moves[need] = teacher.decide(obs.take(need), mask[need])
                w_lab[need] = label_weights(cfg, teacher, need.size)
        else:  # the draw order of the shipped model's run (keep, then use_t), so it reproduces
            t_moves = teacher.decide(obs, mask)
            w_lab = label_weights(cfg, teacher, sim.B)
            keep = rng.random(sim.B) < keep_p
            use_t = rng.random(sim.B) < beta if beta < 1.0 else np.ones(sim.B, dtype=bool)
        teach = t_moves.copy()
        b = np.arange(sim.B)
        valid = (teach[:, 0] != NOOP) & mask[b, np.clip(teach[:, 0], 0, None), teach[:, 1]]
        teach[~valid] = (sim.V, 0)
        w_lab[~valid] = 1.0
        if keep.any():
            o = TorchObs.from_numpy(obs, mask)
            idx = torch.from_numpy(np.flatnonzero(keep))
            states.append(_take(o, idx))
            labels.append(torch.from_numpy(teach[keep]))
            weights.append(torch.from_numpy(w_lab[keep]))
        if beta >= 1.0:
            moves = t_moves
        else:
            s_moves = student.decide(obs, mask)
            moves = np.where(use_t[:, None], t_moves, s_moves)
        sim.step(moves)
        obs = sim.observe()
    return _cat(states), torch.cat(labels), torch.cat(weights), float(sim.metrics.cost(cal).mean())


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Run DAgger imitation (+ optional PPO); return the path of the best checkpoint."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    cal = load_calibration()
    scenarios = [load_scenario(s) for s in cfg.scenarios]
    net_cfg = NetConfig(cfg.hidden, trend=cfg.trend_features, room=cfg.room_features)
    net_cfg = replace(net_cfg, move_first=cfg.move_first)
    net = ScoringNet(net_cfg)
    if cfg.init_from:
        widen_into(net, load_checkpoint(Path(cfg.init_from))[0])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, eps=1e-5)
    out = Path(cfg.out)
    best_path = out.with_name(out.stem + "-best" + out.suffix)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    meta: dict[str, Any] = {"config": config}
    best = float("inf")
    eval_seeds = list(range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + cfg.eval_seeds))
    t0 = time.time()
    reference = reference_costs(scenarios, eval_seeds, cal)
    meta["validation_reference"] = reference
    log.info("validation reference (best heuristic cost): %s", {k: round(v, 1) for k, v in reference.items()})

    def checkpoint(iteration: int) -> None:
        nonlocal best
        score = evaluate_net(net, scenarios, eval_seeds, cal, reference)
        meta.update(iteration=iteration, eval_score=score, wall_s=round(time.time() - t0, 1))
        save_checkpoint(net, out, meta)
        log.info("iteration %d: validation score %.3f (%.0f s)", iteration, score, time.time() - t0)
        if score < best:
            best = score
            save_checkpoint(net, best_path, meta)

    teachers = pick_teachers(cfg, scenarios, cal) if cfg.bc_iterations else {}
    meta["teachers"] = teachers
    total = cfg.bc_iterations + cfg.iterations
    bar = tqdm(total=total, disable=not progress, desc="train", unit="it")

    # ---- 1. DAgger imitation of the (per-scenario) teacher ------------------------------------
    buffers: dict[str, list[tuple[TorchObs, torch.Tensor, torch.Tensor]]] = {}
    merged: dict[str, tuple[TorchObs, torch.Tensor, torch.Tensor]] = {}
    by_name = {sc.name: sc for sc in scenarios}
    gen = torch.Generator().manual_seed(cfg.seed * 31)
    for it in range(cfg.bc_iterations):
        sc = scenarios[it % len(scenarios)]
        frac = 1.0 - (1.0 - cfg.lr_final_frac) * it / max(cfg.bc_iterations - 1, 1)
        for group in opt.param_groups:
            group["lr"] = cfg.learning_rate * frac
        o_ep, a_ep, w_ep, ep_cost = _dagger_episode(cfg, net, make_teacher(teachers[sc.name]), sc, it, cal)
        n_room = int((w_ep != 1.0).sum())
        if n_room:
            log.info("iteration %d, %s: %d of %d labels weighted", it, sc.name, n_room, len(w_ep))
        buf = buffers.setdefault(sc.name, [])
        buf.append((o_ep, a_ep, w_ep))
        del buf[: -cfg.dagger_buffer]
        merged[sc.name] = (
            _cat([o for o, _, _ in buf]),
            torch.cat([a for _, a, _ in buf]),
            torch.cat([w for _, _, w in buf]),
        )
        names = sorted(merged)
        loss = torch.zeros(())
        for k in range(cfg.bc_steps):
            name = names[(it + k) % len(names)]
            o_all, a_all, w_all = merged[name]
            idx = sample_minibatch(cfg, w_all, _minibatch(cfg, by_name[name]), gen)
            _, logp, _, _ = net.act(_take(o_all, idx), a_all[idx])
            loss = -logp.mean()
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            opt.step()
        bar.set_postfix(phase="dagger", scen=sc.name, loss=f"{loss.item():.3f}", cost=f"{ep_cost:.0f}")
        bar.update(1)
        if (it + 1) % cfg.eval_every == 0 or it + 1 == cfg.bc_iterations:
            checkpoint(it + 1)

    # ---- 2. PPO ---------------------------------------------------------------------------------
    for group in opt.param_groups:
        group["lr"] = cfg.ppo_learning_rate
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
            checkpoint(cfg.bc_iterations + it + 1)
    if total == 0:
        checkpoint(0)
    bar.close()
    if cfg.noop_bias_grid:
        calibrate_noop_bias(cfg, best_path, cal)
    return best_path
