"""Exogenous traces: a scenario + seeds -> per-step VNF rates, VNF activity and host availability.

Everything the placement policy cannot influence (offered load, arrivals/departures, host failures)
is drawn once per seed and stored as dense numpy arrays ``[batch, step, ...]``. The simulator then
only computes the endogenous part (placement, queues, latency) per step. Precomputing keeps the
simulator vectorised and makes "same seed => same world" true for every policy compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from placement.scenario import Scenario


@dataclass(frozen=True)
class Traces:
    """Dense traces for a batch of environments (one seed each)."""

    rates_pps: np.ndarray  # [B, T, V] float32 offered load per VNF (0 while inactive)
    active: np.ndarray  # [B, T, V] bool: VNF exists at this step
    host_up: np.ndarray  # [B, T, H] bool: host alive at this step
    host_capacity_pps: np.ndarray  # [H] float32 capacity (pps) of each host
    state_bytes: np.ndarray  # [V] float32 state size moved per migration (bytes)


def build_traces(sc: Scenario, seeds: Sequence[int]) -> Traces:
    """Draw the traces of ``sc`` for every seed in ``seeds`` (deterministic per seed)."""
    t_idx = np.arange(sc.steps, dtype=np.float64)
    time_s = t_idx * sc.step_s
    caps = np.array([g.capacity_pps for g in sc.hosts for _ in range(g.count)], dtype=np.float32)
    state = np.array([g.state_bytes for g in sc.vnfs for _ in range(g.count)], dtype=np.float32)
    rates = np.empty((len(seeds), sc.steps, sc.n_vnfs), dtype=np.float32)
    active = np.empty((len(seeds), sc.steps, sc.n_vnfs), dtype=bool)
    for b, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        rates[b], active[b] = _one_seed(sc, rng, time_s)
    host_up = np.ones((len(seeds), sc.steps, sc.n_hosts), dtype=bool)
    names = sc.host_names
    for f in sc.failures:
        h = names.index(f.host)
        down = time_s >= f.at_s
        if f.until_s >= 0:
            down &= time_s < f.until_s
        host_up[:, down, h] = False
    return Traces(rates, active, host_up, caps, state)


def _one_seed(sc: Scenario, rng: np.random.Generator, time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_v = sc.n_vnfs
    base = np.empty(n_v)
    arrive = np.empty(n_v)
    depart = np.empty(n_v)
    i = 0
    for g in sc.vnfs:
        sig = g.rate_spread
        base[i : i + g.count] = (
            g.rate_pps * rng.lognormal(-0.5 * sig * sig, sig, g.count) if sig else g.rate_pps
        )
        jit = rng.uniform(-g.arrival_spread_s, g.arrival_spread_s, g.count) if g.arrival_spread_s else 0.0
        arrive[i : i + g.count] = np.maximum(0.0, g.arrive_s + jit)
        depart[i : i + g.count] = (g.depart_s + jit) if g.depart_s >= 0 else np.inf
        i += g.count
    mult = np.ones((time_s.size, n_v))
    d = sc.diurnal
    if d.amplitude:
        phase = rng.uniform(0.0, d.phase_spread, n_v)
        mult *= 1.0 + d.amplitude * np.sin(2 * np.pi * (time_s[:, None] / d.period_s + phase[None, :]))
    dr = sc.drift
    if dr.sigma_per_sqrt_s:
        steps = rng.normal(0.0, dr.sigma_per_sqrt_s * np.sqrt(sc.step_s), (time_s.size, n_v))
        steps[0] = 0.0
        mult *= np.exp(np.cumsum(steps, axis=0))
    if dr.trend_per_hour:
        mult *= (1.0 + dr.trend_per_hour * time_s / 3600.0)[:, None]
    for f in sc.flash:
        hit = rng.random(n_v) < f.fraction
        ramp = max(f.ramp_s, 1e-9)
        up = np.clip((time_s - f.start_s) / ramp, 0.0, 1.0)
        down = np.clip((f.start_s + f.duration_s - time_s) / ramp, 0.0, 1.0)
        prof = 1.0 + (f.multiplier - 1.0) * np.minimum(up, down)
        mult[:, hit] *= prof[:, None]
    if sc.noise:
        mult *= np.clip(1.0 + sc.noise * rng.standard_normal((time_s.size, n_v)), 0.0, None)
    act = (time_s[:, None] >= arrive[None, :]) & (time_s[:, None] < depart[None, :])
    rates = np.where(act, base[None, :] * mult, 0.0)
    return rates.astype(np.float32), act
