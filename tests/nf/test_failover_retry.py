"""A failover whose promotion fails (the only secondary does not answer then) must not leave the
lease stuck: once the secondary answers again the FDU retakes the expired lease, promotes it and
re-steers the flow groups to it."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from nfnet import NFNet, wait_for
from ovsnet import root_launcher

from nf.failover import DetectorConfig, FailoverOrchestrator, FailureDetector
from nf.launcher import LaunchSpec
from nf.steering import SteeringEntry, SteeringTable
from nf.store import keys as keyspace

ENGINE = {"batch_size": 8, "batch_timeout_ms": 2.0}


@pytest.mark.netns
def test_unanswered_promotion_is_retried(nfnet3: NFNet, tmp_path: Path) -> None:
    net = nfnet3
    srv, store, launcher = root_launcher(net, tmp_path, ("p", "s"))
    fdu: FailureDetector | None = None
    spid = 0
    try:
        epoch = store.acquire(keyspace.lease("rt"), "rt-p", 60_000)
        s = launcher.launch(LaunchSpec(name="rt-s", lease="rt", role="secondary", nf={"type": "counter"},
                                       flow_groups=16, engine=ENGINE), host="h2")
        p = launcher.launch(LaunchSpec(name="rt-p", lease="rt", role="primary", nf={"type": "counter"},
                                       flow_groups=16, engine=ENGINE, replicas=(s.repl_addr,)), host="h1")
        table = SteeringTable(store)
        for g in range(4):
            table.put(SteeringEntry("nf", str(g), p, (s,), epoch, "rt"))
        spid = launcher.procs["rt-s"].pid
        os.killpg(spid, signal.SIGSTOP)  # the secondary cannot answer the first promotion
        launcher.kill("rt-p")
        orch = FailoverOrchestrator(store, launcher, control_timeout_s=1.0)
        fdu = FailureDetector(store, orch, DetectorConfig(replace_secondary=False), service="nf").start()
        wait_for(lambda: bool(orch.reports), 15, "the first failover attempt")
        assert orch.reports[0].error is not None and "promote rt-s" in orch.reports[0].error
        os.killpg(spid, signal.SIGCONT)
        wait_for(lambda: any(r.error is None for r in orch.reports), 20, "a completed failover")
        done = next(r for r in orch.reports if r.error is None)
        assert done.new_primary == "rt-s" and done.epoch > 2
        lease = store.current(keyspace.lease("rt"))
        assert lease is not None and lease.owner == "rt-s" and lease.epoch == done.epoch
        assert {e.primary.instance for e in table.entries("nf")} == {"rt-s"}
    finally:
        if fdu is not None:
            fdu.stop()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if spid:
                os.killpg(spid, signal.SIGCONT)  # never leave a stopped process behind
        launcher.close()
        store.close()
        srv.stop()
