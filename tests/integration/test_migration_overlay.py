"""Migration of the NF from nfv1 to nfv3 under traffic, by ``agent migrate`` run over SSH on the
source host (as the placement service does): 0 packets lost, 0 reordered, 0 duplicated at the
sink, and the target's per-flow state equals what the sink received."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import FLOW_GROUPS, HOST_A, HOST_C, PY, SERVICE, LabOps, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]

FLOWS, COUNT, RATE = 8, 15000, 1500
TARGET = "counter-mig1"


def test_migrate_under_traffic_loses_nothing(deployed_service: dict[str, Any], lab_ops: LabOps) -> None:
    prim = deployed_service["primary"]
    assert prim["host"] == HOST_A
    engine = json.dumps({"batch_size": 32, "batch_timeout_ms": 2.0, "buffer_size": 200})
    tgt = lab_ops.agent(
        HOST_C,
        "nf",
        "start",
        "-i",
        TARGET,
        "-t",
        "counter",
        "--service",
        SERVICE,
        "--set",
        "lease=counter-mig",
        "--set",
        "workers=1",
        "--set",
        f"flow_groups={FLOW_GROUPS}",
        "--set",
        f"engine={engine}",
        "--ready-timeout",
        "60",
    )
    assert tgt["alive"] and tgt["endpoint"]["host"] == HOST_C
    traffic = lab_ops.start_traffic(RATE, COUNT, FLOWS)
    try:
        # orchestration over SSH takes seconds on a loaded machine: move once every flow is live
        wait_for(lambda: len(lab_ops.flow_packets(prim["control"])) == FLOWS, 60, "every flow at the primary")
        out = lab_ops.ssh(
            HOST_A,
            f"{PY} -m agent migrate -i {prim['instance']} --to {HOST_C} "
            f"--target {TARGET} --service {SERVICE} --json",
        )
        rep = json.loads(out)
        # the moved flows: ours plus the traffic runner's overlay reachability probe
        assert rep["target"] == TARGET and rep["report"]["flows"] >= FLOWS, rep
    finally:
        summary = lab_ops.finish_traffic(traffic)
    assert summary["sent"] == COUNT
    assert summary["unique"] == COUNT and summary["loss"] == 0, summary
    assert summary["reordered"] == 0 and summary["duplicates"] == 0
    got = lab_ops.sink_flows(summary)
    assert lab_ops.flow_packets(tgt["endpoint"]["control"]) == {p: f["unique"] for p, f in got.items()}
    st = lab_ops.status()
    assert st["primary"]["instance"] == TARGET
