"""Deploy a declared DEFT service (idempotently) and report whether anything changed.

A service is *running* when every flow group ``0..flow_groups-1`` has a steering entry and every
primary named there answers its control API. Then nothing is done (``changed: false``) - also
after a failover moved the primary elsewhere: the declaration is satisfied, the failure detector
owns the pair from then on. Otherwise the service is (re)deployed:

1. leftovers of the service (instances any agent still lists for it) are stopped;
2. the lease ``<service>`` is taken over with epoch + 1 (anything older is fenced);
3. secondary ``<service>-s<epoch>`` on the secondary host, then primary ``<service>-p<epoch>`` on
   the primary host replicating to it (agents' docker launcher: containers on br-int);
4. steering entries for every flow group -> primary, secondaries (the steering programmers add the
   OVS duplication rules on the ingress hosts, the stamper follows the table).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from deploy.agentssh import AgentError
from deploy.config import DeployConfig, ServiceSpec
from deploy.launcher import AgentLauncher
from nf.control import ControlClient, ControlError
from nf.launcher import LaunchError, LaunchSpec
from nf.steering import SteeringEntry, SteeringTable
from nf.store import keys as keyspace

log = logging.getLogger(__name__)


class DeployError(RuntimeError):
    """A service could not be deployed; the message names the service and the failed step."""


@dataclass
class ServiceState:
    """What :func:`ensure_service` found or did."""

    service: str
    changed: bool
    running: bool
    reason: str = ""
    epoch: int = 0
    primary: dict[str, Any] = field(default_factory=dict)
    secondaries: list[dict[str, Any]] = field(default_factory=list)
    stopped_leftovers: list[str] = field(default_factory=list)


def _answers(control: str, timeout_s: float = 2.0) -> bool:
    try:
        with ControlClient(control, timeout_s=timeout_s) as cc:
            cc.status()
        return True
    except (ControlError, OSError):
        return False


def running_state(store: Any, spec: ServiceSpec) -> ServiceState:
    """Is ``spec`` running (see module docstring)? Read-only."""
    entries = SteeringTable(store).entries(spec.name)
    groups = {e.group for e in entries}
    want = {str(g) for g in range(spec.flow_groups)}
    if groups != want:
        return ServiceState(
            spec.name, False, False, f"steering covers {len(groups & want)}/{len(want)} groups"
        )
    prims = {e.primary.instance: e for e in entries}
    dead = [name for name, e in prims.items() if not _answers(e.primary.control)]
    if dead:
        return ServiceState(spec.name, False, False, f"primary {', '.join(sorted(dead))} does not answer")
    e = entries[0]

    return ServiceState(
        spec.name, False, True, "running", e.epoch, asdict(e.primary), [asdict(s) for s in e.secondaries]
    )


def launch_spec(
    spec: ServiceSpec, name: str, role: str, epoch: int, replicas: tuple[str, ...] = ()
) -> LaunchSpec:
    """The LaunchSpec of one member of ``spec``'s pair."""
    engine = {"batch_size": spec.batch_size, **spec.engine}
    return LaunchSpec(
        name=name,
        lease=spec.name,
        role=role,
        epoch=epoch,
        workers=spec.workers,
        flow_groups=spec.flow_groups,
        replicas=replicas,
        nf={"type": spec.nf_type, **spec.nf},
        engine=engine,
    )


def ensure_service(cfg: DeployConfig, store: Any, spec: ServiceSpec, check: bool = False) -> ServiceState:
    """Deploy ``spec`` unless it runs; with ``check`` only report what would change."""
    st = running_state(store, spec)
    if st.running:
        return st
    if check:
        st.changed = True
        return st
    prim_host, sec_host = cfg.pair_hosts(spec)
    launcher = AgentLauncher(cfg, store)
    # 1. leftovers of earlier (failed or superseded) deployments of this service
    for h in cfg.hosts:
        try:
            recs = launcher.agents.run(h.name, "nf", "list")
        except AgentError as exc:
            raise DeployError(f"service {spec.name}: cannot list instances on {h.name}: {exc}") from exc
        for rec in recs:
            if rec.get("service") == spec.name:
                try:
                    launcher.agents.run(h.name, "nf", "stop", "-i", str(rec["instance"]))
                except AgentError as exc:
                    raise DeployError(
                        f"service {spec.name}: cannot stop leftover {rec['instance']}: {exc}"
                    ) from exc
                st.stopped_leftovers.append(f"{rec['instance']}@{h.name}")
    # 2. lease: epoch + 1 fences anything older
    key = keyspace.lease(spec.name)
    cur = store.current(key)
    expected = cur.epoch if cur else 0
    pname = f"{spec.name}-p{expected + 1}"
    epoch = store.takeover(key, pname, expected, spec.lease_ttl_ms)
    if epoch is None:
        raise DeployError(f"service {spec.name}: lease {key} moved while deploying (another deployer?)")
    # 3. secondary, then the primary replicating to it
    try:
        sec = launcher.launch(launch_spec(spec, f"{spec.name}-s{epoch}", "secondary", epoch), host=sec_host)
        prim = launcher.launch(launch_spec(spec, pname, "primary", epoch, (sec.repl_addr,)), host=prim_host)
    except LaunchError as exc:
        raise DeployError(f"service {spec.name}: {exc}") from exc
    # 4. steering for every group
    table = SteeringTable(store)
    for g in range(spec.flow_groups):
        table.put(
            SteeringEntry(
                service=spec.name,
                group=str(g),
                primary=prim,
                secondaries=(sec,),
                epoch=epoch,
                lease=spec.name,
            )
        )

    log.info(
        "service %s deployed: %s@%s -> %s@%s, epoch %d",
        spec.name,
        prim.instance,
        prim_host,
        sec.instance,
        sec_host,
        epoch,
    )
    return ServiceState(
        spec.name, True, True, st.reason, epoch, asdict(prim), [asdict(sec)], st.stopped_leftovers
    )


def remove_service(cfg: DeployConfig, store: Any, name: str) -> list[str]:
    """Undeploy service ``name``: delete its steering entries first (so the failure detector stops
    watching it), then stop every instance any agent lists for it. Returns ``instance@host``."""
    table = SteeringTable(store)
    for e in table.entries(name):
        table.delete(name, e.group)
    launcher = AgentLauncher(cfg, store)
    stopped: list[str] = []
    for h in cfg.hosts:
        try:
            recs = launcher.agents.run(h.name, "nf", "list")
            for rec in recs:
                if rec.get("service") == name:
                    launcher.agents.run(h.name, "nf", "stop", "-i", str(rec["instance"]))
                    stopped.append(f"{rec['instance']}@{h.name}")
        except AgentError as exc:
            raise DeployError(f"remove {name}: {exc}") from exc
    return stopped
