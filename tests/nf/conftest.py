"""Fixtures of the NF data-plane tests: a namespace network per test (removed even on failure)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from nfnet import NFNet

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
