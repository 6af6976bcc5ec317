"""Configuration of the agent: the telemetry contract file and the agent's own settings.

Two files, two owners:

* ``/etc/deft/telemetry.yml`` (:class:`TelemetryConfig`) is written by the ``influxdb`` Ansible
  role: where InfluxDB is and how to authenticate. The agent, the placement service and the
  dashboards all read it, so it holds nothing agent-specific.
* ``/etc/deft/agent.yml`` (:class:`AgentConfig`, ``deftctl agent run --config``) is written by the
  ``agent`` role: interval, spool bounds, what to collect, how to launch NF instances.

Both are loaded with :func:`deftctl.config.load` (strict: unknown keys and wrong types are errors
that name the file and the key).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from deftctl import config as cfg

DEFAULT_TELEMETRY_FILE = Path("/etc/deft/telemetry.yml")
DEFAULT_AGENT_FILE = Path("/etc/deft/agent.yml")


@dataclass(frozen=True)
class TelemetryConfig:
    """Where telemetry goes (contract file ``/etc/deft/telemetry.yml``).

    ``flavor``: ``v1`` = InfluxDB 1.x (``/write`` + ``/query``, user/password auth; what Debian
    ships); ``v2`` = InfluxDB 2.x or 3.x (writes through influxdb-client's ``/api/v2/write`` with a
    token; InfluxQL reads through the v1-compatible ``/query`` endpoint, where ``database`` names
    the bucket's DBRP mapping — for 3.x simply the database name).
    """

    url: str = "http://127.0.0.1:8086"
    flavor: Literal["v1", "v2"] = "v1"
    database: str = "deft"
    bucket: str = ""
    org: str = ""
    token: str = ""
    user: str = ""
    password: str = ""
    retention_policy: str = ""
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        u = urlparse(self.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"url: expected http(s)://host:port, got {self.url!r}")
        if not self.database:
            raise ValueError("database: must not be empty")
        if self.flavor == "v2" and not self.token:
            raise ValueError("token: required when flavor is v2")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s: must be > 0, got {self.timeout_s}")

    @property
    def write_bucket(self) -> str:
        """Bucket for v2 writes: ``bucket`` or, when empty, ``database``."""
        return self.bucket or self.database


@dataclass(frozen=True)
class DockerLauncherConfig:
    """NF instances as containers of the runtime image on the host's OVS ``br-int``.

    The port is made by the docker role's ``deft-ovs-attach`` helper (ovs-docker style, with TX
    checksum offload off for the userspace datapath) — the one mechanism for container ports."""

    image: str = ""  # empty = the reference in image_ref_file (written by the docker role)
    image_ref_file: Path = Path("/etc/deft/runtime-image")
    docker_host: str = ""  # e.g. unix:///run/docker.sock; empty = docker's default
    bridge: str = "br-int"
    container_ifname: str = "eth1"
    prefix_len: int = 16  # the overlay is 10.80.0.0/16
    attach_script: str = "/usr/local/sbin/deft-ovs-attach"
    python: str = "python3"  # interpreter inside the runtime image
    config_dir: str = "/etc/deft/nf"  # where the instance config is mounted in the container


@dataclass(frozen=True)
class AgentConfig:
    """The agent daemon and its commands (``/etc/deft/agent.yml``)."""

    host: str = ""  # empty = this machine's hostname
    host_index: int = 0  # inventory host_index; instance k gets 10.80.<host_index>.(10+k)
    interval_s: float = 1.0
    telemetry_file: Path = DEFAULT_TELEMETRY_FILE
    state_dir: Path = Path("/var/lib/deft/agent")  # instance registry, logs of local NF processes
    spool_dir: Path = Path("/var/lib/deft/agent/spool")
    spool_max_bytes: int = 64 * 1024 * 1024
    batch_max_points: int = 5000  # InfluxDB's recommended batch size (lines)
    interfaces: tuple[str, ...] = ()  # empty = every interface except lo
    collect_host: bool = True
    collect_nics: bool = True
    collect_ovs: bool = True
    ovs_rundir: str = ""  # empty = $OVS_RUNDIR or /var/run/openvswitch
    launcher: Literal["process", "docker"] = "process"
    # Command of an NF instance; {python} {config} {instance} {nf_type} {control} are substituted
    # ({python}: this agent's interpreter for processes, docker.python inside containers).
    nf_command: tuple[str, ...] = ("{python}", "-m", "nf.instance", "--config", "{config}")
    # Base instance config (nf/instance_config.py YAML: engine knobs, statestore, ...) every
    # instance of this host starts from; `nf start --nf-config` / `--set` override it.
    nf_defaults: Path | None = None
    control_host: str = "127.0.0.1"  # where local NF control APIs listen (process launcher)
    control_port_base: int = 7400  # instance k's control API: base + k (docker: base, on its overlay IP)
    data_ip: str = "0.0.0.0"  # data-plane bind address of process instances
    port_base: int = 9000  # process instance k: data port base + stride*k, dup +32, repl +64
    port_stride: int = 100
    # State store contract file (nf/store): migrations, and the instance registry when
    # register_in_store is true (failover/migration find agent-started instances there).
    statestore: str | None = None
    register_in_store: bool = False
    docker: DockerLauncherConfig = field(default_factory=DockerLauncherConfig)

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"interval_s: must be > 0, got {self.interval_s}")
        if self.spool_max_bytes < 4096:
            raise ValueError(f"spool_max_bytes: must be >= 4096, got {self.spool_max_bytes}")
        if self.batch_max_points < 1:
            raise ValueError(f"batch_max_points: must be >= 1, got {self.batch_max_points}")
        if not self.nf_command:
            raise ValueError("nf_command: must not be empty")
        if self.port_stride < 96:
            raise ValueError(f"port_stride: must be >= 96 (data, dup +32, repl +64, 32 workers each), "
                             f"got {self.port_stride}")

    @property
    def hostname(self) -> str:
        return self.host or socket.gethostname()


def v1_client(conf: TelemetryConfig) -> Any:
    """An ``influxdb.InfluxDBClient`` for ``conf``: the v1 HTTP API (``/write``, ``/query``).

    One constructor for the writer and the query side: InfluxDB 1.x answers it with user/password,
    2.x/3.x answer ``/query`` (InfluxQL) with the token in the ``Authorization`` header.
    """
    import influxdb  # noqa: PLC0415 - only telemetry users need it

    u = urlparse(conf.url)
    headers = {"Authorization": f"Token {conf.token}"} if conf.flavor == "v2" else None
    return influxdb.InfluxDBClient(
        host=u.hostname or "127.0.0.1",
        port=u.port or (443 if u.scheme == "https" else 8086),
        username=conf.user or "root",
        password=conf.password or "root",
        database=conf.database,
        ssl=u.scheme == "https",
        verify_ssl=u.scheme == "https",
        timeout=conf.timeout_s,
        retries=1,
        path=u.path.strip("/"),
        headers=headers,
    )


def load_telemetry(path: Path | str = DEFAULT_TELEMETRY_FILE) -> TelemetryConfig:
    """Load the telemetry contract file (raises :class:`deftctl.config.ConfigError`)."""
    return cfg.load(TelemetryConfig, path)


def load_agent(path: Path | str | None = None) -> AgentConfig:
    """Load the agent config; ``None`` means ``/etc/deft/agent.yml`` if it exists, else defaults."""
    if path is None:
        if DEFAULT_AGENT_FILE.exists():
            return cfg.load(AgentConfig, DEFAULT_AGENT_FILE)
        return AgentConfig()
    return cfg.load(AgentConfig, path)
