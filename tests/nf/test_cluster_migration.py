"""Cluster-based replication: members of a cluster replicate each other, so a move of flow groups
inside the cluster ships only the delta (no snapshot/pre-copy) and still loses and reorders nothing.
Input copies to the target come from real OVS rules programmed from the steering table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nfnet import DEEP_ENGINE, SERVERS, seq_defects, wait_for
from ovsnet import OvsNFNet

from lab.netns import Topology
from nf import cluster
from nf.control import ControlClient
from nf.launcher import LaunchSpec, ProcessLauncher
from nf.migration import migrate_groups
from nf.steering import SteeringEntry, SteeringProgrammer, SteeringTable
from nf.store import open_store

GROUPS = 16


@pytest.fixture
def ovsnet(tmp_path: Path) -> Iterator[OvsNFNet]:
    with Topology("nc") as topo:
        net = OvsNFNet(topo, tmp_path)
        try:
            yield net
        finally:
            net.close()


@pytest.mark.netns
@pytest.mark.slow
def test_intra_cluster_move_ships_only_the_delta(ovsnet: OvsNFNet, tmp_path: Path) -> None:
    net = ovsnet
    store = open_store(net.statestore)
    launcher = ProcessLauncher(net.slots(), tmp_path / "inst", store=store)
    prog = SteeringProgrammer(store, net.switch, host_index=1, service="nf", interval_ms=20).start()
    try:
        eps = {}
        for i, host in enumerate(("h-p", "h-s", "h-b")):
            name = f"c1-m{i}"
            eps[name] = launcher.launch(LaunchSpec(name=name, lease=name, role="primary", flow_groups=GROUPS,
                                                   nf={"type": "counter"}, engine=DEEP_ENGINE), host=host)
            cluster.join(store, "c1", eps[name], eps)
        assert cluster.members(store, "c1") == ["c1-m0", "c1-m1", "c1-m2"]
        assert cluster.cluster_of(store, "c1-m2") == "c1"
        with ControlClient(eps["c1-m0"].control) as cc:
            peers = sorted(r["addr"] for r in cc.status()["workers"][0]["replicas"])
        assert peers == sorted(eps[n].repl_addr for n in ("c1-m1", "c1-m2"))

        table = SteeringTable(store)
        for g in range(GROUPS):  # m0 serves every group; its cluster peers hold its state
            table.put(SteeringEntry("nf", str(g), eps["c1-m0"], (), 1, "c1-m0"))
        net.stamper([], duplicate="ovs", flow_groups=GROUPS, statestore=str(net.statestore))
        sink, sink_out = net.sink("cl", 7000)
        sender, _ = net.send(f"{SERVERS[0]}:7000", flows=8, rate=2000, count=8000, wait=False, linger=0.5)
        time.sleep(1.5)
        rep = migrate_groups(store, "nf", range(GROUPS), eps["c1-m1"], target_secondaries=(), settle_ms=300)
        assert rep.delta_only and rep.precopy_ms == 0.0 and rep.flows == 8
        sender.wait(60)
        time.sleep(1.0)
        got = net.stop_read(sink, sink_out)["flows"]
        assert len(got) == 8
        for a, seqs in got.items():
            assert seqs == list(range(1000)), f"{a}: {seq_defects(seqs, 1000)}"
        wait_for(lambda: prog.last is not None and not prog.last.rules, 5, "no duplication after the move")
        assert cluster.leave(store, "c1", eps["c1-m2"], eps) == ["c1-m0", "c1-m1"]
        with ControlClient(eps["c1-m0"].control) as cc:
            peers = [r["addr"] for r in cc.status()["workers"][0]["replicas"]]
        assert eps["c1-m2"].repl_addr not in peers
    finally:
        prog.stop()
        launcher.close()
        store.close()
