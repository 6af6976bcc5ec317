"""The simulator is deterministic by seed, seeds are independent, and batching changes nothing."""

from __future__ import annotations

import numpy as np

from placement.observation import pair_mask
from placement.policies import make_policy
from placement.scenario import load_scenario
from placement.simulator import ClusterSim


def _run(scenario: str, seeds: list[int], policy: str = "least-loaded") -> np.ndarray:
    sim = ClusterSim(load_scenario(scenario), seeds)
    pol = make_policy(policy)
    pol.reset(sim.B)
    obs = sim.observe()
    while not sim.done:
        sim.step(pol.decide(obs, pair_mask(obs)))
        obs = sim.observe()
    m = sim.metrics
    return np.stack([m.sla_s, m.drops_pkt, m.overload_s, m.migrations, m.migration_bytes])


def test_same_seed_same_outcome() -> None:
    a = _run("flash-small", [3, 4])
    b = _run("flash-small", [3, 4])
    assert np.array_equal(a, b)


def test_batch_equals_individual_runs() -> None:
    both = _run("failure-small", [11, 12])
    one = _run("failure-small", [11])
    two = _run("failure-small", [12])
    assert np.allclose(both[:, 0], one[:, 0]) and np.allclose(both[:, 1], two[:, 0])


def test_different_seeds_differ() -> None:
    out = _run("diurnal-small", [1, 2])
    assert not np.array_equal(out[:, 0], out[:, 1])


def test_static_never_migrates_and_failover_keeps_vnfs_on_up_hosts() -> None:
    sc = load_scenario("failure-small")
    sim = ClusterSim(sc, [0])
    pol = make_policy("static")
    obs = sim.observe()
    down = sc.host_names.index("h-2")
    while not sim.done:
        sim.step(pol.decide(obs, pair_mask(obs)))
        obs = sim.observe()
        if not obs.host_up[0, down]:
            assert not (obs.vnf_host[0] == down).any()
    assert sim.metrics.migrations[0] == 0
    assert sim.metrics.failovers[0] > 0
