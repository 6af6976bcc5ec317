"""The MILP (scipy.optimize.milp) finds the same optimum as brute-force enumeration on tiny instances."""

from __future__ import annotations

import numpy as np
import pytest

from placement.policies.ilp import brute_force, objective, solve


@pytest.mark.parametrize("seed", range(8))
def test_milp_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_v, n_h = int(rng.integers(3, 6)), int(rng.integers(2, 4))
    rates = rng.uniform(10, 70, n_v)
    caps = rng.uniform(60, 140, n_h)
    cur = rng.integers(0, n_h, n_v)
    milp_sol = solve(rates, caps, np.ones(n_h, bool), cur, np.zeros(n_v, bool))
    bf = brute_force(rates, caps, cur)
    assert milp_sol.optimal
    assert milp_sol.objective == pytest.approx(bf.objective, abs=1e-6)
    # the returned assignment really achieves the reported objective
    assert objective(milp_sol.hosts, rates, caps, cur, 0.8, 0.1, 0.02) == pytest.approx(
        bf.objective, abs=1e-6
    )


def test_pinned_vnf_stays_and_down_host_is_empty() -> None:
    rates = np.array([60.0, 50.0, 40.0, 30.0])
    caps = np.array([100.0, 100.0, 100.0])
    cur = np.array([0, 0, 1, 1])
    pinned = np.array([True, False, False, False])
    up = np.array([True, True, False])
    sol = solve(rates, caps, up, cur, pinned)
    assert sol.hosts[0] == 0
    assert not (sol.hosts == 2).any()
