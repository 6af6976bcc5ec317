"""Every host of the lab provisioned by ``site.yml`` reports telemetry with the documented schema.

The agents run under the lab's supervisord (``roles/agent``) and write to the InfluxDB the
``influxdb`` role runs on the controller; this test reads it back from outside with the controller's
own contract file (``/etc/deft/telemetry.yml``), exactly as the placement service does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import TelemetryConfig
from agent.query import QueryClient
from deftctl.config import from_dict
from lab.lifecycle import host_run

pytestmark = [pytest.mark.lab, pytest.mark.netns, pytest.mark.slow]


def test_every_host_reports_with_the_schema(provisioned_lab: Any, lab_inventory: Path) -> None:
    assert provisioned_lab.returncode == 0, provisioned_lab.output[-3000:]
    inv = yaml.safe_load((lab_inventory / "hosts.yml").read_text())["all"]["children"]
    hosts = set(inv["nfv"]["hosts"]) | set(inv["traffic"]["hosts"])
    controller = next(iter(inv["controller"]["hosts"]))
    contract = yaml.safe_load(host_run(lab_inventory.name, controller, ["cat", "/etc/deft/telemetry.yml"]))
    qc = QueryClient(from_dict(TelemetryConfig, contract, source=f"{controller}:/etc/deft/telemetry.yml"))
    seen: set[str] = set()
    deadline = time.monotonic() + 90  # agents report every second once supervisord started them
    while time.monotonic() < deadline and seen != hosts:
        seen = {r["host"] for r in qc.rows('SELECT last("cpu_percent") FROM "host" GROUP BY "host"')}
        time.sleep(1)
    assert seen == hosts
    for measurement, field in (("nic", "rx_bytes"), ("agent", "collect_ms")):
        got = {r["host"] for r in qc.rows(f'SELECT last("{field}") FROM "{measurement}" GROUP BY "host"')}
        assert got == hosts, measurement
    assert qc.schema_problems() == []


def test_the_cli_runs_on_every_host(provisioned_lab: Any, lab_inventory: Path) -> None:
    """An operator on a server types ``deftctl ...``: the hosts' venv has the agent's packages only
    (no matplotlib), and the whole CLI tree must still load (it did not, until 2026-12-04)."""
    assert provisioned_lab.returncode == 0, provisioned_lab.output[-3000:]
    inv = yaml.safe_load((lab_inventory / "hosts.yml").read_text())["all"]["children"]
    for host in sorted(set(inv["nfv"]["hosts"]) | set(inv["traffic"]["hosts"])):
        out = host_run(lab_inventory.name, host, ["/opt/deft/venv/bin/deftctl", "nf", "--help"])
        assert "metrics" in out, host
