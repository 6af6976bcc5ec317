"""State-store clients of the DEFT data plane: one interface, two real backends, one factory.

``/etc/deft/statestore.yml`` is the contract file written by the ``statestore`` Ansible role on every
host; :class:`StoreConfig` is its schema and :func:`open_store` turns it into a connected
:class:`~nf.store.base.StateStore`::

    backend: redis                 # or hazelcast
    endpoints: ["10.77.0.2:6379"]  # redis: the primary when no sentinels; hazelcast: members
    sentinels: ["10.77.0.2:26379", "10.77.0.3:26379", "10.77.0.4:26379"]   # optional (redis)
    master_name: deft              # sentinel service name
    password: null
    cluster_name: deft             # hazelcast cluster name
    wait_replicas: 1               # redis: WAIT for this many replicas after control writes

The environment variable ``DEFT_STATESTORE`` overrides the path (tests, several labs on one machine).
Backends are imported lazily so importing :mod:`nf.store` never pulls the Hazelcast client in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from deftctl.config import ConfigError, load
from nf.store.base import LeaseError, LeaseInfo, PrefixWatcher, StateStore, StoreError

DEFAULT_PATH = Path("/etc/deft/statestore.yml")
ENV_PATH = "DEFT_STATESTORE"
BACKENDS = ("redis", "hazelcast")

__all__ = [
    "BACKENDS",
    "DEFAULT_PATH",
    "LeaseError",
    "LeaseInfo",
    "PrefixWatcher",
    "StateStore",
    "StoreConfig",
    "StoreError",
    "load_config",
    "open_store",
]


@dataclass(frozen=True)
class StoreConfig:
    """Where the state store is and how strongly to write to it (the ``statestore`` role's output)."""

    backend: str = "redis"
    #: ``host:port`` of the Redis primary (without sentinels) or of the Hazelcast members
    endpoints: tuple[str, ...] = ("127.0.0.1:6379",)
    #: ``host:port`` of Redis Sentinels; when set, the primary is discovered (and re-discovered
    #: after a failover) through them and ``endpoints`` is ignored
    sentinels: tuple[str, ...] = ()
    master_name: str = "deft"
    password: str | None = None
    #: password of the sentinels themselves (``requirepass`` in sentinel.conf), if any
    sentinel_password: str | None = None
    db: int = 0
    cluster_name: str = "deft"
    #: Hazelcast IMap holding every key (one map keeps scans and CAS on one structure)
    map_name: str = "deft"
    #: Redis ``WAIT <n>`` after writes to the control namespaces (steering, leases, global state)
    #: so they survive the loss of the primary; 0 disables
    wait_replicas: int = 0
    #: WAIT timeout (ms); a timed-out WAIT is logged and counted, the write is not undone
    wait_timeout_ms: int = 200
    #: socket connect/read timeout (ms)
    timeout_ms: int = 2000
    #: how long a command is retried across a failover/reconnect before :class:`StoreError` (ms)
    retry_ms: int = 10000

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if not self.endpoints and not self.sentinels:
            raise ValueError("endpoints: at least one endpoint (or sentinel) is required")
        for ep in (*self.endpoints, *self.sentinels):
            split_endpoint(ep)
        if self.wait_replicas < 0:
            raise ValueError(f"wait_replicas: must be >= 0, got {self.wait_replicas}")
        if self.timeout_ms <= 0 or self.retry_ms < 0 or self.wait_timeout_ms < 0:
            raise ValueError("timeout_ms must be > 0; retry_ms and wait_timeout_ms >= 0")


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``"host:port"`` -> ``(host, port)``; ``ValueError`` naming the endpoint when malformed."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"endpoint {endpoint!r}: expected host:port")
    return host.strip("[]"), int(port)


def load_config(path: Path | str | None = None) -> StoreConfig:
    """Read the contract file (``path``, else ``$DEFT_STATESTORE``, else ``/etc/deft/statestore.yml``)."""
    p = Path(path or os.environ.get(ENV_PATH) or DEFAULT_PATH)
    if not p.exists():
        raise ConfigError(f"{p}: state-store contract file not found (written by the statestore role)")
    return load(StoreConfig, p)


def open_store(config: StoreConfig | Path | str | None = None) -> StateStore:
    """Connected store for ``config`` (a :class:`StoreConfig`, a YAML path, or ``None`` = default path)."""
    cfg = config if isinstance(config, StoreConfig) else load_config(config)
    if cfg.backend == "redis":
        from nf.store.redis_store import RedisStore  # noqa: PLC0415 - backends load lazily

        return RedisStore(cfg)
    from nf.store.hazelcast_store import HazelcastStore  # noqa: PLC0415 - backends load lazily

    return HazelcastStore(cfg)
