"""Migration downtime with many flows (goal: < 50 ms with 10k flows).

Deploys a primary/secondary pair and a target instance on a third host (real ``nf.instance``
processes, OVS userspace bridge programmed from the steering table), offers ``--flows`` UDP flows
(10,000 by default) through the stamper, then moves every flow group to the target with
:func:`nf.migration.migrate_groups` while traffic keeps flowing. Two modes:

* ``full``: the target holds no state: pre-copy (duplicate input + snapshot + deltas until caught
  up), then the cooperative handover;
* ``delta``: the target already replicates the source (a cluster member): handover only.

Reports per mode the pre-copy time, the handover time (packets of the moved groups are held, not
processed), the steering switch, the flows moved, and at the sink the packets lost, reordered and
duplicated, and the flows whose counter at the target differs from what the sink received (all
should be 0). The downtime a packet sees is longer than the handover: the target
also holds its first output ``handover_release_hold_ms`` (20 ms) so the source's last packets arrive
first. So the sink's one-way latency is reported too: its median over the run, and per phase of the
move (pre-copy; handover and switch) the longest latency of the packets sent in it minus that
median: the extra wait of the phase as the sink saw it. Only packets sent during the move count: a
stall elsewhere in the run is not the move's.

Tail drops at admission (an instance's input buffer full: ``dropped``) are accounted drops, not
migration losses: they are reported separately, and "lost in move" is the sink's loss the admission
drops do not explain (must be 0).

    python bench/migration_downtime.py --flows 10000
"""

from __future__ import annotations

import itertools
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "nf"))

from nfnet import SERVERS, instance_packets, wait_for
from ovsnet import OvsNFNet

from lab import netns, rootns
from lab.netns import Topology
from nf.control import ControlClient
from nf.failover import deploy_pair
from nf.launcher import LaunchSpec, ProcessLauncher
from nf.migration import migrate_groups
from nf.steering import SteeringProgrammer, SteeringTable
from nf.store import open_store

app = typer.Typer(add_completion=False)
SERVICE = "nf"
GROUPS = 64


def _sink_stats(flows: dict[str, list[int]], sent: dict[str, int]) -> tuple[int, int, int]:
    lost = reordered = dup = 0
    for a, seqs in flows.items():
        dup += len(seqs) - len(set(seqs))
        reordered += sum(1 for x, y in itertools.pairwise(seqs) if y < x)
        lost += max(0, sent.get(a, 0) - len(set(seqs)))
    lost += sum(n for a, n in sent.items() if a not in flows)
    return lost, reordered, dup


def _kernel_drops(net: OvsNFNet) -> dict[str, float]:
    """Packets dropped outside our code: UDP receive-buffer overflows per namespace
    (``/proc/net/snmp`` RcvbufErrors) and OVS port drops (interface statistics), cumulative."""
    out: dict[str, float] = {}
    for name in ("st", "sv", "p", "b"):
        snmp = netns.run(["cat", "/proc/net/snmp"], ns=net.ns[name]).stdout
        lines = [ln.split() for ln in snmp.splitlines() if ln.startswith("Udp:")]
        if len(lines) >= 2:
            row = dict(zip(lines[0][1:], lines[1][1:], strict=False))
            out[f"udp rcvbuf errors {name}"] = float(row.get("RcvbufErrors", 0))
    # packets queued for an unresolved neighbour (ARP) beyond unres_qlen_bytes are discarded; the
    # kernel keeps this statistic for the whole host only (other jobs' namespaces count too)
    arp = Path("/proc/net/stat/arp_cache").read_text().splitlines()
    col = arp[0].split().index("unresolved_discards")
    out["arp unresolved discards (host)"] = float(sum(int(r.split()[col], 16) for r in arp[1:]))
    ovs = 0.0
    for port in net.ports.values():
        stats = net.switch.vsctl("get", "interface", port, "statistics")
        for item in stats.strip().strip("{}").split(","):
            k, _, v = item.strip().partition("=")
            if k in ("rx_dropped", "tx_dropped") and v.strip().isdigit():
                ovs += float(v)
    out["ovs port drops"] = ovs
    # upcalls the userspace datapath could not queue ("lost")
    out["ovs datapath lost"] = 0.0
    ctl = str(net.ovs.rundir / "ovs-vswitchd.ctl")
    for ln in net.switch.run(["ovs-appctl", "-t", ctl, "dpctl/show"]).splitlines():
        if "lookups:" in ln and "lost:" in ln:
            out["ovs datapath lost"] += float(ln.split("lost:")[1].split()[0])
    return out


def run_mode(net: OvsNFNet, wd: Path, mode: str, flows: int, rate: float, sport: int,
             buffer_size: int) -> dict[str, float]:
    store = open_store(net.statestore)
    launcher = ProcessLauncher(net.slots(), wd / f"inst-{mode}", store=store)
    prog = SteeringProgrammer(store, net.switch, host_index=1, service=SERVICE, interval_ms=20).start()
    try:
        spec = LaunchSpec(name="tmpl", lease="x", workers=1, flow_groups=GROUPS, nf={"type": "counter"},
                          engine={"batch_size": 32, "batch_timeout_ms": 2.0, "buffer_size": buffer_size},
                          statestore=str(net.statestore))
        dep = deploy_pair(store, launcher, SERVICE, f"mig-{mode}", [str(g) for g in range(GROUPS)], spec,
                          primary_host="h-p")
        target = launcher.launch(LaunchSpec(name=f"tgt-{mode}", lease=f"tgt-{mode}", role="primary",
                                            workers=1, flow_groups=GROUPS, nf={"type": "counter"},
                                            engine={"batch_size": 32, "batch_timeout_ms": 2.0,
                                                    "buffer_size": buffer_size}), host="h-b")
        if mode == "delta":  # the target is a cluster member: it already replicates the source
            table = SteeringTable(store)
            table.repoint(SERVICE, range(GROUPS), dep.primary, (dep.secondary, target), dep.epoch,
                          lease=dep.lease)
            with ControlClient(dep.primary.control) as cc:
                cc.add_replica(target.repl_addr)
        wait_for(lambda: prog.last is not None and len(prog.last.rules) == 1, 10, "duplication rule")
        drops0 = _kernel_drops(net)
        sink, sink_out = net.sink(f"mig-{mode}", 7000, latency=True)
        per_flow = max(3, int(rate * 8 / flows))
        sender, sent_out = net.send(f"{SERVERS[0]}:7000", flows=flows, rate=rate, count=flows * per_flow,
                                    wait=False, sport=sport, linger=0.5)
        time.sleep(max(3.0, 1.5 * flows / rate))  # every flow has state at the source
        with ControlClient(dep.primary.control) as cc:
            n_flows = sum(int(w.get("flows_owned", 0)) for w in cc.status()["workers"])
        t_start = time.time_ns()
        rep = migrate_groups(store, SERVICE, range(GROUPS), target, settle_ms=300, timeout_s=60)
        t_end = time.time_ns()
        sender.wait(120)
        time.sleep(1.0)
        res = net.stop_read(sink, sink_out)
        got = res["flows"]
        lat_ms = sorted(x / 1e6 for x in res["latency_ns"]) or [0.0]
        p50 = lat_ms[len(lat_ms) // 2]
        # packets sent during the pre-copy (duplication + snapshot + deltas) and from the handover on
        # (a delta-only move has no pre-copy: its extra wait is reported as 0)
        t_hand = t_start + int(rep.precopy_ms * 1e6)
        pre: list[float] = []
        hand: list[float] = []
        for x, t in zip(res["latency_ns"], res["sent_ns"], strict=True):
            if t_start <= t <= t_end:
                (pre if t < t_hand else hand).append(x / 1e6)
        sent = net.stop_read(sender, sent_out)["sent"]
        sent_by_addr = {f"10.98.1.2:{sport + i}": n for i, n in enumerate(sent)}
        lost, reordered, dup = _sink_stats(got, sent_by_addr)
        kdrops = {k: v - drops0.get(k, 0.0) for k, v in _kernel_drops(net).items()}
        # state equal after the move: every moved flow's counter at the target == what the sink got
        at_tgt = instance_packets(target.control)
        wrong_state = sum(1 for a, seqs in got.items() if at_tgt.get(a) != len(set(seqs)))
        raw = {}
        for who, ep in (("src", dep.primary), ("tgt", target)):
            with ControlClient(ep.control) as cc:
                raw[who] = cc.metrics()["raw"]
        st = net.clients["stamper"].call("status")
        diag = {f"{w} {k}": float(raw[w].get(k, 0)) for w in raw
                for k in ("dropped", "gaps_skipped", "malformed", "forwarded", "replayed", "egress_errors",
                          "processed", "released", "duplicates", "replica_discarded", "replica_logged")}
        # tail drops at admission (input buffer full) are accounted drops of the instance that
        # received the packet; "lost in move" is loss the drops do not explain (must be 0)
        admission = sum(float(raw[w].get("dropped", 0)) for w in raw)
        diag["dropped at admission"] = admission
        diag["lost in move"] = max(0.0, lost - admission)
        diag["migration_dropped"] = sum(float(raw[w].get("migration_dropped", 0)) for w in raw)
        diag.update(kdrops)
        diag["stamper no_route"] = float(st.get("no_route", 0))
        diag["stamper send_errors"] = float(st.get("send_errors", 0))
        diag["stamper received"] = float(st.get("received", 0))
        diag["sent"] = float(sum(sent))
        for g in range(GROUPS):
            SteeringTable(store).delete(SERVICE, g)
        return {"flows at source": n_flows, "flows moved": rep.flows, "pre-copy ms": rep.precopy_ms,
                "handover ms": rep.handover_ms, "steer ms": rep.steer_ms, "total ms": rep.total_ms,
                "sink p50 latency ms": p50, "sink max latency ms": lat_ms[-1],
                "pre-copy: extra wait ms": max(pre, default=p50) - p50,
                "handover: extra wait ms": max(hand, default=p50) - p50,
                "lost": lost, "reordered": reordered, "duplicated": dup,
                "flows with state != sink at target": wrong_state, **diag}
    finally:
        prog.stop()
        launcher.close()
        store.close()


@app.command()
def main(
    flows: Annotated[int, typer.Option(help="Concurrent UDP flows.")] = 10000,
    rate: Annotated[float, typer.Option(help="Offered load (pps) during the move.")] = 2000.0,
    modes: Annotated[list[str], typer.Option(help="full and/or delta.")] = ["full", "delta"],  # noqa: B006
    buffer_size: Annotated[int, typer.Option(help="input buffer (batches)")] = 100,
    prefix: Annotated[str, typer.Option(help="namespace prefix (unique per engineer/run)")] = "nc",
) -> None:
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, dict[str, float]] = {}
    with (
        rootns.socket_buffers_raised(),
        tempfile.TemporaryDirectory(prefix="nc-mig-") as wd,
        Topology(prefix) as topo,
    ):
        net = OvsNFNet(topo, Path(wd))
        try:
            net.stamper([], duplicate="ovs", flow_groups=GROUPS, statestore=str(net.statestore))
            for i, mode in enumerate(modes):
                results[mode] = run_mode(net, Path(wd), mode, flows, rate, 20000 + 11000 * i, buffer_size)
                print(mode, results[mode], flush=True)
        finally:
            net.close()
    print(f"\n# migration of {GROUPS} flow groups, {flows} flows, {rate:.0f} pps offered during the move, "
          f"input buffer {buffer_size} x 32 packets")
    keys = list(next(iter(results.values())))
    print(f"{'':<24}" + "".join(f"{m:>12}" for m in results))
    for k in keys:
        print(f"{k:<24}" + "".join(f"{results[m][k]:>12.1f}" for m in results))


if __name__ == "__main__":
    app()
