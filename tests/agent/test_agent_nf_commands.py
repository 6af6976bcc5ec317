"""NF lifecycle commands on the local-process launcher, with real NF instances (nf/instance.py)."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from agent import commands
from agent.collectors.nf import NfCollector
from agent.config import TelemetryConfig, load_agent
from agent.influxd import free_port
from agent.query import QueryClient
from agent.registry import Registry


@pytest.fixture
def agent_yml(tmp_path: Path, influxdb_telemetry, write_agent_files, cleanup_instances) -> Path:
    path = write_agent_files(tmp_path / "agent", influxdb_telemetry, control_port_base=free_port(),
                             port_base=random.randrange(20000, 40000, 1000))
    cleanup_instances.append(load_agent(path))
    return path


def _cli(agent_cmd, *args: str) -> tuple[int, dict | list]:
    cp = subprocess.run(agent_cmd(*args), capture_output=True, text=True, timeout=60, check=False)
    return cp.returncode, json.loads(cp.stdout)


def test_start_list_collect_stop(agent_yml: Path, influxdb_telemetry, agent_cmd) -> None:
    code, doc = _cli(agent_cmd, "nf", "start", "-i", "ag-c1", "-t", "counter", "--json", "-c", str(agent_yml),
                     "--set", "engine.batch_size=16", "--set", "workers=2")
    assert code == 0, doc
    assert isinstance(doc, dict) and doc["alive"] and doc["launcher"] == "process"
    pid = doc["pid"]
    assert psutil.Process(pid).is_running()
    inst_cfg = Path(doc["config_path"]).read_text()
    assert "batch_size: 16" in inst_cfg and "workers: 2" in inst_cfg
    code, listed = _cli(agent_cmd, "nf", "list", "--json", "-c", str(agent_yml))
    assert code == 0 and [(r["instance"], r["alive"]) for r in listed] == [("ag-c1", True)]

    conf = load_agent(agent_yml)
    points = NfCollector(conf.hostname, Registry(conf.state_dir)).collect(time.time_ns())
    assert len(points) == 1 and points[0].fields["up"] is True
    assert points[0].tags == {"host": "ag-h1", "instance": "ag-c1", "nf_type": "counter", "role": "primary"}
    assert points[0].fields["processed"] == 0

    code, doc = _cli(agent_cmd, "nf", "stop", "-i", "ag-c1", "--json", "-c", str(agent_yml))
    assert code == 0 and doc == {"instance": "ag-c1", "stopped": True}
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert _cli(agent_cmd, "nf", "list", "--json", "-c", str(agent_yml)) == (0, [])
    # both actions are recorded as events (Grafana annotations)
    rows = QueryClient(influxdb_telemetry).rows('SELECT "title", "ok", "instance" FROM "event"')
    assert [(r["instance"], r["ok"]) for r in rows] == [("ag-c1", True), ("ag-c1", True)]
    assert rows[0]["title"].startswith("started ag-c1") and rows[1]["title"] == "stopped ag-c1"


def test_killed_instance_is_reported_down(agent_yml: Path) -> None:
    conf = load_agent(agent_yml)
    rec = commands.nf_start(conf, "ag-k1", "counter")
    os.killpg(rec["pid"], signal.SIGKILL)
    psutil.Process(rec["pid"]).wait(10)
    assert [r["alive"] for r in commands.nf_list(conf)] == [False]
    points = NfCollector(conf.hostname, Registry(conf.state_dir)).collect(time.time_ns())
    assert [p.fields for p in points] == [{"up": False}]
    assert commands.nf_stop(conf, "ag-k1") == {"instance": "ag-k1", "stopped": True}


def test_two_instances_get_distinct_ports(agent_yml: Path) -> None:
    conf = load_agent(agent_yml)
    a = commands.nf_start(conf, "ag-p1", "counter")
    b = commands.nf_start(conf, "ag-p2", "firewall")
    assert a["control"] != b["control"] and a["data_port"] != b["data_port"]
    assert {r["instance"] for r in commands.nf_list(conf) if r["alive"]} == {"ag-p1", "ag-p2"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nf", "stop", "-i", "ag-none"], "unknown instance 'ag-none'"),
        (["nf", "start", "-i", "Bad Name", "-t", "counter"], "bad instance name"),
        (["nf", "start", "-i", "ag-x", "-t", "teleporter"], "nf.type: 'teleporter' is not one of"),
        (["nf", "start", "-i", "ag-x", "-t", "counter", "--set", "engine.batch_size=0"], "engine.batch_size"),
        (["nf", "start", "-i", "ag-x", "-t", "counter", "--set", "enginez=1"], "unknown key(s): enginez"),
        (["nf", "start", "-i", "ag-x", "-t", "counter", "--role", "tertiary"], "bad role"),
        (["migrate", "-i", "ag-none", "--to", "h2"], "unknown instance 'ag-none'"),
    ],
)
def test_bad_input_gives_a_clear_error_and_nonzero_exit(agent_yml, agent_cmd, args, message) -> None:
    code, doc = _cli(agent_cmd, *args, "--json", "-c", str(agent_yml))
    assert code != 0
    assert isinstance(doc, dict) and message in doc["error"]
    assert _cli(agent_cmd, "nf", "list", "--json", "-c", str(agent_yml)) == (0, [])  # nothing half-started


def test_duplicate_start_is_refused(agent_yml: Path) -> None:
    conf = load_agent(agent_yml)
    commands.nf_start(conf, "ag-d1", "counter")
    with pytest.raises(commands.CommandError, match="already exists"):
        commands.nf_start(conf, "ag-d1", "counter")


def test_instance_that_dies_at_start_is_reported_with_its_log(agent_yml: Path, tmp_path: Path) -> None:
    """A data port already in use: the NF exits, the command fails naming it, nothing stays registered."""
    conf = load_agent(agent_yml)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
        with pytest.raises(commands.CommandError, match="exited with code"):
            commands.nf_start(conf, "ag-e1", "counter", sets={"data_port": str(port)})
    assert commands.nf_list(conf) == []


@pytest.mark.parametrize(
    ("yml", "message"),
    [
        ("interval_s: 1\nbogus_key: 3\n", "unknown key(s): bogus_key"),
        ("interval_s: fast\n", "interval_s: expected float"),
        ("interval_s: -1\n", "interval_s: must be > 0"),
        ("launcher: kubernetes\n", "launcher"),
        ("[1, 2\n", "invalid YAML"),
    ],
)
def test_malformed_agent_config_exits_2_naming_the_key(tmp_path: Path, agent_cmd, yml, message) -> None:
    bad = tmp_path / "agent.yml"
    bad.write_text(yml)
    cp = subprocess.run(agent_cmd("status", "--json", "-c", str(bad)), capture_output=True, text=True,
                        check=False)
    assert cp.returncode == 2
    err = json.loads(cp.stdout)["error"]
    assert str(bad) in err and message in err


def test_malformed_telemetry_config_exits_2(tmp_path: Path, write_agent_files, agent_cmd) -> None:
    conf = write_agent_files(tmp_path / "a", TelemetryConfig())
    (tmp_path / "a" / "telemetry.yml").write_text("url: localhost:8086\nflavor: v1\n")
    cp = subprocess.run(agent_cmd("run", "-c", str(conf), "--max-ticks", "1"), capture_output=True,
                        text=True, check=False, timeout=60)
    assert cp.returncode == 2 and "url: expected http(s)://host:port" in cp.stderr


def test_migrate_with_unreachable_store_fails_clearly(tmp_path: Path, influxdb_telemetry, write_agent_files,
                                                       agent_cmd, cleanup_instances) -> None:
    store_yml = tmp_path / "statestore.yml"
    store_yml.write_text(f"backend: redis\nendpoints: ['127.0.0.1:{free_port()}']\ntimeout_ms: 300\n"
                         "retry_ms: 300\n")
    path = write_agent_files(tmp_path / "agent", influxdb_telemetry, control_port_base=free_port(),
                             port_base=random.randrange(20000, 40000, 1000), statestore=str(store_yml))
    conf = load_agent(path)
    cleanup_instances.append(conf)
    commands.nf_start(conf, "ag-m1", "counter")
    code, doc = _cli(agent_cmd, "migrate", "-i", "ag-m1", "--to", "ag-h2", "--json", "-c", str(path))
    assert code == 1
    assert isinstance(doc, dict) and "state store unreachable" in doc["error"]
    assert [r["alive"] for r in commands.nf_list(conf)] == [True]  # the instance is untouched
