"""`ansible-playbook site.yml` provisions a fresh lab, and a second run changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from deftctl.playbook import PlaybookRun, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.netns, pytest.mark.slow]
log = logging.getLogger(__name__)


def test_site_succeeds_on_every_host(provisioned_lab: PlaybookRun) -> None:
    assert provisioned_lab.returncode == 0, provisioned_lab.tail()
    assert {"nfv1", "nfv2", "nfv3", "client", "sink"} <= set(provisioned_lab.recap)
    bad = {h: r for h, r in provisioned_lab.recap.items() if r.failed or r.unreachable}
    assert not bad, f"failed/unreachable hosts: {bad}"
    log.info("site.yml from scratch: %.1f s", provisioned_lab.wall_s)


def test_second_run_changes_nothing(provisioned_lab: PlaybookRun, lab_inventory: Path) -> None:
    assert provisioned_lab.returncode == 0, provisioned_lab.tail()
    again = run_playbook(lab_inventory, "site.yml")
    log.info("site.yml re-run: %.1f s", again.wall_s)
    assert again.ok, again.tail()
    changed = again.changed_hosts
    assert not changed, f"re-run changed something: {changed}; {again.changed_lines[:20]}"
