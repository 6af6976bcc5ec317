"""THE observation: fixed per-entity feature sizes, correct utilisation, and one network for all sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from placement.observation import HOST_FEATURES, N_HOST_FEATURES, N_VNF_FEATURES, pair_mask
from placement.policies import NOOP
from placement.policies.rl import NetConfig, RlPolicy, ScoringNet, TorchObs, load_checkpoint, pair_stats
from placement.scenario import load_scenario
from placement.simulator import ClusterSim


def test_feature_sizes_do_not_depend_on_cluster_size() -> None:
    for name in ("diurnal-small", "scale-50x500"):
        sim = ClusterSim(load_scenario(name), [0])
        obs = sim.observe()
        assert obs.hosts.shape == (1, sim.H, N_HOST_FEATURES)
        assert obs.vnfs.shape == (1, sim.V, N_VNF_FEATURES)


def test_util_feature_is_load_over_capacity_from_current_placement() -> None:
    sim = ClusterSim(load_scenario("hetero-small"), [7])
    for _ in range(5):
        sim.step(np.array([[NOOP, 0]]))
    obs = sim.observe()
    util = obs.hosts[0, :, HOST_FEATURES.index("util_est")]
    expect = obs.host_load_pps[0] / obs.host_capacity_pps[0]
    assert np.allclose(util, expect, atol=1e-5)
    rates = obs.vnf_rate_pps[0]
    for h in range(sim.H):
        assert np.isclose(obs.host_load_pps[0, h], rates[obs.vnf_host[0] == h].sum())


def test_one_network_decides_on_4_and_50_hosts() -> None:
    pol = RlPolicy(ScoringNet(NetConfig(hidden=16)))
    for name in ("diurnal-small", "scale-50x500"):
        sim = ClusterSim(load_scenario(name), [0, 1])
        obs = sim.observe()
        mask = pair_mask(obs)
        moves = pol.decide(obs, mask)
        assert moves.shape == (2, 2)
        for b, (v, h) in enumerate(moves):
            assert v == NOOP or mask[b, v, h]  # masking: an untrained net still only picks feasible moves


def test_pair_stats_best_target_is_the_least_loaded_criterion() -> None:
    """The network's derived input ``best`` = min over feasible hosts of max(source after, target after)."""
    sim = ClusterSim(load_scenario("hetero-small"), [3])
    for _ in range(30):
        sim.step(np.array([[NOOP, 0]]))
    obs = sim.observe()
    mask = pair_mask(obs)
    st = pair_stats(TorchObs.from_numpy(obs, mask))
    util = obs.host_load_pps[0] / obs.host_capacity_pps[0]
    for v in range(sim.V):
        own = obs.vnf_host[0, v]
        src = util[own] - obs.vnf_rate_pps[0, v] / obs.host_capacity_pps[0, own]
        tgt = util + obs.vnf_rate_pps[0, v] / obs.host_capacity_pps[0]
        feas = np.flatnonzero(mask[0, v])
        expect = np.maximum(src, tgt[feas]).min() if feas.size else util[own]
        assert np.isclose(float(st.best[0, v]), expect, atol=1e-4)


def test_old_architecture_checkpoint_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    net = ScoringNet(NetConfig(hidden=8))
    path = tmp_path / "old.pt"
    torch.save({"net": {"hidden": 8}, "state_dict": net.state_dict(), "meta": {}}, path)
    with pytest.raises(ValueError, match="retrain"):
        load_checkpoint(path)
