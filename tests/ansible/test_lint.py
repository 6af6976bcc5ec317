"""ansible-lint (production profile) and ansible-playbook --syntax-check are clean."""

from __future__ import annotations

import subprocess

import pytest

from deftctl.playbook import REPO_ROOT

pytestmark = [pytest.mark.slow]
PLAYBOOKS = ["site.yml", "playbooks/teardown.yml"]


def test_syntax_check() -> None:
    for pb in PLAYBOOKS:
        cp = subprocess.run(
            ["ansible-playbook", "-i", "inventory/example", "--syntax-check", pb],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        )
        assert cp.returncode == 0, f"{pb}: {cp.stdout[-2000:]}{cp.stderr[-2000:]}"


def test_ansible_lint_production() -> None:
    cp = subprocess.run(
        ["ansible-lint", "--profile", "production", "--nocolor", "-f", "pep8"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False,
    )
    assert cp.returncode == 0, f"ansible-lint:\n{cp.stdout[-4000:]}\n{cp.stderr[-2000:]}"
