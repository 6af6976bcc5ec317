"""Overload is not failure: the failure detector's heartbeat (``ping``, answered by the instance's
main process) keeps answering while the primary's worker is starved, so no failover happens; a
worker that makes no progress for ``stall_ms`` is a failure and is failed over.

The starved worker is SIGSTOPped (the extreme of a CPU-capped host: no CPU at all for a while).
Polling ``status`` - the old heartbeat, answered by the workers behind their packets - times out
during the same stop: on the lab a CPU-capped primary under a load shift missed 3 such heartbeats
and was failed over, then its successors too."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

import pytest
from conftest import worker_pids
from nfnet import wait_for
from ovsnet import FailoverPair

from nf.control import ControlClient, ControlError
from nf.failover import DetectorConfig, FailoverOrchestrator, FailureDetector

STALL_MS = 2500.0


@pytest.mark.netns
def test_starved_primary_is_not_failed_over_until_it_stalls(
    failover_pair: Callable[[str], FailoverPair],
) -> None:
    pair = failover_pair("bz")
    store, launcher, table, p = pair.store, pair.launcher, pair.table, pair.primary
    fdu: FailureDetector | None = None
    stopped: list[int] = []
    try:
        orch = FailoverOrchestrator(store, launcher, control_timeout_s=1.0)
        cfg = DetectorConfig(interval_ms=50, timeout_ms=100, miss_threshold=3, replace_secondary=False,
                             stall_ms=STALL_MS)
        fdu = FailureDetector(store, orch, cfg, service="nf").start()
        wait_for(lambda: fdu.heartbeats > 5, 10, "healthy heartbeats")
        ctl = ControlClient(p.control, timeout_s=1.0)
        main_pid = int(ctl.ping()["pid"])
        stopped = worker_pids(main_pid)
        assert len(stopped) == 1, stopped
        for w in stopped:
            os.kill(w, signal.SIGSTOP)
        t_stop = time.monotonic()
        beats = fdu.heartbeats
        time.sleep(1.5)
        # starved, not dead: still heartbeating, no failover, the data path's `status` does not answer
        assert not orch.reports, [r.error for r in orch.reports]
        assert fdu.heartbeats > beats + 10
        ping = ControlClient(p.control, timeout_s=0.5).ping()
        assert ping["workers_alive"] == 1 and 1000 < ping["progress_age_ms"] < STALL_MS
        with pytest.raises(ControlError):
            ControlClient(p.control, timeout_s=0.3).status()
        # a worker that stays stopped past stall_ms is hung: failed over to the secondary
        wait_for(lambda: bool(orch.reports), 15, "a failover of the stalled primary")
        assert time.monotonic() - t_stop >= STALL_MS / 1000
        rep = orch.reports[0]
        assert rep.error is None and rep.old_primary == "bz-p" and rep.new_primary == "bz-s"
        assert {e.primary.instance for e in table.entries("nf")} == {"bz-s"}
    finally:
        if fdu is not None:
            fdu.stop()
        for w in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGCONT)  # never leave a stopped process behind
