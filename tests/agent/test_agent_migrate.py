"""``deftctl agent migrate`` moves an instance's flow groups to an instance on another host through
nf.migration (real NF instances, real Redis state store), and records the migration event."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import yaml

from agent import commands
from agent.config import load_agent
from agent.influxd import free_port
from agent.query import QueryClient
from deftctl.config import from_dict, to_dict
from nf.steering import Endpoint, SteeringEntry, SteeringTable
from nf.store import open_store


def test_migrate_moves_groups_and_repoints_steering(tmp_path: Path, influxdb_telemetry, redis_config,
                                                     write_agent_files, agent_cmd, cleanup_instances) -> None:
    store_yml = tmp_path / "statestore.yml"
    store_yml.write_text(yaml.safe_dump(to_dict(redis_config)))
    base = random.randrange(20000, 40000, 1000)
    confs = {}
    for i, host in enumerate(("ag-h1", "ag-h2")):
        path = write_agent_files(tmp_path / host, influxdb_telemetry, host=host, host_index=0,
                                 control_port_base=free_port(), port_base=base + 500 * i,
                                 statestore=str(store_yml), register_in_store=True, data_ip="127.0.0.1")
        confs[host] = (path, load_agent(path))
        cleanup_instances.append(confs[host][1])
    a = commands.nf_start(confs["ag-h1"][1], "ag-mig-a", "counter", service="ag-svc")
    b = commands.nf_start(confs["ag-h2"][1], "ag-mig-b", "counter", service="ag-svc")
    store = open_store(redis_config)
    table = SteeringTable(store)
    src = from_dict(Endpoint, a["endpoint"], "a")
    for g in range(4):
        table.put(SteeringEntry(service="ag-svc", group=str(g), primary=src, secondaries=(), epoch=1,
                                lease="ag-mig-a"))

    cp = subprocess.run(agent_cmd("migrate", "-i", "ag-mig-a", "--to", "ag-h2", "--flows", "1,2", "--json",
                                  "-c", str(confs["ag-h1"][0])),
                        capture_output=True, text=True, timeout=120, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    doc = json.loads(cp.stdout)
    assert doc["target"] == "ag-mig-b" and doc["report"]["groups"] == ["1", "2"]
    owners = {e.group: e.primary.instance for e in table.entries("ag-svc")}
    assert owners == {"0": "ag-mig-a", "1": "ag-mig-b", "2": "ag-mig-b", "3": "ag-mig-a"}
    assert b["endpoint"]["host"] == "ag-h2"
    rows = QueryClient(influxdb_telemetry).rows(
        "SELECT \"title\", \"ok\", \"src_host\", \"dst_host\" FROM \"event\" WHERE \"kind\" = 'migration'")
    assert [(r["ok"], r["src_host"], r["dst_host"]) for r in rows] == [(True, "ag-h1", "ag-h2")]


def test_stopped_instance_is_no_longer_a_target(tmp_path: Path, influxdb_telemetry, redis_config,
                                                write_agent_files, cleanup_instances) -> None:
    """``nf stop`` drops the instance from the store's registry: a later ``migrate --to`` that host
    finds only the live instance there (a stale entry made it refuse: 'need exactly one')."""
    store_yml = tmp_path / "statestore.yml"
    store_yml.write_text(yaml.safe_dump(to_dict(redis_config)))
    path = write_agent_files(tmp_path / "ag-h3", influxdb_telemetry, host="ag-h3", host_index=0,
                             control_port_base=free_port(), port_base=random.randrange(40000, 50000, 1000),
                             statestore=str(store_yml), register_in_store=True, data_ip="127.0.0.1")
    conf = load_agent(path)
    cleanup_instances.append(conf)
    commands.nf_start(conf, "ag-old", "counter", service="ag-svc2")
    commands.nf_start(conf, "ag-new", "counter", service="ag-svc2")
    commands.nf_stop(conf, "ag-old")
    store = open_store(redis_config)
    assert store.get("instance/ag-old") is None and store.get("instance/ag-new") is not None
    assert commands._target_endpoint(store, "ag-h3", None, "x").instance == "ag-new"
