"""Packets of the client's traffic generator traverse stamper (client host) -> primary NF container
(nfv1) -> sink host over the VXLAN overlay and are all delivered, in order; the secondary container
on nfv2 receives the OVS-duplicated input, and the primary's per-flow counters equal what the sink
received."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FLOW_GROUPS, HOST_A, HOST_B, LabOps, total

pytestmark = [pytest.mark.lab, pytest.mark.slow]

FLOWS, COUNT, RATE = 8, 8000, 2000


def test_traffic_crosses_stamper_primary_and_sink(deployed_service: dict[str, Any], lab_ops: LabOps) -> None:
    prim, sec = deployed_service["primary"], deployed_service["secondaries"][0]
    assert prim["host"] == HOST_A and sec["host"] == HOST_B
    # the pair are containers on br-int, started by the agents
    listed = {r["instance"]: r for r in lab_ops.agent(HOST_A, "nf", "list")}
    assert listed[prim["instance"]]["launcher"] == "docker" and listed[prim["instance"]]["alive"]
    before = lab_ops.instance_call(sec["control"], "metrics")

    summary = lab_ops.finish_traffic(lab_ops.start_traffic(RATE, COUNT, FLOWS))

    assert summary["sent"] == COUNT
    assert summary["unique"] == COUNT and summary["loss"] == 0, summary
    assert summary["reordered"] == 0 and summary["duplicates"] == 0
    got = lab_ops.sink_flows(summary)
    assert len(got) == FLOWS
    # the primary counted exactly what the sink received, per flow
    assert lab_ops.flow_packets(prim["control"]) == {p: f["unique"] for p, f in got.items()}
    # the secondary got the duplicated input (OVS rule on the client's br-int) and the deltas
    after = lab_ops.instance_call(sec["control"], "metrics")
    assert total(after, "received") - total(before, "received") >= COUNT
    assert lab_ops.flow_packets(sec["control"]) == {p: f["unique"] for p, f in got.items()}
    # steering covers every flow group, all on the primary
    assert lab_ops.status()["running"] and len(lab_ops.steering()) == FLOW_GROUPS
