"""Instance launchers: how failover, migration and the balancer start (and stop) NF instances.

Why pluggable: the control logic (:mod:`nf.failover`, :mod:`nf.migration`, :mod:`nf.balancer`) only
needs "start an instance of this lease, in this role, at this epoch, not on these hosts, and tell
me its endpoint". In production the host agent starts a container (its Docker launcher implements
:class:`InstanceLauncher`); tests, benchmarks and the namespace lab use :class:`ProcessLauncher`,
which runs ``python -m nf.instance`` (the same program the container runs) in a network
namespace per host slot.

:class:`LaunchSpec` carries everything an instance YAML (``nf.instance_config.InstanceConfig``)
needs apart from the host-specific addresses, so a spec recorded in the store's instance registry
(``instance/<id>``, :func:`record_instance`) is enough to start a replacement anywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import yaml

from deftctl.config import from_dict, to_dict
from lab.netns import popen, stop_process
from nf.control import ControlClient, ControlError
from nf.steering import Endpoint
from nf.store import keys as keyspace
from nf.store.base import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchSpec:
    """What to start (host-independent part of an instance config)."""

    name: str
    lease: str
    role: str = "secondary"
    epoch: int = 1
    workers: int = 1
    flow_groups: int = 64
    #: base replication addresses (``ip:repl_port``) the instance replicates to
    replicas: tuple[str, ...] = ()
    #: ``nf`` section of the instance config (type and its settings)
    nf: Mapping[str, Any] = field(default_factory=lambda: {"type": "counter"})
    #: ``engine`` section (batch_size, batch_timeout_ms, ...)
    engine: Mapping[str, Any] = field(default_factory=dict)
    #: statestore contract file for the instance (``None``: no store)
    statestore: str | None = None
    #: hosts the instance must not run on (the primary's host for a secondary)
    exclude_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keyspace.segment(self.name, "instance name")
        if self.role not in ("primary", "secondary"):
            raise ValueError(f"launch {self.name}: role {self.role!r} must be primary or secondary")


class LaunchError(RuntimeError):
    """An instance could not be started; the message names it and says why."""


class InstanceLauncher(Protocol):
    """Starts and stops NF instances somewhere in the cluster."""

    def launch(self, spec: LaunchSpec, host: str | None = None) -> Endpoint:
        """Start ``spec`` (on ``host`` when given, else on any host not in ``spec.exclude_hosts``);
        returns once the instance answers ``status``."""
        ...

    def stop(self, instance: str) -> None:
        """Stop (SIGTERM, then SIGKILL) the instance; no error when already gone."""
        ...


def record_instance(store: StateStore, spec: LaunchSpec, ep: Endpoint) -> None:
    """Registry entry ``instance/<name>`` = spec + endpoint (JSON), for FDUs and replacements."""
    doc = {"spec": to_dict(spec), "endpoint": to_dict(ep)}
    store.put(keyspace.instance(spec.name), json.dumps(doc, sort_keys=True).encode())


def lookup_instance(store: StateStore, name: str) -> tuple[LaunchSpec, Endpoint] | None:
    raw = store.get(keyspace.instance(name))
    if raw is None:
        return None
    doc = json.loads(raw)
    src = keyspace.instance(name)
    return from_dict(LaunchSpec, doc["spec"], src), from_dict(Endpoint, doc["endpoint"], src)


def forget_instance(store: StateStore, name: str) -> None:
    store.delete(keyspace.instance(name))


@dataclass(frozen=True)
class HostSlot:
    """A place where :class:`ProcessLauncher` may run one instance (a lab host's address)."""

    host: str
    host_index: int
    ip: str
    mac: str = "02:00:00:00:00:00"
    #: network namespace of the host (``None``: this namespace)
    ns: str | None = None
    ovs_port: str = ""


class ProcessLauncher:
    """Runs instances as ``python -m nf.instance`` processes, one per :class:`HostSlot`.

    Control goes through a Unix socket under ``workdir`` (visible from every namespace on the
    machine). ``kill`` (SIGKILL of the whole process group) is what failure tests use.
    """

    def __init__(
        self,
        slots: Sequence[HostSlot],
        workdir: Path,
        data_port: int = 9000,
        dup_port: int = 9100,
        repl_port: int = 9200,
        start_timeout_s: float = 30.0,
        store: StateStore | None = None,
    ) -> None:
        self.slots = list(slots)
        self.workdir = workdir
        self.ports = (data_port, dup_port, repl_port)
        self.start_timeout_s = start_timeout_s
        self.store = store
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.where: dict[str, HostSlot] = {}
        self.endpoints: dict[str, Endpoint] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    def _free_slot(self, spec: LaunchSpec, host: str | None) -> HostSlot:
        used = {s.ip for n, s in self.where.items() if n in self.procs and self.procs[n].poll() is None}
        for s in self.slots:
            if host is not None and s.host != host:
                continue
            if s.ip in used or s.host in spec.exclude_hosts:
                continue
            return s
        raise LaunchError(
            f"launch {spec.name}: no free host slot (excluded: {', '.join(spec.exclude_hosts) or '-'}; "
            f"in use: {', '.join(sorted(used)) or '-'})"
        )

    def launch(self, spec: LaunchSpec, host: str | None = None) -> Endpoint:
        """Start ``spec`` (on ``host`` when given, else on the first free allowed slot)."""
        if spec.name in self.procs and self.procs[spec.name].poll() is None:
            raise LaunchError(f"launch {spec.name}: already running")
        slot = self._free_slot(spec, host)
        data_port, dup_port, repl_port = self.ports
        sock = self.workdir / f"{spec.name}.sock"
        cfg = {
            "name": spec.name, "lease": spec.lease, "role": spec.role, "epoch": spec.epoch,
            "data_ip": slot.ip, "data_port": data_port, "dup_port": dup_port, "repl_port": repl_port,
            "workers": spec.workers, "flow_groups": spec.flow_groups, "replicas": list(spec.replicas),
            "control_socket": str(sock), "statestore": spec.statestore,
            "engine": dict(spec.engine), "nf": dict(spec.nf),
        }
        path = self.workdir / f"{spec.name}.yml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        logf = (self.workdir / f"{spec.name}.log").open("ab")
        proc = popen(
            [sys.executable, "-m", "nf.instance", "--config", str(path)],
            ns=slot.ns, stdout=logf, stderr=subprocess.STDOUT,
        )
        logf.close()
        self.procs[spec.name] = proc
        self.where[spec.name] = slot
        ep = Endpoint(
            instance=spec.name, host=slot.host, host_index=slot.host_index, ip=slot.ip, mac=slot.mac,
            data_port=data_port, dup_port=dup_port, repl_port=repl_port, workers=spec.workers,
            ovs_port=slot.ovs_port, control=str(sock),
        )
        self._wait_ready(spec.name, proc, str(sock))
        self.endpoints[spec.name] = ep
        if self.store is not None:
            record_instance(self.store, spec, ep)
        log.info("launched %s (%s of lease %s, epoch %d) on %s %s", spec.name, spec.role, spec.lease,
                 spec.epoch, slot.host, slot.ip)
        return ep

    def _wait_ready(self, name: str, proc: subprocess.Popen[bytes], sock: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                with ControlClient(sock, timeout_s=2.0) as cc:
                    cc.status()
                return
            except ControlError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    stop_process(proc)
                    raise LaunchError(f"instance {name} did not start:\n{self.log(name)}") from None
                time.sleep(0.05)

    def log(self, name: str) -> str:
        p = self.workdir / f"{name}.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def respec(self, name: str, **changes: Any) -> LaunchSpec:
        """The spec ``name`` was launched with (from the YAML), with ``changes`` applied."""
        cfg = yaml.safe_load((self.workdir / f"{name}.yml").read_text(encoding="utf-8"))
        spec = LaunchSpec(
            name=cfg["name"], lease=cfg["lease"], role=cfg["role"], epoch=cfg["epoch"],
            workers=cfg["workers"], flow_groups=cfg["flow_groups"], replicas=tuple(cfg["replicas"]),
            nf=cfg["nf"], engine=cfg["engine"], statestore=cfg["statestore"],
        )
        return replace(spec, **changes)

    def stop(self, instance: str) -> None:
        proc = self.procs.get(instance)
        if proc is not None:
            stop_process(proc)
        if self.store is not None:
            with contextlib.suppress(Exception):
                forget_instance(self.store, instance)

    def kill(self, instance: str) -> None:
        """SIGKILL the instance's process group (crash injection)."""
        proc = self.procs[instance]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def alive(self, instance: str) -> bool:
        proc = self.procs.get(instance)
        return proc is not None and proc.poll() is None

    def close(self) -> None:
        for name in list(self.procs):
            stop_process(self.procs[name])
        self.procs.clear()

    def __enter__(self) -> ProcessLauncher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
