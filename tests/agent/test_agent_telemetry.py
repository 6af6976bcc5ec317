"""A real agent process reports host, NIC, OVS and its own health to a real InfluxDB, per the schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent.query import QueryClient
from lab.netns import Topology
from nf.ovsctl import LocalOvs


@pytest.mark.netns
def test_agent_run_writes_every_measurement_with_the_documented_schema(
    tmp_path: Path, influxdb_telemetry, write_agent_files, agent_cmd
) -> None:
    ticks = 4
    with Topology("ag") as topo:
        ns = topo.ns("tel")
        br = topo.bridge("tbr")  # a root-namespace bridge + veth of ours: other engineers' links come and go
        topo.attach(ns, br)
        ifaces = [br, topo.root_links[-1]]
        with LocalOvs(tmp_path / "ovs", ns=ns) as ovs:
            sw = ovs.add_bridge("br-int")
            sw.vsctl("add-port", "br-int", "vx-2", "--", "set", "interface", "vx-2", "type=vxlan",
                     "options:remote_ip=10.78.0.2", "options:key=4242")
            conf = write_agent_files(tmp_path / "agent", influxdb_telemetry, collect_ovs=True,
                                     ovs_rundir=str(ovs.rundir), interval_s=0.5, interfaces=ifaces)
            cp = subprocess.run(agent_cmd("run", "--config", str(conf), "--max-ticks", str(ticks)),
                                capture_output=True, text=True, timeout=60, check=False)
            assert cp.returncode == 0, cp.stderr
            status = json.loads(subprocess.run(agent_cmd("status", "--json", "--config", str(conf)),
                                               capture_output=True, text=True, check=True).stdout)
    qc = QueryClient(influxdb_telemetry)
    assert qc.schema_problems() == []
    # exactly one host and one agent point per tick, from this host
    assert qc.count("host", "cpu_percent", "\"host\" = 'ag-h1'") == ticks
    assert qc.count("agent", "collect_ms") == ticks
    assert status["daemon"]["ticks"] == ticks
    assert status["daemon"]["points_written_total"] > 0 and status["spool"]["points"] == 0
    # the configured NICs, every tick, with rates from the second tick on
    nics = {r["interface"] for r in qc.rows('SELECT last("rx_bytes") FROM "nic" GROUP BY "interface"')}
    assert nics == set(ifaces)
    assert qc.count("nic", "rx_bytes") == ticks * len(nics)
    assert qc.count("nic", "rx_pps") == (ticks - 1) * len(nics)
    # both OVS ports, tagged with bridge, type and (tunnels only) the peer
    q = 'SELECT last("link_up") FROM "ovs_port" GROUP BY "port", "port_type", "remote_ip"'
    ports = {(r["port"], r["port_type"], r.get("remote_ip") or "") for r in qc.rows(q)}
    assert ports == {("br-int", "internal", ""), ("vx-2", "vxlan", "10.78.0.2")}
