"""A failover whose promotion fails (the only secondary does not answer then) must not leave the
lease stuck: once the secondary answers again the FDU retakes the expired lease, promotes it and
re-steers the flow groups to it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

import pytest
from nfnet import wait_for
from ovsnet import FailoverPair

from nf.failover import DetectorConfig, FailoverOrchestrator, FailureDetector
from nf.store import keys as keyspace


@pytest.mark.netns
def test_unanswered_promotion_is_retried(failover_pair: Callable[[str], FailoverPair]) -> None:
    pair = failover_pair("rt")
    store, launcher, table = pair.store, pair.launcher, pair.table
    fdu: FailureDetector | None = None
    spid = 0
    try:
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
