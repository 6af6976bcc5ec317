"""Ansible works unchanged against the generated inventory (session lab from tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lab.config import REPO_ROOT

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def _ansible(inv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ansible", "-i", str(inv), "all", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT,
        env=os.environ | {"ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
    )  # fmt: skip


def _per_host(cp: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # the json callback's document; callbacks enabled in ansible.cfg (profile_tasks) may print around it
    start = cp.stdout.index("{") if cp.stdout.startswith("{") else cp.stdout.index("\n{") + 1
    data, _ = json.JSONDecoder().raw_decode(cp.stdout[start:])
    return {h: r for play in data["plays"] for task in play["tasks"] for h, r in task["hosts"].items()}


def test_ping_every_host(lab_inventory: Path) -> None:
    res = _per_host(_ansible(lab_inventory, "-m", "ping"))
    assert sorted(res) == ["client", "nfv1", "nfv2", "nfv3", "sink"]
    assert all(r["ping"] == "pong" for r in res.values())


def test_setup_sees_each_hosts_own_hostname(lab_inventory: Path) -> None:
    res = _per_host(_ansible(lab_inventory, "-m", "setup", "-a", "filter=ansible_hostname"))
    assert {h: r["ansible_facts"]["ansible_hostname"] for h, r in res.items()} == {h: h for h in res}  # type: ignore[index]
