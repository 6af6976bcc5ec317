"""Steering on a real OVS userspace bridge: primary and secondary both get every packet; re-steering
moves the copy. Counted by the duplication rule's flow counters and by packets received."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab import netns
from lab.netns import Topology
from nf.ovsctl import LocalOvs, OvsSwitch
from nf.steering import COOKIE_KIND_STEERING, Endpoint, SteeringEntry, SteeringProgrammer, SteeringTable
from nf.store import StoreConfig, open_store

PROBE = str(Path(__file__).with_name("udp_probe.py"))
PORT = 9000
DUP = 9100
N = 400
HOSTS = {"cli": 1, "pri": 2, "sec": 3, "sec2": 4}


def _mac(i: int) -> str:
    return f"02:00:00:00:99:{i:02x}"


def _ep(name: str) -> Endpoint:
    i = HOSTS[name]
    return Endpoint(instance=f"nc-{name}", host="h1", host_index=1, ip=f"10.99.0.{i}", mac=_mac(i),
                    data_port=PORT, dup_port=DUP, ovs_port=f"nc{name}")


def _wait(pred: Callable[[], object], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _receivers(topo: Topology, names: list[str], tmp: Path, tag: str) -> dict[str, Path]:
    """Primary listens on its data port; secondaries on their dup port (where copies arrive)."""
    outs = {}
    for n in names:
        out = tmp / f"{tag}-{n}.json"
        port = PORT if n == "pri" else DUP
        topo.start([sys.executable, PROBE, "recv", str(port), str(out), "3"], ns=f"nc-{n}")
        outs[n] = out
    for out in outs.values():
        _wait(Path(str(out) + ".ready").exists)
    return outs


def _seqs(out: Path) -> list[int]:
    _wait(out.exists, 30)
    return list(json.loads(out.read_text())["seqs"])


def _dup_packets(sw: OvsSwitch) -> int:
    return sum(f.n_packets for f in sw.dump_flows(COOKIE_KIND_STEERING))


@pytest.mark.netns
def test_primary_and_secondary_get_every_packet_and_resteering_moves_the_copy(
    tmp_path: Path, redis_config: StoreConfig
) -> None:
    with Topology("nc") as topo:
        sw_ns = topo.ns("sw")
        for name, i in HOSTS.items():
            ns = topo.ns(name)
            topo.link(sw_ns, f"nc{name}", ns, "eth0")
            netns.run(["ip", "link", "set", "eth0", "address", _mac(i)], ns=ns)
            netns.add_addr(ns, "eth0", f"10.99.0.{i}/24")
            # veth TX checksum offload leaves UDP checksums partial; the userspace datapath forwards
            # them as they are and the receiver drops them: compute checksums in software
            netns.run(["ethtool", "-K", "eth0", "tx", "off"], ns=ns)
        with LocalOvs(tmp_path / "ovs", ns=sw_ns) as ovs, open_store(redis_config) as store:
            ovs.add_bridge("br-int")
            for name in HOSTS:
                ovs.add_port("br-int", f"nc{name}")
            sw = ovs.switch("br-int")
            table = SteeringTable(store)
            for g in range(4):
                table.put(SteeringEntry(service="svc", group=str(g), primary=_ep("pri"),
                                        secondaries=(_ep("sec"),), epoch=1, lease="svc-a"))
            prog = SteeringProgrammer(store, sw, host_index=1, interval_ms=20)
            with prog:
                _wait(lambda: prog.last is not None and len(prog.last.rules) == 1)
                # one rule for the primary (4 groups share it), idempotent on re-sync
                assert prog.sync().added == 0 and prog.sync().removed == 0
                netns.run(["ping", "-c", "1", "-W", "2", "10.99.0.2"], ns="nc-cli")
                netns.run(["ping", "-c", "1", "-W", "2", "10.99.0.3"], ns="nc-cli")

                outs = _receivers(topo, ["pri", "sec", "sec2"], tmp_path, "a")
                netns.run([sys.executable, PROBE, "send", "10.99.0.2", str(PORT), str(N)], ns="nc-cli")
                assert _seqs(outs["pri"]) == list(range(N))
                assert _seqs(outs["sec"]) == list(range(N))
                assert _seqs(outs["sec2"]) == []
                assert _dup_packets(sw) == N + 1  # + the END marker

                # re-steer: the copy moves to sec2
                table.repoint("svc", range(4), _ep("pri"), [_ep("sec2")], epoch=2)
                # (while the groups are being repointed the rule may briefly copy to both secondaries)
                _wait(lambda: [("10.99.0.4" in f.text, "10.99.0.3" in f.text)
                               for f in sw.dump_flows(COOKIE_KIND_STEERING)] == [(True, False)])
                flows = sw.dump_flows(COOKIE_KIND_STEERING)
                assert len(flows) == 1 and "10.99.0.3" not in flows[0].text
                outs = _receivers(topo, ["pri", "sec", "sec2"], tmp_path, "b")
                netns.run(
                    [sys.executable, PROBE, "send", "10.99.0.2", str(PORT), str(N), "1000"], ns="nc-cli"
                )
                assert _seqs(outs["pri"]) == list(range(1000, 1000 + N))
                assert _seqs(outs["sec2"]) == list(range(1000, 1000 + N))
                assert _seqs(outs["sec"]) == []
                assert _dup_packets(sw) == N + 1

                # removing the secondaries removes the rule; traffic still reaches the primary only
                table.repoint("svc", range(4), _ep("pri"), [], epoch=3)
                _wait(lambda: sw.dump_flows(COOKIE_KIND_STEERING) == [])
            prog.remove_all()


def test_rules_use_tunnel_ports_and_rewrite_mac_ip_port(tmp_path: Path) -> None:
    class FakePorts(OvsSwitch):
        def ofport(self, iface: str) -> int | None:
            return {"vx-2": 7, "vx-3": 8, "tap-p": 3}.get(iface)

    prog = SteeringProgrammer(store=None, switch=FakePorts(), host_index=1)  # type: ignore[arg-type]
    pri = Endpoint("p", "h2", 2, "10.80.2.11", "02:00:00:00:02:11", 9000, 9100, 9200, 2, "tap-p")
    sec = Endpoint("s", "h3", 3, "10.80.3.11", "02:00:00:00:03:11", 9000, 9500, 9200, 2, "tap-s")
    rules = prog.desired_rules([SteeringEntry("svc", "0", pri, (sec,), 1)])
    texts = sorted(rules.values(), key=lambda t: t.split("tp_dst=")[1])
    assert len(texts) == 2  # one per worker port
    assert "udp,tun_id=0,nw_dst=10.80.2.11,tp_dst=9000," in texts[0]
    assert texts[0].endswith(
        "actions=output:7,mod_dl_dst:02:00:00:00:03:11,mod_nw_dst:10.80.3.11,mod_tp_dst:9500,output:8"
    )
    assert "tp_dst=9001," in texts[1] and "mod_tp_dst:9501,output:8" in texts[1]
    # on the primary's own host the primary is reached through its own port
    local = SteeringProgrammer(store=None, switch=FakePorts(), host_index=2)  # type: ignore[arg-type]
    texts2 = local.desired_rules([SteeringEntry("svc", "0", pri, (sec,), 1)]).values()
    assert all("actions=output:3," in t for t in texts2)
