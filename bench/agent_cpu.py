"""Agent CPU cost: the real daemon at a 1 s interval with N real NF instances (goal < 5 % of one core).

Set-up (all under a temp dir, removed on exit even on failure):

* a private influxd 1.6.7 on a free 127.0.0.1 port (agent.influxd),
* an OVS (ovsdb-server + ovs-vswitchd, userspace datapath) in namespace ``ag-bench`` with ``br-int``
  and ``--tunnels`` VXLAN ports (the ``ovs_port`` collector reads it through its db socket),
* ``--instances`` real NF instances (``python -m nf.instance``, counter type) started through the
  agent's own ``nf start`` command (local-process launcher), so the ``nf`` collector polls
  ``--instances`` control APIs every tick,
* ``deftctl agent run`` (``python -m agent run``) as a separate process.

Measured: CPU seconds (user + system, including the ``ovs-vsctl`` children it waited for) of the
agent process over ``--seconds`` of wall time after a warm-up, as % of one core; plus points
written per tick and the mean ``collect_ms`` the agent reports about itself. Printed as a table and
as JSON (``--json``). Numbers are reported, never asserted.

Usage: ``python bench/agent_cpu.py [--instances 20] [--seconds 60] [--interval 1.0] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent import commands  # noqa: E402
from agent.config import load_agent  # noqa: E402
from agent.influxd import InfluxdServer, free_port  # noqa: E402
from agent.query import QueryClient  # noqa: E402
from deftctl.config import to_dict  # noqa: E402
from lab.netns import Topology, stop_process  # noqa: E402
from nf.ovsctl import LocalOvs  # noqa: E402


def _cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


def run(instances: int, seconds: float, interval: float, tunnels: int, warmup: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ag-bench-") as tmp_s, Topology("ag") as topo:
        tmp = Path(tmp_s)
        srv = InfluxdServer(tmp / "influx")
        srv.start()
        agent_proc = None
        conf = None
        try:
            ns = topo.ns("bench")
            with LocalOvs(tmp / "ovs", ns=ns) as ovs:
                sw = ovs.add_bridge("br-int")
                for i in range(tunnels):
                    sw.vsctl("add-port", "br-int", f"vx-{i + 2}", "--", "set", "interface", f"vx-{i + 2}",
                             "type=vxlan", f"options:remote_ip=10.78.0.{i + 2}", "options:key=4242")
                tfile = tmp / "telemetry.yml"
                tfile.write_text(yaml.safe_dump(to_dict(srv.telemetry_config())))
                afile = tmp / "agent.yml"
                afile.write_text(yaml.safe_dump({
                    "host": "ag-bench", "interval_s": interval, "telemetry_file": str(tfile),
                    "state_dir": str(tmp / "state"), "spool_dir": str(tmp / "spool"),
                    "ovs_rundir": str(ovs.rundir), "control_port_base": free_port(),
                    "port_base": random.randrange(20000, 40000, 1000)}))
                conf = load_agent(afile)
                t0 = time.monotonic()
                for k in range(instances):
                    commands.nf_start(conf, f"ag-b{k}", "counter")
                start_s = time.monotonic() - t0
                cmd = [sys.executable, "-m", "agent", "run", "--config", str(afile)]
                with open(tmp / "agent.log", "wb") as logf:
                    agent_proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, start_new_session=True)
                p = psutil.Process(agent_proc.pid)
                time.sleep(warmup)
                c0, w0 = _cpu_s(p), time.monotonic()
                st0 = json.loads((conf.state_dir / "agent.status.json").read_text())
                time.sleep(seconds)
                c1, w1 = _cpu_s(p), time.monotonic()
                st1 = json.loads((conf.state_dir / "agent.status.json").read_text())
                stop_process(agent_proc)
                qc = QueryClient(srv.telemetry_config())
                collect = qc.rows('SELECT mean("collect_ms") FROM "agent"')[0]["mean"]
                nf_up = qc.count("nf", "up", '"up" = true')
                ticks = st1["ticks"] - st0["ticks"]
                points = st1["points_written_total"] - st0["points_written_total"]
                return {
                    "instances": instances, "tunnels": tunnels, "interval_s": interval,
                    "wall_s": round(w1 - w0, 2), "cpu_s": round(c1 - c0, 3),
                    "cpu_percent_of_one_core": round(100.0 * (c1 - c0) / (w1 - w0), 2),
                    "ticks": ticks, "points_per_tick": round(points / max(ticks, 1), 1),
                    "mean_collect_ms": round(float(collect), 2), "nf_points_up": nf_up,
                    "instances_start_s": round(start_s, 1),
                }
        finally:
            if agent_proc is not None and agent_proc.poll() is None:
                agent_proc.kill()
                agent_proc.wait()
            if conf is not None:
                for r in commands.nf_list(conf):
                    with contextlib.suppress(commands.CommandError):
                        commands.nf_stop(conf, r["instance"], grace_s=2.0)
            srv.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--tunnels", type=int, default=4)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = run(a.instances, a.seconds, a.interval, a.tunnels, a.warmup)
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:<26} {v}")
        verdict = "meets" if res["cpu_percent_of_one_core"] < 5.0 else "MISSES"
        print(f"goal < 5 % of one core: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
