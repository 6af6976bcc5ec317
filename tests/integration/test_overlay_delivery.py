"""Packets of the client's traffic generator traverse stamper (client host) -> primary NF container
(nfv1) -> sink host over the VXLAN overlay and are all delivered, in order; the secondary container
on nfv2 receives the OVS-duplicated input, and the primary's per-flow counters equal what the sink
received."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FLOW_GROUPS, HOST_A, HOST_B, LabOps, total

from nf import burst

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FLOWS, COUNT, RATE = 8, 8000, 2000


def _expected_io() -> str:
    """``mmsg`` when this controller built nf._burst and its Python is the image's minor version
    (the docker role then puts the compiled module in the image's wheel), else ``python``."""
    defaults = yaml.safe_load((REPO / "roles/docker/defaults/main.yml").read_text())
    image_py = defaults["docker_image_python_version"]
    same = ".".join(str(image_py).split(".")[:2]) == f"{sys.version_info[0]}.{sys.version_info[1]}"
    return "mmsg" if burst.ACCELERATED and same else "python"


def test_traffic_crosses_stamper_primary_and_sink(deployed_service: dict[str, Any], lab_ops: LabOps) -> None:
    prim, sec = deployed_service["primary"], deployed_service["secondaries"][0]
    assert prim["host"] == HOST_A and sec["host"] == HOST_B
    # the pair are containers on br-int, started by the agents
    listed = {r["instance"]: r for r in lab_ops.agent(HOST_A, "nf", "list")}
    assert listed[prim["instance"]]["launcher"] == "docker" and listed[prim["instance"]]["alive"]
    # the image's workers use the compiled burst I/O when the controller could build it for them
    assert lab_ops.instance_call(prim["control"], "status")["io"] == _expected_io()
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
