"""ILP optimum for small instances (``scipy.optimize.milp``) and the policy that follows it.

The static problem solved from one observation: assign every active VNF to an up host, minimising

    sum_h max(0, util_h - threshold)  +  max_weight * max_h util_h  +  migration_weight * #moved

with ``util_h = sum_v rate_v x_vh / capacity_h``. The first term is the overload the composite cost
charges, the second breaks ties toward balance (head-room against the next load change), the third
makes a move pay for itself. VNFs that are mid-migration are pinned to their host.
:func:`brute_force` solves the same objective by enumeration (tests check the two agree).

The :class:`IlpPolicy` re-solves every step with the lagged observation and carries out one move
toward the optimum per step (the same one-move budget as every other policy): the largest-rate VNF
whose optimal host differs from its current one, preferring VNFs on the hottest host.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from placement.observation import Observation
from placement.policies.base import noop_moves


@dataclass(frozen=True)
class Assignment:
    """Result of one solve: host per VNF (index into the full host list), objective value."""

    hosts: np.ndarray  # [V] int; inactive VNFs keep their current host
    objective: float
    optimal: bool


def objective(
    assign: np.ndarray,
    rates: np.ndarray,
    caps: np.ndarray,
    current: np.ndarray,
    threshold: float,
    max_weight: float,
    migration_weight: float,
) -> float:
    """The ILP's objective for a given assignment (used by brute force and for checks)."""
    util = np.bincount(assign, weights=rates, minlength=caps.size) / caps
    moved = float(np.sum(assign != current))
    return float(np.maximum(util - threshold, 0).sum() + max_weight * util.max() + migration_weight * moved)


def solve(
    rates: np.ndarray,
    caps: np.ndarray,
    up: np.ndarray,
    current: np.ndarray,
    pinned: np.ndarray,
    threshold: float = 0.8,
    max_weight: float = 0.1,
    migration_weight: float = 0.02,
    time_limit_s: float = 5.0,
) -> Assignment:
    """Solve the placement MILP for active VNFs (``rates > 0`` or listed in ``current``).

    ``rates`` [V] pps (0 = inactive, kept in place), ``caps`` [H] pps, ``up`` [H] bool, ``current``
    [V] host index, ``pinned`` [V] bool (must stay). Down hosts get nothing.
    """
    hosts_up = np.flatnonzero(up)
    live = np.flatnonzero(rates > 0)
    nl, nu = live.size, hosts_up.size
    if nl == 0 or nu == 0:
        return Assignment(current.copy(), 0.0, True)
    # variables: x[i, j] (nl*nu binaries), e[j] (nu excess >= 0), u (1 max util)
    nx = nl * nu
    n = nx + nu + 1
    c = np.zeros(n)
    c[nx : nx + nu] = 1.0
    c[-1] = max_weight
    lb = np.zeros(n)
    ub = np.full(n, np.inf)
    ub[:nx] = 1.0
    for i, v in enumerate(live):  # staying put earns the migration weight back
        j_cur = np.flatnonzero(hosts_up == current[v])
        if j_cur.size:
            c[i * nu + int(j_cur[0])] = -migration_weight
    rows, lo, hi = [], [], []
    for i in range(nl):  # each live VNF on exactly one up host
        r = np.zeros(n)
        r[i * nu : (i + 1) * nu] = 1.0
        rows.append(r)
        lo.append(1.0)
        hi.append(1.0)
    for j, h in enumerate(hosts_up):
        load = np.zeros(n)
        load[j:nx:nu] = rates[live] / caps[h]
        r1 = load.copy()
        r1[nx + j] = -1.0  # util_j - e_j <= threshold
        rows.append(r1)
        lo.append(-np.inf)
        hi.append(threshold)
        r2 = load.copy()
        r2[-1] = -1.0  # util_j - u <= 0
        rows.append(r2)
        lo.append(-np.inf)
        hi.append(0.0)
    integ = np.zeros(n)
    integ[:nx] = 1
    # pinned VNFs: fix x to their current host
    for i, v in enumerate(live):
        if pinned[v] and up[current[v]]:
            j = int(np.flatnonzero(hosts_up == current[v])[0])
            ub[i * nu : (i + 1) * nu] = 0.0
            ub[i * nu + j] = 1.0
            lb[i * nu + j] = 1.0
    res = milp(
        c,
        constraints=LinearConstraint(np.array(rows), lo, hi),
        integrality=integ,
        bounds=Bounds(lb, ub),
        options={"time_limit": time_limit_s},
    )
    out = current.copy()
    if res.x is None:
        return Assignment(out, float("inf"), False)
    x = res.x[:nx].reshape(nl, nu)
    out[live] = hosts_up[x.argmax(axis=1)]
    obj = float(res.fun) + migration_weight * nl  # constant part of the migration term
    return Assignment(out, obj, bool(res.status == 0))


def brute_force(
    rates: np.ndarray,
    caps: np.ndarray,
    current: np.ndarray,
    threshold: float = 0.8,
    max_weight: float = 0.1,
    migration_weight: float = 0.02,
) -> Assignment:
    """Enumerate all H^V assignments (tiny instances only; all hosts up, nothing pinned)."""
    best: tuple[float, np.ndarray] | None = None
    for combo in itertools.product(range(caps.size), repeat=rates.size):
        a = np.array(combo, dtype=np.int64)
        val = objective(a, rates, caps, current, threshold, max_weight, migration_weight)
        if best is None or val < best[0] - 1e-12:
            best = (val, a)
    assert best is not None
    return Assignment(best[1], best[0], True)


class IlpPolicy:
    """Follow the per-step MILP optimum, one move per step (small instances: <= ~200 binaries fast)."""

    name = "ilp"

    def __init__(self, migration_weight: float = 0.02, max_weight: float = 0.1, time_limit_s: float = 2.0):
        self.migration_weight = migration_weight
        self.max_weight = max_weight
        self.time_limit_s = time_limit_s

    def reset(self, batch: int) -> None:
        del batch

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        out = noop_moves(obs.batch)
        for b in range(obs.batch):
            rates = np.where(obs.vnf_active[b], np.maximum(obs.vnf_rate_pps[b], 1e-6), 0.0)
            caps = obs.host_capacity_pps[b]
            sol = solve(
                rates,
                caps,
                obs.host_up[b],
                obs.vnf_host[b],
                ~obs.vnf_movable[b] & obs.vnf_active[b],
                obs.overload_threshold,
                self.max_weight,
                self.migration_weight,
                self.time_limit_s,
            )
            diff = np.flatnonzero((sol.hosts != obs.vnf_host[b]) & obs.vnf_movable[b])
            diff = diff[mask[b, diff, sol.hosts[diff]]]
            if diff.size == 0:
                continue
            util = obs.host_load_pps[b] / caps
            src_util = util[obs.vnf_host[b, diff]]
            key = src_util * 1e9 + obs.vnf_rate_pps[b, diff] / 1e3
            v = int(diff[np.argmax(key)])
            out[b] = (v, int(sol.hosts[v]))
        return out
