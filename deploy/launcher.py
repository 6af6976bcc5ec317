"""``nf.launcher.InstanceLauncher`` over the agents: NF instances are started by the agent of the
chosen host (``agent nf start``, its docker launcher on NFV hosts), reached over SSH.

The failure detector and :mod:`deploy.service` use it, so a replacement secondary after a failover
is a container on another host, exactly like the instances Ansible deployed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from deftctl.config import ConfigError, from_dict
from deploy.agentssh import AgentError, AgentSsh
from deploy.config import DeployConfig
from nf.launcher import LaunchError, LaunchSpec, lookup_instance
from nf.steering import Endpoint

log = logging.getLogger(__name__)


def start_args(spec: LaunchSpec, service: str) -> list[str]:
    """``agent nf start`` arguments for ``spec`` (``--set`` values are YAML: JSON works)."""
    nf = dict(spec.nf)
    nf_type = str(nf.pop("type", "counter"))
    sets = {
        "lease": spec.lease,
        "epoch": spec.epoch,
        "workers": spec.workers,
        "flow_groups": spec.flow_groups,
        "replicas": list(spec.replicas),
        "engine": dict(spec.engine),
        "nf": nf,
    }
    args = ["nf", "start", "-i", spec.name, "-t", nf_type, "--role", spec.role, "--service", service]
    for k, v in sets.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    return args


class AgentLauncher:
    """Starts/stops instances through the agents of ``cfg.hosts`` (see module docstring)."""

    def __init__(self, cfg: DeployConfig, store: Any = None, ready_timeout_s: float = 60.0) -> None:
        self.cfg = cfg
        self.store = store
        self.agents = AgentSsh(cfg)
        self.ready_timeout_s = ready_timeout_s
        self.hosts: dict[str, str] = {}  # instance -> host it was started on

    def pick_host(self, spec: LaunchSpec) -> str:
        """The first configured host not excluded by ``spec``."""
        for h in self.cfg.hosts:
            if h.name not in spec.exclude_hosts:
                return h.name
        raise LaunchError(f"launch {spec.name}: every host is excluded ({', '.join(spec.exclude_hosts)})")

    def launch(self, spec: LaunchSpec, host: str | None = None) -> Endpoint:
        where = host or self.pick_host(spec)
        args = [*start_args(spec, spec.lease), "--ready-timeout", str(self.ready_timeout_s)]
        try:
            doc = self.agents.run(where, *args)
            ep = from_dict(Endpoint, doc["endpoint"], f"{spec.name} endpoint from {where}")
        except (AgentError, ConfigError, KeyError, TypeError) as exc:
            raise LaunchError(f"launch {spec.name} on {where}: {exc}") from exc
        self.hosts[spec.name] = where
        log.info("started %s (%s, epoch %d) on %s at %s", spec.name, spec.role, spec.epoch, where, ep.ip)
        return ep

    def host_of(self, instance: str) -> str | None:
        if instance in self.hosts:
            return self.hosts[instance]
        if self.store is not None:
            found = lookup_instance(self.store, instance)
            if found is not None:
                return found[1].host
        return None

    def stop(self, instance: str) -> None:
        host = self.host_of(instance)
        if host is None:
            raise LaunchError(f"stop {instance}: unknown host (not started here, not in the registry)")
        try:
            self.agents.run(host, "nf", "stop", "-i", instance)
        except AgentError as exc:
            raise LaunchError(f"stop {instance} on {host}: {exc}") from exc
        self.hosts.pop(instance, None)
