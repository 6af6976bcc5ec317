"""Fixtures of the NF data-plane tests: a namespace network per test (removed even on failure)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from nfnet import NFNet
from ovsnet import FailoverPair
from ovsnet import failover_pair as start_failover_pair

from lab.netns import Topology
from nf.control import ControlClient, ControlError

REPO = Path(__file__).resolve().parents[2]


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, raw sockets, TUN)")


@pytest.fixture
def nfnet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NFNet]:
    _need_root()
    tag = f"{abs(hash(request.node.name)) % 1000:03d}"
    with Topology(f"ne{tag}") as topo:
        net = NFNet(topo, tmp_path, instances=getattr(request, "param", ("p", "s")))
        try:
            yield net
        finally:
            net.close()


@pytest.fixture
def nfnet3(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NFNet]:
    _need_root()
    tag = f"{abs(hash(request.node.name)) % 1000:03d}"
    with Topology(f"ne{tag}") as topo:
        net = NFNet(topo, tmp_path, instances=("p", "s", "b"))
        try:
            yield net
        finally:
            net.close()


@pytest.fixture
def failover_pair(nfnet3: NFNet, tmp_path: Path) -> Iterator[Callable[[str], FailoverPair]]:
    """``failover_pair(lease)``: :func:`ovsnet.failover_pair` on ``nfnet3``, stopped after the test
    (also when it fails), before the network is removed."""
    with contextlib.ExitStack() as stack:
        yield lambda lease: stack.enter_context(start_failover_pair(nfnet3, tmp_path, lease))


@dataclass(frozen=True)
class LocalInstance:
    """An instance process on 127.0.0.1 (no namespaces): its process, control socket and TCP port."""

    proc: subprocess.Popen[bytes]
    unix: str
    tcp: str


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def local_instance(tmp_path: Path) -> Iterator[Callable[[str, str], LocalInstance]]:
    """``local_instance(name, nf_type)``: start ``python -m nf.instance`` on 127.0.0.1 with a Unix
    and a TCP control endpoint and wait until it answers; killed after the test (also on failure,
    and continued first should a test have stopped it)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, nf_type: str = "counter") -> LocalInstance:
        if os.geteuid() != 0:
            pytest.skip("the instance's egress is a raw IP socket (needs root)")
        tcp = f"127.0.0.1:{_free_port(socket.SOCK_STREAM)}"
        unix = str(tmp_path / f"{name}.sock")
        cfg = {"name": name, "data_ip": "127.0.0.1", "data_port": _free_port(), "dup_port": _free_port(),
               "repl_port": _free_port(socket.SOCK_STREAM), "control_socket": unix,
               "control_tcp": tcp, "nf": {"type": nf_type}}
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump(cfg))
        proc = subprocess.Popen([sys.executable, "-m", "nf.instance", "--config", str(path)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 20
        while True:
            try:
                with ControlClient(unix, timeout_s=2.0) as c:
                    c.ping()
                return LocalInstance(proc, unix, tcp)
            except ControlError:
                assert proc.poll() is None and time.monotonic() < deadline, f"instance {name} did not start"
                time.sleep(0.1)

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                for pid in [proc.pid, *worker_pids(proc.pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
                proc.kill()
                proc.wait()


def proc_state(pid: int, tid: int | None = None) -> str | None:
    """The scheduler state letter of process ``pid`` (or of its thread ``tid``) from
    ``/proc/.../stat`` (R, S, D, T, t, Z...), or None when it is gone. The field after the last
    ``)``: the command name before it may itself hold spaces and parentheses."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        return Path(path).read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


def wait_stopped(pid: int, timeout_s: float = 5.0) -> None:
    """Until every thread of ``pid`` is stopped (state T) after a SIGSTOP. Why: the signal reaches
    the threads asynchronously, and a control request sent at once was still answered in 2 of 14
    runs of tests/nf/test_heartbeat_close.py."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = [proc_state(pid, int(t.name)) for t in Path(f"/proc/{pid}/task").iterdir()]
        if all(st in ("T", "t", None) for st in states):
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} did not stop within {timeout_s:g} s")


def worker_pids(main_pid: int) -> list[int]:
    """The worker processes of the instance whose main process is ``main_pid`` (its children)."""
    try:
        return [int(k) for k in Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()]
    except OSError:
        return []
