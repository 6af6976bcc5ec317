"""The lab's machine-wide socket buffers (lab.rootns): raised where lower, restored exactly.

Why a user notices: with the kernel's 212992-byte default, the userspace OVS datapath's AF_PACKET
sockets overflow under a 50 kpps burst on a loaded machine and packets vanish without any port
counter showing it (tests/traffic/test_traffic_lab.py is the end-to-end check)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab import rootns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="machine-wide sysctls need root")

KEY = "net.core.rmem_default"
PATH = Path("/proc/sys/net/core/rmem_default")


def test_raised_then_restored_exactly() -> None:
    saved = PATH.read_text().strip()
    try:
        PATH.write_text("212992\n")
        with rootns.socket_buffers_raised() as before:
            assert before[KEY] == "212992"
            assert int(PATH.read_text()) == rootns.SOCKET_BUFFER_SYSCTLS[KEY]
        assert PATH.read_text().strip() == "212992"
    finally:
        PATH.write_text(saved + "\n")


def test_never_lowered() -> None:
    saved = PATH.read_text().strip()
    higher = rootns.SOCKET_BUFFER_SYSCTLS[KEY] * 2
    try:
        PATH.write_text(f"{higher}\n")
        with rootns.socket_buffers_raised() as before:
            assert KEY not in before
            assert int(PATH.read_text()) == higher
        assert int(PATH.read_text()) == higher
    finally:
        PATH.write_text(saved + "\n")
