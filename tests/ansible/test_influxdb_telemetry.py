"""The InfluxDB the `influxdb` role deploys accepts a write from every host of the lab (with the
credentials of that host's /etc/deft/telemetry.yml) and returns all of them through InfluxQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.lifecycle import host_run

pytestmark = [pytest.mark.lab, pytest.mark.netns, pytest.mark.slow]


def _lab(provisioned: Any, inventory: Path) -> tuple[str, Path]:
    """(lab name, inventory) of the lab site.yml provisioned; fails with the playbook's tail if it failed."""
    assert provisioned.returncode == 0, provisioned.output[-3000:]
    name = yaml.safe_load((inventory / "group_vars" / "all.yml").read_text())["deft_lab_name"]
    return name, inventory


def on_host(lab: str, host: str, *argv: str) -> str:
    return host_run(lab, host, list(argv))


def inventory_hosts(inventory: Path, group: str) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = yaml.safe_load((inventory / "hosts.yml").read_text())["all"][
        "children"
    ][group]["hosts"]
    return hosts


def _curl_auth(t: dict[str, Any]) -> list[str]:
    if t["flavor"] == "v2":
        return ["-H", f"Authorization: Token {t['token']}"]
    return ["-u", f"{t['user']}:{t['password']}"]


def test_write_from_every_host_and_query_back(provisioned_lab: Any, lab_inventory: Path) -> None:
    lab, inv = _lab(provisioned_lab, lab_inventory)
    hosts = list(yaml.safe_load((inv / "hosts.yml").read_text())["all"]["children"]["nfv"]["hosts"])
    hosts += list(yaml.safe_load((inv / "hosts.yml").read_text())["all"]["children"]["traffic"]["hosts"])
    measurement = f"test_{uuid.uuid4().hex[:12]}"
    contracts = {}
    for i, host in enumerate(hosts):
        t = yaml.safe_load(on_host(lab, host, "cat", "/etc/deft/telemetry.yml"))
        contracts[host] = t
        on_host(
            lab, host, "curl", "-sSf", "-XPOST", *_curl_auth(t),
            f"{t['url']}/write?db={t['database']}&precision=s",
            "--data-binary", f"{measurement},host={host} value={i + 1}i",
        )  # fmt: skip
    t = contracts[hosts[0]]
    out = on_host(
        lab, hosts[0], "curl", "-sSf", "-XPOST", *_curl_auth(t), f"{t['url']}/query",
        "--data-urlencode", f"db={t['database']}",
        "--data-urlencode", f'q=SELECT sum("value") FROM "{measurement}" GROUP BY "host"',
    )  # fmt: skip
    series = json.loads(out)["results"][0]["series"]
    got = {s["tags"]["host"]: s["values"][0][1] for s in series}
    assert got == {h: i + 1 for i, h in enumerate(hosts)}
