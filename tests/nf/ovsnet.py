"""The NF test network of nfnet.py, but switched by a real OVS userspace bridge (prefix ``nc``).

Same addresses and helpers as :class:`nfnet.NFNet` (stamper, instances, sender, sink), except that
every namespace hangs off ``br-int`` of a private ovsdb-server/ovs-vswitchd running in namespace
``<prefix>-sw``, so packet duplication to secondaries is done by the steering programmer's OVS
rules (``duplicate: ovs``), as on the lab hosts. The root namespace gets ``10.98.0.254`` on an OVS
port too, so the test process reaches the Redis state store it runs there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from nfnet import BASE_ENGINE, CLIENT, NF_IPS, SERVERS, NFNet

from lab import netns
from lab.netns import Topology
from nf.launcher import HostSlot, LaunchSpec, ProcessLauncher
from nf.ovsctl import LocalOvs, OvsSwitch
from nf.steering import Endpoint, SteeringEntry, SteeringTable
from nf.store import StoreConfig, open_store
from nf.store import keys as keyspace
from nf.store.base import StateStore
from nf.store.localredis import LocalRedis

STORE_IP = "10.98.0.254"


def _mac(ip: str) -> str:
    a, b, c, d = (int(x) for x in ip.split("."))
    return f"02:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}"


class OvsNFNet(NFNet):
    """See the module docstring; ``close`` stops OVS and Redis (the Topology removes the rest)."""

    def __init__(self, topo: Topology, workdir: Path, instances: tuple[str, ...] = ("p", "s", "b")) -> None:
        self.topo = topo
        self.dir = workdir
        self.ns = {}
        self.procs = {}
        self.clients = {}
        sw = topo.ns("sw")
        self.ovs = LocalOvs(workdir / "ovs", ns=sw).start()
        self.ovs.add_bridge("br-int")
        self.switch: OvsSwitch = self.ovs.switch("br-int")
        self.ports: dict[str, str] = {}
        for name in ("st", "cl", "sv", *instances):
            self.ns[name] = topo.ns(name)
            port = f"{topo.prefix}{name}"
            topo.link(sw, port, self.ns[name], "eth0")
            netns.run(["ethtool", "-K", "eth0", "tx", "off"], ns=self.ns[name])
            self.ovs.add_port("br-int", port)
            self.ports[name] = port
        # root namespace port for the state store
        outer, inner = f"{topo.prefix}root", f"{topo.prefix}rootp"
        netns.add_veth(outer, inner, sw)
        topo.root_links.append(outer)
        netns.add_addr(None, outer, f"{STORE_IP}/24")
        netns.run(["ethtool", "-K", outer, "tx", "off"])
        self.ovs.add_port("br-int", inner)
        st, cl, sv = self.ns["st"], self.ns["cl"], self.ns["sv"]
        netns.add_addr(st, "eth0", "10.98.0.1/24")
        netns.add_addr(st, "eth0", "10.98.1.1/32")
        netns.add_addr(st, "eth0", "10.98.2.1/32")
        for k in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                  "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"):
            netns.run(["sysctl", "-qw", k], ns=st)
        netns.add_addr(cl, "eth0", f"{CLIENT}/24")
        netns.add_route(cl, "default", via="10.98.1.1")
        for ip in SERVERS:
            netns.add_addr(sv, "eth0", f"{ip}/24")
        netns.add_route(sv, "default", via="10.98.2.1")
        for i in instances:
            ns = self.ns[i]
            netns.run(["ip", "link", "set", "eth0", "address", _mac(NF_IPS[i])], ns=ns)
            netns.add_addr(ns, "eth0", f"{NF_IPS[i]}/24")
            netns.add_route(ns, "10.98.1.0/24", dev="eth0")
            netns.add_route(ns, "10.98.2.0/24", dev="eth0")
        self.store_server = LocalRedis(workdir / "redis", bind=STORE_IP).start()
        self.statestore = workdir / "statestore.yml"
        self.statestore.write_text(
            yaml.safe_dump({"backend": "redis", "endpoints": [self.store_server.endpoint], "retry_ms": 2000})
        )

    def slots(self, names: tuple[str, ...] = ("p", "s", "b")) -> list[HostSlot]:
        """Launcher slots: one "host" per instance namespace (one OVS, so one host_index)."""
        return [HostSlot(f"h-{n}", 1, NF_IPS[n], mac=_mac(NF_IPS[n]), ns=self.ns[n], ovs_port=self.ports[n])
                for n in names]

    def close(self) -> None:
        super().close()
        for proc in self.procs.values():
            netns.stop_process(proc)
        self.store_server.stop()
        self.ovs.stop()


def root_store(net: NFNet, tmp: Path) -> tuple[LocalRedis, Path]:
    """For the Linux-bridge :class:`NFNet`: a redis-server in the root namespace on the test bridge
    (``10.98.0.254``), reachable from every host and from the test process; + its contract file."""
    netns.add_addr(None, net.topo.root_links[0], f"{STORE_IP}/24")
    srv = LocalRedis(tmp / "redis", bind=STORE_IP).start()
    path = tmp / "statestore.yml"
    path.write_text(yaml.safe_dump({"backend": "redis", "endpoints": [srv.endpoint], "retry_ms": 2000}))
    return srv, path


def root_launcher(
    net: NFNet, tmp: Path, names: tuple[str, ...]
) -> tuple[LocalRedis, StateStore, ProcessLauncher]:
    """:func:`root_store` plus a client of it and a process launcher with one slot ``h<i>`` per
    instance namespace in ``names`` (host index i, 1-based): the set-up of the failover tests."""
    srv, _yml = root_store(net, tmp)
    store = open_store(StoreConfig(backend="redis", endpoints=(srv.endpoint,)))
    slots = [HostSlot(f"h{i}", i, NF_IPS[n], ns=net.ns[n]) for i, n in enumerate(names, start=1)]
    return srv, store, ProcessLauncher(slots, tmp / "inst", store=store)


#: the failover tests' engine: small batches, flushed every 2 ms


@dataclass
class FailoverPair:
    """See :func:`failover_pair`."""

    store: StateStore
    launcher: ProcessLauncher
    table: SteeringTable
    primary: Endpoint
    secondary: Endpoint
    epoch: int


@contextlib.contextmanager
def failover_pair(net: NFNet, tmp: Path, lease: str) -> Iterator[FailoverPair]:
    """:func:`root_launcher` on instances p (``h1``) and s (``h2``) with the counter NF running as
    primary ``<lease>-p`` on h1, which holds the lease and replicates to secondary ``<lease>-s`` on
    h2 (16 flow groups, :data:`BASE_ENGINE`); flow groups 0-3 of service ``nf`` are steered to the
    pair. On exit (also on error) the instances, the store client and the redis-server are stopped:
    continue any instance process a test has stopped before."""
    srv, store, launcher = root_launcher(net, tmp, ("p", "s"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(srv.stop)
        cleanup.callback(store.close)
        cleanup.callback(launcher.close)
        epoch = store.acquire(keyspace.lease(lease), f"{lease}-p", 60_000)
        spec = LaunchSpec(name=f"{lease}-s", lease=lease, role="secondary", nf={"type": "counter"},
                          flow_groups=16, engine=BASE_ENGINE)
        s = launcher.launch(spec, host="h2")
        p = launcher.launch(replace(spec, name=f"{lease}-p", role="primary", replicas=(s.repl_addr,)),
                            host="h1")
        table = SteeringTable(store)
        for g in range(4):
            table.put(SteeringEntry("nf", str(g), p, (s,), epoch, lease))
        yield FailoverPair(store, launcher, table, p, s, epoch)
