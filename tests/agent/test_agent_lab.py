"""Provisioned by the real roles, every lab host's agent reports to InfluxDB with the documented schema.

A throw-away lab ``agl`` (1 NFV host + client + sink, subnets 10.83/10.84) gets ``playbooks/common.yml``
and ``playbooks/agent.yml``; InfluxDB runs on the controller at the lab's management bridge address
(what the controller host is for a real cluster). The telemetry contract file is written by a tiny
pre-play here because the influxdb role installs InfluxDB itself on the controller host, which this
test replaces with a private influxd. The second run of the agent playbook must change nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from agent.config import TelemetryConfig
from agent.influxd import InfluxdServer, free_port
from agent.query import QueryClient
from lab import lifecycle
from lab.config import LabConfig

REPO = Path(__file__).resolve().parents[2]
MGMT_GW = "10.83.0.1"


def _play(inv: Path, src: Path, *playbooks: str | Path) -> str:
    cmd = ["ansible-playbook", "-i", str(inv), *map(str, playbooks),
           "-e", "agent_launcher=process agent_collect_ovs=false agent_register_in_store=false",
           "-e", f"agent_repo_root={src}"]
    cp = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500, check=False)
    assert cp.returncode == 0, cp.stdout[-4000:] + cp.stderr[-2000:]
    return cp.stdout


@pytest.mark.lab
@pytest.mark.slow
def test_every_lab_host_reports_with_the_schema(tmp_path: Path) -> None:
    cfg = LabConfig(name="agl", hosts=1, mgmt_subnet="10.83.0.0/24", data_subnet="10.84.0.0/24",
                    inventory_dir=tmp_path / "inv")
    srv = None
    try:
        lifecycle.up(cfg)
        srv = InfluxdServer(tmp_path / "influx", http_port=free_port(), bind_host=MGMT_GW)
        srv.start()
        pre = tmp_path / "telemetry.yml"
        pre.write_text(yaml.safe_dump([{
            "name": "Telemetry contract (the controller's InfluxDB)", "hosts": "all", "gather_facts": False,
            "tasks": [{"name": "Write telemetry.yml", "ansible.builtin.copy": {
                "dest": "/etc/deft/telemetry.yml", "mode": "0644",
                "content": f"url: {srv.url}\nflavor: v1\ndatabase: deft\n"}}]}]))
        # The package is built from a snapshot: other work in this tree must not look like a change.
        src = tmp_path / "src"
        shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
            ".git", ".*_cache", ".ansible", "build", "__pycache__", "*.egg-info", "inventory", "tests"))
        _play(cfg.inventory_dir, src, REPO / "playbooks/common.yml", pre, REPO / "playbooks/agent.yml")
        qc = QueryClient(TelemetryConfig(url=srv.url, database="deft"))
        hosts = {"nfv1", "client", "sink"}
        deadline = time.monotonic() + 60
        seen: set[str] = set()
        while time.monotonic() < deadline and seen != hosts:
            seen = {r["host"] for r in qc.rows('SELECT last("cpu_percent") FROM "host" GROUP BY "host"')}
            time.sleep(1)
        assert seen == hosts
        for m, f in (("nic", "rx_bytes"), ("agent", "collect_ms")):
            assert {r["host"] for r in qc.rows(f'SELECT last("{f}") FROM "{m}" GROUP BY "host"')} == hosts
        assert qc.schema_problems() == []
        again = _play(cfg.inventory_dir, src, REPO / "playbooks/agent.yml")
        recap = re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", again, re.MULTILINE)
        changed = {m.group(1): int(m.group(2)) for m in recap}
        tasks = re.findall(r"TASK \[([^\]]+)\][^\n]*\n(?:[^\n]*\n)?changed:", again)
        assert changed == dict.fromkeys(hosts, 0), f"the agent playbook is not idempotent: {tasks}"
    finally:
        if srv is not None:
            srv.stop()
        lifecycle.down(cfg.name, purge=True, storage_root=cfg.storage_root)
