"""Per-flow checkpoints in the store let another host rebuild an instance: after the only instance
of a group dies, a fresh instance on another host imports the checkpoint and continues counting
exactly where the checkpoint left off."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nfnet import DEEP_ENGINE, NF_IPS, SERVERS, NFNet, instance_packets
from ovsnet import root_store

from nf.checkpoint import Checkpointer, read_checkpoint, rebuild
from nf.launcher import HostSlot, LaunchSpec, ProcessLauncher
from nf.steering import SteeringEntry, SteeringTable
from nf.store import StoreConfig, open_store

GROUPS = 16


@pytest.mark.netns
@pytest.mark.slow
def test_rebuild_from_checkpoint_on_another_host(nfnet: NFNet, tmp_path: Path) -> None:
    net = nfnet
    srv, yml = root_store(net, tmp_path)
    store = open_store(StoreConfig(backend="redis", endpoints=(srv.endpoint,)))
    slots = [HostSlot("h1", 1, NF_IPS["p"], ns=net.ns["p"]), HostSlot("h2", 2, NF_IPS["s"], ns=net.ns["s"])]
    launcher = ProcessLauncher(slots, tmp_path / "inst", store=store)
    try:
        spec = LaunchSpec(name="cnt-a", lease="cnt", role="primary", flow_groups=GROUPS,
                          nf={"type": "counter"}, engine=DEEP_ENGINE)
        a = launcher.launch(spec, host="h1")
        table = SteeringTable(store)
        for g in range(GROUPS):
            table.put(SteeringEntry("nf", str(g), a, (), 1, "cnt"))
        net.stamper([], duplicate="stamper", flow_groups=GROUPS, statestore=str(yml))
        sink, sink_out = net.sink("ck", 7000)
        net.send(f"{SERVERS[0]}:7000", flows=4, rate=2000, count=800, linger=0.3)
        time.sleep(0.5)
        ck = Checkpointer(store, "cnt", a.control)
        assert ck.once() == (4, 0)
        assert ck.once() == (0, 0)  # nothing changed: nothing rewritten
        before = instance_packets(a.control)
        assert sorted(before.values()) == [200, 200, 200, 200]
        assert len(read_checkpoint(store, "cnt")["flows"]) == 4

        launcher.kill("cnt-a")  # the only instance of the group is gone
        b = launcher.launch(LaunchSpec(name="cnt-b", lease="cnt", role="primary", epoch=2, flow_groups=GROUPS,
                                       nf={"type": "counter"}, engine=DEEP_ENGINE), host="h2")
        assert rebuild(store, "cnt", b.control) == 4
        assert instance_packets(b.control) == before
        table.repoint("nf", range(GROUPS), b, (), 2, lease="cnt")
        time.sleep(0.5)  # the stamper follows the steering table
        net.send(f"{SERVERS[0]}:7000", flows=4, rate=2000, count=400, linger=0.3)  # same flows continue
        time.sleep(0.5)
        assert instance_packets(b.control) == {addr: n + 100 for addr, n in before.items()}
        got = net.stop_read(sink, sink_out)["flows"]
        assert sorted(len(v) for v in got.values()) == [300, 300, 300, 300]
    finally:
        launcher.close()
        store.close()
        srv.stop()
