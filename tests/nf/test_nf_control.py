"""The control API of an instance over its Unix socket and over TCP: status, metrics with DEFT's
set, and a clean shutdown. Runs on 127.0.0.1 (no namespaces)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nf.control import ControlClient, ControlError
from nf.metrics import COUNTERS

REPO = Path(__file__).resolve().parents[2]


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_control_over_unix_and_tcp_then_shutdown(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the instance's egress is a raw IP socket (needs root)")
    tcp = _free_port(socket.SOCK_STREAM)
    sock = str(tmp_path / "c.sock")
    cfg = {"name": "ctl-test", "data_ip": "127.0.0.1", "data_port": _free_port(), "dup_port": _free_port(),
           "repl_port": _free_port(socket.SOCK_STREAM), "control_socket": sock,
           "control_tcp": f"127.0.0.1:{tcp}", "nf": {"type": "firewall"}}
    path = tmp_path / "i.yml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "nf.instance", "--config", str(path)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        unix = ControlClient(sock)
        deadline = time.monotonic() + 20
        while True:
            try:
                st = unix.status()
                break
            except ControlError:
                assert proc.poll() is None and time.monotonic() < deadline, "instance did not start"
                time.sleep(0.1)
        assert st["instance"] == "ctl-test" and st["role"] == "primary" and st["epoch"] == 1
        with ControlClient(f"127.0.0.1:{tcp}") as over_tcp:
            m = over_tcp.metrics()
        for k in ("latency_ms", "throughput_Bps", "throughput_pps", "processed", "dropped",
                  "input_buffer_max", "output_buffer_max", "time_in_input_buffer_ms",
                  "time_in_output_buffer_ms", "processing_time_ms", "path_latency_ms", "commit_latency_ms"):
            assert k in m
        assert set(m["raw"]) == set(COUNTERS)
        assert unix.fence(5)["known_epoch"] == 5 and unix.status()["fenced"] is True
        unix.shutdown()
        unix.close()
        assert proc.wait(15) == 0
        assert not Path(sock).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
