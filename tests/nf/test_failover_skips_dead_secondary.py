"""Double failure: primary and first secondary both die; the FDU skips the dead secondary (its
promotion fails), takes the lease over again and promotes the next secondary."""

from __future__ import annotations

from pathlib import Path

import pytest
from nfnet import BASE_ENGINE, NFNet, wait_for
from ovsnet import root_launcher

from nf.failover import DetectorConfig, FailoverOrchestrator, FailureDetector
from nf.launcher import LaunchSpec
from nf.steering import SteeringEntry, SteeringTable
from nf.store import keys as keyspace


@pytest.mark.netns
def test_next_secondary_is_promoted_when_the_first_is_dead(nfnet3: NFNet, tmp_path: Path) -> None:
    net = nfnet3
    srv, store, launcher = root_launcher(net, tmp_path, ("p", "s", "b"))
    fdu: FailureDetector | None = None
    try:
        epoch = store.acquire(keyspace.lease("df"), "df-p", 60_000)
        assert epoch == 1
        s1 = launcher.launch(LaunchSpec(name="df-s1", lease="df", role="secondary", nf={"type": "counter"},
                                        flow_groups=16, engine=BASE_ENGINE), host="h2")
        s2 = launcher.launch(LaunchSpec(name="df-s2", lease="df", role="secondary", nf={"type": "counter"},
                                        flow_groups=16, engine=BASE_ENGINE), host="h3")
        p = launcher.launch(LaunchSpec(name="df-p", lease="df", role="primary", nf={"type": "counter"},
                                       flow_groups=16, engine=BASE_ENGINE,
                                       replicas=(s1.repl_addr, s2.repl_addr)),
                            host="h1")
        table = SteeringTable(store)
        for g in range(4):
            table.put(SteeringEntry("nf", str(g), p, (s1, s2), epoch, "df"))
        launcher.kill("df-s1")
        launcher.kill("df-p")
        orch = FailoverOrchestrator(store, launcher)
        fdu = FailureDetector(store, orch, DetectorConfig(replace_secondary=False), service="nf").start()
        wait_for(lambda: bool(orch.reports), 15, "failover")
        rep = orch.reports[0]
        assert rep.error is None and rep.new_primary == "df-s2" and rep.epoch == 3  # s1's epoch 2 skipped
        lease = store.current(keyspace.lease("df"))
        assert lease is not None and lease.owner == "df-s2" and lease.epoch == 3
        assert {e.primary.instance for e in table.entries("nf")} == {"df-s2"}
        assert all(e.secondaries == () and e.epoch == 3 for e in table.entries("nf"))
    finally:
        if fdu is not None:
            fdu.stop()
        launcher.close()
        store.close()
        srv.stop()
