"""Process priority for generators and sinks on busy hosts (the lab's 2 cores are shared).

Why also the autogroup: with ``CONFIG_SCHED_AUTOGROUP`` (Debian's default) the scheduler first
shares CPU between sessions ("autogroups": every SSH login, every ``setsid``), and a process's
nice value only ranks it inside its own session. A generator started over SSH therefore gets no
more CPU from ``nice -10`` alone; setting its autogroup's nice too (``/proc/self/autogroup``) does.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")


def set_priority(nice: int) -> None:
    """Set this process's (and its autogroup's) nice value, -20..19; a no-op for 0. Root below 0."""
    if not nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError as exc:
        raise PermissionError(f"nice {nice} needs root (CAP_SYS_NICE): {exc}") from exc
    with contextlib.suppress(OSError):  # no autogroups on this kernel: the process nice still applies
        AUTOGROUP.write_text(str(nice))
