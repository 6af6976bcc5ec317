"""An instance's workers never outlive its main process: kill -9 the main (a crashed or killed
instance, a container runtime that signals only PID 1) and every worker exits, releasing the data
ports for the instance that replaces it. Before, each worker kept a copy of the main's pipe end, never
saw EOF and ran on as an orphan (found as leftover processes after a CI run)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from conftest import LocalInstance, proc_state, worker_pids


def _alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z")


def test_workers_exit_when_the_main_process_is_killed(
    local_instance: Callable[[str, str], LocalInstance],
) -> None:
    inst = local_instance("orphan", "counter")
    workers = worker_pids(inst.proc.pid)
    assert workers, "the instance has no worker processes"
    os.kill(inst.proc.pid, signal.SIGKILL)
    inst.proc.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:  # never leave them behind, even when the assertion fails
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers {left} outlived their main process"
