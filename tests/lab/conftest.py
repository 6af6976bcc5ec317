"""Fixtures for lab tests: a throw-away lab per test, always removed (``down --purge``) afterwards.

Lab names start with ``lt`` (this part's prefix) and use subnets 10.93-10.96 so they never collide
with the default lab (10.77/10.78) or the session test lab ``tlab`` (10.91/10.92).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab import lifecycle
from lab.config import LabConfig

MakeLab = Callable[..., LabConfig]


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[MakeLab]:
    """``make_lab(name, hosts)`` -> a LabConfig that is up; every lab made is purged at teardown."""
    made: list[LabConfig] = []

    def make(name: str = "ltx", hosts: int = 1, **kw: object) -> LabConfig:
        assert name.startswith("lt")
        cfg = LabConfig(
            name=name, hosts=hosts, mgmt_subnet="10.93.0.0/24", data_subnet="10.94.0.0/24",
            inventory_dir=tmp_path / f"inv-{name}", **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        lifecycle.down(cfg.name, purge=True, storage_root=cfg.storage_root)  # an interrupted run's leftover
        made.append(cfg)
        lifecycle.up(cfg)
        return cfg

    try:
        yield make
    finally:
        for cfg in made:
            lifecycle.down(cfg.name, purge=True, storage_root=cfg.storage_root)
