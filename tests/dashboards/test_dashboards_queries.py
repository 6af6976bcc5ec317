"""Every panel's query (and variable) returns data from InfluxDB after a real agent run.

The data: an agent ticking for a few seconds on this machine (host, NICs, an OVS with a VXLAN port
in a namespace of ours), two real NF instances started through the agent's commands, their
start/stop events, failover/migration events and placement decisions written the way the
NF-control and placement services write them (through agent.events / the agent's sink).
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest

from agent import commands
from agent.collectors.host import HostCollector
from agent.collectors.nf import NfCollector
from agent.collectors.nic import NicCollector
from agent.collectors.ovs import OvsCollector
from agent.config import AgentConfig
from agent.daemon import Agent
from agent.events import emit, event_point
from agent.influxd import free_port
from agent.query import QueryClient
from agent.registry import Registry
from agent.schema import make_point
from agent.writer import open_sink
from dashboards import build
from lab.netns import Topology
from nf.ovsctl import LocalOvs


@pytest.fixture(scope="module")
def populated(tmp_path_factory, influxdb_server):
    tmp = Path(tmp_path_factory.mktemp("dash"))
    influxdb_server.create_database("dashboards", drop_first=True)
    telemetry = replace(influxdb_server.telemetry_config(), database="dashboards")
    tfile = tmp / "telemetry.yml"
    tfile.write_text(f"url: {telemetry.url}\nflavor: v1\ndatabase: dashboards\n")
    conf = AgentConfig(host="ag-h1", host_index=1, telemetry_file=tfile, state_dir=tmp / "state",
                       spool_dir=tmp / "spool", control_port_base=free_port(),
                       port_base=random.randrange(20000, 40000, 1000))
    reg = Registry(conf.state_dir)
    with Topology("ag") as topo:
        ns = topo.ns("dash")
        with LocalOvs(tmp / "ovs", ns=ns) as ovs:
            sw = ovs.add_bridge("br-int")
            sw.vsctl("add-port", "br-int", "vx-2", "--", "set", "interface", "vx-2", "type=vxlan",
                     "options:remote_ip=10.78.0.2", "options:key=4242")
            try:
                commands.nf_start(conf, "ag-q1", "counter", role="primary")
                commands.nf_start(conf, "ag-q2", "firewall", role="secondary")
                sink = open_sink(telemetry, conf.spool_dir, conf.spool_max_bytes)
                agent = Agent(conf, sink, [HostCollector("ag-h1"), NicCollector("ag-h1"),
                                           OvsCollector("ag-h1", str(ovs.rundir)),
                                           NfCollector("ag-h1", reg)], reg)
                for _ in range(4):
                    agent.tick()
                    time.sleep(1.0)
                emit([event_point("ag-h1", "failover", "promoted ag-q2", instance="ag-q2", duration_ms=42.0,
                                  src_host="ag-h2", dst_host="ag-h1"),
                      event_point("ag-h1", "migration", "migrated ag-q1 -> ag-h2", instance="ag-q1",
                                  src_host="ag-h1", dst_host="ag-h2", flows=3),
                      event_point("ag-ctl", "placement", "ppo: move ag-q1 to ag-h2", instance="ag-q1",
                                  dst_host="ag-h2")], conf)
                now = time.time_ns()
                sink.submit([make_point("placement", {"host": "ag-ctl", "policy": "ppo"},
                                        {"reward": -0.5 + k / 10, "episode_return": k / 3.0,
                                         "migrations": k % 2, "decision_ms": 3.5, "instance": "ag-q1",
                                         "target_host": "ag-h2"},
                                        now - (3 - k) * 1_000_000_000) for k in range(3)])
                sink.flush()
            finally:
                for r in commands.nf_list(conf):
                    with contextlib.suppress(commands.CommandError):
                        commands.nf_stop(conf, r["instance"])
    return QueryClient(telemetry)


def _all_queries():
    return [pq for uid in build.DASHBOARDS for pq in build.panel_queries(build.render(uid))]


@pytest.mark.netns
@pytest.mark.parametrize("pq", _all_queries(), ids=lambda pq: f"{pq.dashboard}/{pq.panel}/{pq.ref_id}")
def test_panel_query_returns_data(populated: QueryClient, pq) -> None:
    rows = populated.rows(build.expand(pq.query, time_filter="time > now() - 10m"))
    values = [v for r in rows for k, v in r.items() if k != "time" and v is not None]
    assert values, f"no data for {pq.dashboard} / {pq.panel}: {pq.query}"


@pytest.mark.netns
def test_data_conforms_to_the_schema(populated: QueryClient) -> None:
    assert populated.schema_problems() == []
