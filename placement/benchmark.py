"""Speed measurements of the placement stack.

Reported by ``deftctl placement bench`` and ``bench/placement_sim.py``; never asserted in tests.

* :func:`sim_steps_per_s`: environment-steps per second of the vectorised simulator, including
  building the observation every step (what training and evaluation pay); a no-op policy so only the
  simulator is timed.
* :func:`decision_latency_ms`: wall time of one live decision on a large cluster: observation build +
  feasibility mask + RL forward pass, batch of one, as ``placement serve`` does it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from placement.observation import build_observation, pair_mask
from placement.policies import make_policy, noop_moves
from placement.policies.lookahead import DEFAULT_LOOKAHEAD, LookaheadConfig
from placement.scenario import load_scenario
from placement.simulator import ClusterSim


def sim_steps_per_s(scenario: str = "diurnal-small", batch: int = 1024) -> tuple[float, float]:
    """Env-steps per wall second and per CPU second over one episode of ``batch`` environments.

    Observation building is included. The CPU-second figure is what the simulator achieves on an
    idle core; the wall figure is what it achieved on this (possibly shared) machine.
    """
    sim = ClusterSim(load_scenario(scenario), list(range(batch)))
    moves = noop_moves(batch)
    t0, c0 = time.perf_counter(), time.process_time()
    while not sim.done:
        sim.step(moves)
        sim.observe()
    n = batch * sim.T
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def decision_latency_ms(
    scenario: str = "scale-50x500",
    model: Path | None = None,
    rounds: int = 50,
    lookahead: LookaheadConfig | None = DEFAULT_LOOKAHEAD,
) -> dict[str, float]:
    """Median / p99 ms of snapshot -> observation -> mask -> RL decision (with ``lookahead``'s
    search if given) for one cluster."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    sim = ClusterSim(load_scenario(scenario), [0])
    pol = make_policy("rl", model=model, lookahead=lookahead)
    for _ in range(20):  # advance into the episode so the load is realistic
        sim.step(noop_moves(1))
    times, cpu = [], []
    for _ in range(rounds):
        snap = sim.snapshot()
        t0, c0 = time.perf_counter(), time.process_time()
        obs = build_observation(snap)
        pol.decide(obs, pair_mask(obs))
        times.append(1e3 * (time.perf_counter() - t0))
        cpu.append(1e3 * (time.process_time() - c0))
    return {
        "median_ms": float(np.median(times)),
        "p99_ms": float(np.percentile(times, 99)),
        "median_cpu_ms": float(np.median(cpu)),  # CPU time: what it costs when the host is not shared
    }
