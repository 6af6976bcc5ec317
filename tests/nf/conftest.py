"""Fixtures of the NF data-plane tests: a namespace network per test (removed even on failure)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from nfnet import NFNet
from ovsnet import FailoverPair
from ovsnet import failover_pair as start_failover_pair

from lab.netns import Topology


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
