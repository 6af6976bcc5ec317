"""A slow instance is not a dead one: what the control API does when answers come late.

On the lab, a primary capped at 0.05 CPU answered its failure detector's pings 15-36 ms late
(median) and up to 480 ms late under a load shift. When the client reconnected after every
timeout, each retry cost the starved main process an accept and a new handler thread, the port
stopped accepting, and the detector failed a live primary over. The processes here are stopped
with SIGSTOP (no CPU at all, the extreme of a cap) and resumed; runs on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
from conftest import LocalInstance, wait_stopped, worker_pids

from nf.control import ControlClient, ControlError


def _established(tcp: str) -> int:
    """Established TCP connections to the instance's control port (server side)."""
    port = tcp.rpartition(":")[2]
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_late_answer_keeps_the_connection_and_is_skipped(
    local_instance: Callable[[str, str], LocalInstance],
) -> None:
    inst = local_instance("slow-ctl", "counter")
    with ControlClient(inst.tcp, timeout_s=0.2) as c:
        main = int(c.ping()["pid"])
        before = c.last_answer_at
        os.kill(main, signal.SIGSTOP)
        try:
            wait_stopped(main)
            with pytest.raises(ControlError, match="timed out") as err:
                c.status()
            assert isinstance(err.value.__cause__, TimeoutError)
        finally:
            os.kill(main, signal.SIGCONT)
        # the status answer arrives late and is skipped: this call gets its own (ping) answer
        c.timeout_s = 5.0
        beat = c.ping()
        assert "progress_age_ms" in beat and "role" not in beat
        assert c.last_answer_at is not None and before is not None and c.last_answer_at > before
        assert _established(inst.tcp) == 1  # one connection throughout, no reconnect


def test_concurrent_metrics_polls_share_one_worker_query(
    local_instance: Callable[[str, str], LocalInstance],
) -> None:
    inst = local_instance("slow-metrics", "counter")
    with ControlClient(inst.unix, timeout_s=5.0) as c:
        main = int(c.ping()["pid"])
    worker = worker_pids(main)[0]
    idle = _threads(main)
    pollers = 12
    answers: list[dict[str, object]] = []

    def poll() -> None:
        with ControlClient(inst.unix, timeout_s=20.0) as pc:
            answers.append(pc.metrics())

    os.kill(worker, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=poll) for _ in range(pollers)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while _threads(main) < idle + pollers and time.monotonic() < deadline:
            time.sleep(0.05)
        # one handler thread per poller, plus ONE thread asking the stopped worker (not one each)
        time.sleep(0.3)
        assert _threads(main) <= idle + pollers + 1, (_threads(main), idle)
    finally:
        os.kill(worker, signal.SIGCONT)
    for t in threads:
        t.join(30)
    assert len(answers) == pollers and all(a["instance"] == "slow-metrics" for a in answers)
