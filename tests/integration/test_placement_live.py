"""``deftctl placement serve`` on the lab: reads the agents' real telemetry from the lab's InfluxDB,
proposes a move in a dry run, then carries it out over SSH under traffic with 0 packets lost.

The service runs on the controller host (nfv1) from the ``placement`` role's venv with a test config
derived from the role's ``/etc/deft/placement.yml``: nfv1 is declared a 1 000 pps host, so the
counter primary there (1 500 pps of test traffic) overloads it; the least-loaded heuristic moves it.
Hosts are listed nfv1, nfv3, nfv2 so that, of the two idle hosts, nfv3 (where the test started the
migration target) wins the tie; nfv2 holds the pair's secondary. The RL policy's dry-run proposal is
checked for shape only (which move it picks is the model's business).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from conftest import CONTROLLER, FLOW_GROUPS, HOST_A, HOST_B, HOST_C, PY, SERVICE, LabOps, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]

FLOWS, COUNT, RATE = 8, 30000, 1500
TARGET = "counter-pl1"
SERVE = "/opt/deft/placement-venv/bin/deftctl placement serve --once"
CONF = "/tmp/deft-test-placement.yml"
#: `host` tag of the test's own decision points (the role's deft-placement service keeps running
#: beside the test with the role's config and writes its own points every interval)
TAG = "test-placement"


def _write_config(ops: LabOps, policy: str) -> None:
    """The role's service config with a small nfv1, no hysteresis/rate limit, ``policy``, own tag."""
    cfg: dict[str, Any] = yaml.safe_load(ops.run(CONTROLLER, "cat", "/etc/deft/placement.yml"))
    by_name = {h["name"]: h for h in cfg["hosts"]}
    cfg["hosts"] = [by_name[HOST_A] | {"capacity_pps": 1000}, by_name[HOST_C], by_name[HOST_B]]
    cfg.update(policy=policy, window_s=4.0, min_gain=0.01, vnf_cooldown_s=1.0, min_gap_s=1.0,
               controller=TAG)
    ops.run(CONTROLLER, "sh", "-c", f"cat > {CONF} <<'EOF'\n{yaml.safe_dump(cfg)}EOF\n")


def _placement_rows(ops: LabOps, since_ms: int) -> list[dict[str, Any]]:
    out = ops.run(CONTROLLER, PY, "-m", "agent", "query",
                  f'SELECT * FROM "placement" WHERE "host" = \'{TAG}\' AND time > {since_ms}ms', "--json")
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def _nf_rate(ops: LabOps, instance: str) -> float:
    out = ops.run(CONTROLLER, PY, "-m", "agent", "query",
                  f'SELECT last("processed_pps") FROM "nf" WHERE "instance" = \'{instance}\' '
                  "AND time > now() - 5s", "--json")
    rows = json.loads(out)
    return float(rows[0]["last"]) if rows and rows[0].get("last") is not None else 0.0


def test_serve_moves_hot_nf_under_traffic(deployed_service: dict[str, Any], lab_ops: LabOps) -> None:
    prim = deployed_service["primary"]
    assert prim["host"] == HOST_A
    engine = json.dumps({"batch_size": 32, "batch_timeout_ms": 2.0, "buffer_size": 200})
    tgt = lab_ops.agent(HOST_C, "nf", "start", "-i", TARGET, "-t", "counter", "--service", SERVICE,
                        "--set", "lease=counter-pl", "--set", "workers=1",
                        "--set", f"flow_groups={FLOW_GROUPS}", "--set", f"engine={engine}",
                        "--ready-timeout", "60")
    assert tgt["alive"] and tgt["endpoint"]["host"] == HOST_C
    t0_ms = int(lab_ops.run(CONTROLLER, "date", "+%s%3N").strip())
    traffic = lab_ops.start_traffic(RATE, COUNT, FLOWS)
    try:
        wait_for(lambda: len(lab_ops.flow_packets(prim["control"])) == FLOWS, 60, "every flow at the primary")
        # the agents report every second: wait until the telemetry shows the primary under load
        wait_for(lambda: _nf_rate(lab_ops, prim["instance"]) > 0.8 * RATE, 30,
                 f"{prim['instance']} reporting ~{RATE} pps in InfluxDB")
        _write_config(lab_ops, "rl")
        lab_ops.run(CONTROLLER, "sh", "-c", f"{SERVE} --dry-run --config {CONF}")
        _write_config(lab_ops, "least-loaded")
        lab_ops.run(CONTROLLER, "sh", "-c", f"{SERVE} --config {CONF}", timeout_s=180)
    finally:
        summary = lab_ops.finish_traffic(traffic)
    rows = {r["policy"]: r for r in _placement_rows(lab_ops, t0_ms)}
    assert set(rows) == {"rl", "least-loaded"}, rows
    assert rows["rl"]["migrations"] == 0  # the dry run never moves
    moved = rows["least-loaded"]
    assert moved["migrations"] == 1, moved
    st = lab_ops.status()
    assert st["primary"]["instance"] == TARGET and st["primary"]["host"] == HOST_C, st
    assert summary["sent"] == COUNT
    assert summary["unique"] == COUNT and summary["loss"] == 0, summary
    assert summary["reordered"] == 0 and summary["duplicates"] == 0
    got = lab_ops.sink_flows(summary)
    assert lab_ops.flow_packets(tgt["endpoint"]["control"]) == {p: f["unique"] for p, f in got.items()}
