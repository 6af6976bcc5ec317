"""Failover time: detection -> first packet released by the promoted secondary (goal < 100 ms p50).

Each trial deploys a fresh primary/secondary pair (real ``nf.instance`` processes in namespaces,
switched by a real OVS userspace bridge whose duplication rules come from the steering table),
runs 2,000 pps of stamped traffic through them, SIGKILLs the primary and lets the FDU
(:class:`nf.failover.FailureDetector`, heartbeat ``--interval-ms`` x ``--misses``) fail over.
Reported per trial and as p50/p99 (ms):

* kill -> detect: the FDU notices the closed heartbeat connection and confirms the refusal
  (``--misses`` refused pings, ``--confirm-ms`` apart)
* detect -> lease: the epoch CAS in Redis
* detect -> promote: promote answered (replay of uncommitted input done)
* detect -> steer: steering entries point at the new primary
* detect -> first release: the new primary's ``released`` counter moved (polled every 1 ms)
* kill -> first release: the service's outage as a user sees it (the goal's "failover time")

Uses the NF test network (tests/nf/ovsnet.py); needs root.

    python bench/failover_time.py --trials 10
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "nf"))

from nfnet import SERVERS, wait_for
from ovsnet import OvsNFNet

from lab import rootns
from lab.netns import Topology, stop_process
from nf.failover import DetectorConfig, FailoverOrchestrator, FailureDetector, deploy_pair
from nf.launcher import LaunchSpec, ProcessLauncher
from nf.steering import SteeringProgrammer, SteeringTable
from nf.store import open_store

app = typer.Typer(add_completion=False)
SERVICE = "nf"
GROUPS = 16


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


@app.command()
def main(
    trials: Annotated[int, typer.Option(help="Failovers to measure.")] = 10,
    interval_ms: Annotated[float, typer.Option(help="Heartbeat interval (ms).")] = 50.0,
    misses: Annotated[int, typer.Option(help="Missed heartbeats that declare failure.")] = 3,
    confirm_ms: Annotated[float, typer.Option(help="Spacing of the confirming pings after a refusal (ms).")
                          ] = 10.0,
    rate: Annotated[float, typer.Option(help="Offered load (pps).")] = 2000.0,
) -> None:
    logging.basicConfig(level=logging.WARNING)
    rows: list[dict[str, float]] = []
    with (
        rootns.socket_buffers_raised(),
        tempfile.TemporaryDirectory(prefix="nc-fo-") as wd,
        Topology("nc") as topo,
    ):
        net = OvsNFNet(topo, Path(wd))
        store = open_store(net.statestore)
        launcher = ProcessLauncher(net.slots(), Path(wd) / "inst", store=store)
        prog = SteeringProgrammer(store, net.switch, host_index=1, service=SERVICE, interval_ms=10).start()
        orch = FailoverOrchestrator(store, launcher)
        table = SteeringTable(store)
        dcfg = DetectorConfig(interval_ms=interval_ms, timeout_ms=interval_ms, miss_threshold=misses,
                              confirm_interval_ms=confirm_ms, replace_secondary=False)
        fdu = FailureDetector(store, orch, dcfg, service=SERVICE).start()
        try:
            net.stamper([], duplicate="ovs", flow_groups=GROUPS, statestore=str(net.statestore))
            spec = LaunchSpec(name="tmpl", lease="x", workers=1, flow_groups=GROUPS, nf={"type": "counter"},
                              engine={"batch_size": 8, "batch_timeout_ms": 2.0},
                              statestore=str(net.statestore))
            for t in range(trials):
                dep = deploy_pair(store, launcher, SERVICE, f"fo{t}", [str(g) for g in range(GROUPS)], spec,
                                  primary_host="h-p")
                wait_for(lambda: prog.last is not None and len(prog.last.rules) == 1, 10, "duplication rule")
                sender, _ = net.send(f"{SERVERS[0]}:7000", flows=8, rate=rate, count=int(rate * 30),
                                     wait=False, sport=41000 + 10 * t)
                time.sleep(1.0)
                n_before = len(orch.reports)
                t_kill = time.monotonic_ns()
                launcher.kill(dep.primary.instance)
                wait_for(lambda n=n_before: len(orch.reports) > n and orch.reports[-1].t_first_release_ns > 0,
                         15, "failover with a released packet")
                rep = orch.reports[-1]
                row = {
                    "kill->detect": (rep.t_detect_ns - t_kill) / 1e6,
                    "detect->lease": rep.ms(rep.t_lease_ns),
                    "detect->promote": rep.ms(rep.t_promote_ns),
                    "detect->steer": rep.ms(rep.t_steer_ns),
                    "detect->first release": rep.ms(rep.t_first_release_ns),
                    "kill->first release": (rep.t_first_release_ns - t_kill) / 1e6,
                }
                rows.append(row)
                print(f"trial {t}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in row.items()), flush=True)
                stop_process(sender)
                for g in range(GROUPS):  # retire the pair before stopping it (the FDU would fail it over)
                    table.delete(SERVICE, g)
                time.sleep(0.1)
                launcher.stop(dep.secondary.instance)
        finally:
            fdu.stop()
            prog.stop()
            launcher.close()
            store.close()
            net.close()
    print(f"\n# {trials} failovers, heartbeat {interval_ms:.0f} ms x {misses} misses ({confirm_ms:g} ms "
          f"apart after a refusal), {rate:.0f} pps offered")
    print(f"{'step':<24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for k in rows[0]:
        xs = [r[k] for r in rows]
        print(f"{k:<24} {statistics.median(xs):>8.1f} {_pct(xs, 0.99):>8.1f} {max(xs):>8.1f}")


if __name__ == "__main__":
    app()
