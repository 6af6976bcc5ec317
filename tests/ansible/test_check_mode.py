"""`site.yml --check --diff` on a provisioned lab runs to the end without failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from deftctl.playbook import PlaybookRun, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.netns, pytest.mark.slow]


def test_check_mode_does_not_fail(provisioned_lab: PlaybookRun, lab_inventory: Path) -> None:
    assert provisioned_lab.returncode == 0, provisioned_lab.tail()
    check = run_playbook(lab_inventory, "site.yml", "--check", "--diff")
    assert check.ok, check.tail()
    assert check.recap, check.tail()
