"""``/etc/deft/deploy.yml``: the hosts, SSH settings and declared DEFT services (rendered by roles/nf).

Loaded with the one config loader (:func:`deftctl.config.load`), so an unknown key or a wrong type
is an error naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.remote import SshConfig
from deftctl.config import ConfigError, load

DEFAULT_PATH = Path("/etc/deft/deploy.yml")


@dataclass(frozen=True)
class HostEntry:
    """An NFV host whose agent may run NF instances."""

    name: str  # inventory hostname (= the agent's hostname = Endpoint.host)
    address: str  # SSH address (management network)
    host_index: int
    ssh_port: int = 22


@dataclass(frozen=True)
class ServiceSpec:
    """One DEFT service: a primary/secondary pair of ``nf_type`` serving every flow group.

    ``primary_host``/``secondary_host`` default to the first two hosts of the config. ``engine``
    is the instance's ``engine`` section (batch_size in packets, batch_timeout_ms in ms, ...);
    ``nf`` extra keys of the ``nf`` section (e.g. ``firewall: {...}``).
    """

    name: str
    nf_type: str = "counter"
    instances: int = 2
    primary_host: str = ""
    secondary_host: str = ""
    workers: int = 1
    flow_groups: int = 64
    batch_size: int = 32
    engine: dict[str, Any] = field(default_factory=dict)
    nf: dict[str, Any] = field(default_factory=dict)
    lease_ttl_ms: int = 2000

    def __post_init__(self) -> None:
        if self.instances != 2:
            raise ValueError(f"service {self.name}: instances: only 2 (primary + secondary) is supported")
        if self.workers < 1 or self.flow_groups < 1 or self.batch_size < 1:
            raise ValueError(f"service {self.name}: workers, flow_groups and batch_size must be >= 1")
        if self.primary_host and self.primary_host == self.secondary_host:
            raise ValueError(f"service {self.name}: primary_host and secondary_host must differ")


@dataclass(frozen=True)
class DeployConfig:
    """The whole file."""

    hosts: list[HostEntry] = field(default_factory=list)
    ssh: SshConfig = field(default_factory=SshConfig)
    #: argv prefix of the agent CLI on the hosts
    agent_command: list[str] = field(default_factory=lambda: ["/opt/deft/venv/bin/python", "-m", "agent"])
    #: state-store contract file on this host (None: $DEFT_STATESTORE or /etc/deft/statestore.yml)
    statestore: str | None = None
    services: list[ServiceSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError(f"hosts: duplicate names in {names}")
        svcs = [s.name for s in self.services]
        if len(set(svcs)) != len(svcs):
            raise ValueError(f"services: duplicate names in {svcs}")
        for s in self.services:
            for h in (s.primary_host, s.secondary_host):
                if h and h not in names:
                    raise ValueError(f"service {s.name}: host {h!r} is not in hosts ({names})")

    def host(self, name: str) -> HostEntry:
        for h in self.hosts:
            if h.name == name:
                return h
        raise ConfigError(
            f"host {name!r} is not in the deploy config (hosts: {[h.name for h in self.hosts]})"
        )

    def pair_hosts(self, spec: ServiceSpec) -> tuple[str, str]:
        """(primary host, secondary host) of ``spec``: declared, else the first two hosts."""
        names = [h.name for h in self.hosts]
        prim = spec.primary_host or (names[0] if names else "")
        sec = spec.secondary_host or next((n for n in names if n != prim), "")
        if not prim or not sec:
            raise ConfigError(f"service {spec.name}: needs two hosts, config has {names}")
        return prim, sec


def load_config(path: Path | str | None = None) -> DeployConfig:
    """Read ``path`` (default ``/etc/deft/deploy.yml``)."""
    return load(DeployConfig, path or DEFAULT_PATH)
