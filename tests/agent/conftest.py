"""Fixtures for agent tests: an agent config rooted in a tmp dir (state, spool, telemetry file).

Everything the agent writes (registry, spool, NF logs, status file) lives under ``tmp_path``, and
every NF instance a test starts is stopped at teardown, even when the test fails.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from agent import commands
from agent.config import AgentConfig, TelemetryConfig
from deftctl.config import to_dict


def _write_agent_files(root: Path, telemetry: TelemetryConfig, **overrides: object) -> Path:
    """Write telemetry.yml + agent.yml under ``root``; returns the agent.yml path."""
    root.mkdir(parents=True, exist_ok=True)
    tfile = root / "telemetry.yml"
    tfile.write_text(yaml.safe_dump(to_dict(telemetry)))
    conf: dict[str, object] = {
        "host": "ag-h1", "host_index": 1, "interval_s": 1.0, "telemetry_file": str(tfile),
        "state_dir": str(root / "state"), "spool_dir": str(root / "spool"),
        "collect_ovs": False,
    }
    conf.update(overrides)
    afile = root / "agent.yml"
    afile.write_text(yaml.safe_dump(conf))
    return afile


def _agent_cmd(*args: str) -> list[str]:
    """``deftctl agent ...`` through the interpreter running the tests (no PATH assumptions)."""
    return [sys.executable, "-m", "agent", *args]


WriteAgentFiles = Callable[..., Path]


@pytest.fixture
def write_agent_files() -> WriteAgentFiles:
    """``write_agent_files(root, telemetry, **agent_yml_overrides)`` -> path of agent.yml."""
    return _write_agent_files


@pytest.fixture
def agent_cmd() -> Callable[..., list[str]]:
    """``agent_cmd("nf", "list", ...)`` -> argv running ``deftctl agent ...``."""
    return _agent_cmd


@pytest.fixture
def cleanup_instances() -> Iterator[list[AgentConfig]]:
    """Register agent configs here; their NF instances are stopped at teardown."""
    confs: list[AgentConfig] = []
    yield confs
    for conf in confs:
        for rec in commands.nf_list(conf):
            with contextlib.suppress(commands.CommandError):
                commands.nf_stop(conf, rec["instance"], grace_s=2.0)
