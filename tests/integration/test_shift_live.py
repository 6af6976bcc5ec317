"""``deftctl placement shift`` on the lab (the README's main job): the same load shift for DEFT's
static placement and for least-loaded, each on a fresh deployment with the first NFV host capped at
0.02 CPU (ShiftConfig's default: a host the peak overloads). Static keeps the NF on the starved host
and loses packets; least-loaded moves it over SSH and loses fewer. The migration neither duplicates
nor reorders a packet, and the starved primary, slow but alive, is not failed over by the FDU (its
pings are answered late, not never: nf/failover.py ``DetectorConfig``).

Shorter than the default run (45 s of traffic, the shift at 10 s) to keep CI time down.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deftctl.playbook import PlaybookRun
from placement.shift import ShiftConfig, run_shift

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_least_loaded_loses_fewer_than_static(
    provisioned_lab: PlaybookRun, lab_inventory: Path, tmp_path: Path
) -> None:
    assert provisioned_lab.ok, "site.yml failed on the test lab"
    cfg = ShiftConfig(inventory=lab_inventory, policies=("static", "least-loaded"), shift_at_s=10.0,
                      duration_s=45.0, out=tmp_path / "shift")  # fmt: skip
    runs, report = run_shift(cfg)
    by = {r.policy: r for r in runs}
    assert not any(r.error for r in runs), {r.policy: r.error for r in runs}
    static, moved = by["static"], by["least-loaded"]
    for r in runs:
        assert r.sent > 0 and r.delivered + r.lost == r.sent, r
        # slow is not dead: no failover of the starved primary, so no duplicate and no reordering
        failovers = sum(c.get("failovers", 0) for c in r.instances.values())
        assert failovers == 0 and r.reordered == 0 and r.duplicates == 0, r
    # lost at the starved NF: its input buffer (NF drops) or, before it, its 256 KiB socket buffer
    assert not static.migrations and static.lost > 0, static
    assert len(moved.migrations) >= 1 and moved.migrations[0]["to"] != "nfv1", moved.migrations
    # issue #5's goal on the lab: at least 50 % fewer packets lost than DEFT static
    assert moved.lost <= 0.5 * static.lost, (moved.lost, static.lost)
    text = report.read_text()
    assert "| static |" in text and "| least-loaded |" in text and (report.parent / "shift.png").exists()
