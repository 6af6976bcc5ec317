"""The control API of an instance over its Unix socket and over TCP: status, metrics with DEFT's
set, and a clean shutdown. Runs on 127.0.0.1 (no namespaces)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import LocalInstance

from nf.control import ControlClient
from nf.metrics import COUNTERS


def test_control_over_unix_and_tcp_then_shutdown(local_instance: Callable[[str, str], LocalInstance]) -> None:
    inst = local_instance("ctl-test", "firewall")
    unix = ControlClient(inst.unix)
    st = unix.status()
    assert st["instance"] == "ctl-test" and st["role"] == "primary" and st["epoch"] == 1
    with ControlClient(inst.tcp) as over_tcp:
        m = over_tcp.metrics()
    for k in ("latency_ms", "throughput_Bps", "throughput_pps", "processed", "dropped",
              "input_buffer_max", "output_buffer_max", "time_in_input_buffer_ms",
              "time_in_output_buffer_ms", "processing_time_ms", "path_latency_ms", "commit_latency_ms"):
        assert k in m
    assert set(m["raw"]) == set(COUNTERS)
    assert unix.fence(5)["known_epoch"] == 5 and unix.status()["fenced"] is True
    unix.shutdown()
    unix.close()
    assert inst.proc.wait(15) == 0
    assert not Path(inst.unix).exists()
