"""The host's registry of NF instances: which instances this agent started and how to reach them.

Why a file: the daemon (which collects each instance's metrics) and the short-lived
``deftctl agent nf ...`` commands (run by the placement service over SSH) are different processes;
they share ``<state_dir>/instances.json``, guarded by ``flock`` and replaced atomically so a reader
never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from deftctl import config as cfg

INSTANCE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class RegistryError(ValueError):
    """Unknown or duplicate instance, bad instance name; the message names it."""


@dataclass(frozen=True)
class InstanceRecord:
    """One NF instance started by this host's agent.

    ``control`` is the ``host:port`` of the instance's control API (nf/control.py).
    For ``process`` instances ``pid``/``pid_create_time`` identify the process (the create time
    guards against pid reuse); for ``docker`` instances ``container_id``/``ovs_port`` the container
    and its port on ``br-int``.
    """

    instance: str
    nf_type: str
    launcher: Literal["process", "docker"]
    control: str
    index: int
    role: str = "primary"
    service: str = ""
    overlay_ip: str = ""
    pid: int = 0
    pid_create_time: float = 0.0
    container_id: str = ""
    ovs_port: str = ""
    log_path: str = ""
    config_path: str = ""  # the nf/instance_config.py YAML the instance runs with
    data_port: int = 0
    repl_port: int = 0
    dup_port: int = 0
    workers: int = 1
    data_ip: str = ""  # data-plane bind address from the instance config
    mac: str = ""  # MAC of the container's overlay interface (docker launcher)
    started_at_ns: int = 0
    command: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def check_instance_name(name: str) -> str:
    """Instance ids become tags, file names and container names: keep them simple."""
    if not INSTANCE_RE.match(name):
        raise RegistryError(f"bad instance name {name!r}: use 1-32 of [a-z0-9_-], starting alphanumeric")
    return name


class Registry:
    """``instances.json`` under ``state_dir`` (see module doc)."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / "instances.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".instances.lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read(self) -> dict[str, InstanceRecord]:
        try:
            raw: Any = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{self.path}: unreadable instance registry: {exc}") from exc
        return {k: cfg.from_dict(InstanceRecord, v, source=f"{self.path}: {k}") for k, v in raw.items()}

    def _write(self, recs: dict[str, InstanceRecord]) -> None:
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in sorted(recs.items())}, indent=1))
        tmp.replace(self.path)

    def all(self) -> list[InstanceRecord]:
        """Every registered instance (sorted by name)."""
        if not self.path.exists():
            return []
        with self._locked():
            return sorted(self._read().values(), key=lambda r: r.instance)

    def get(self, instance: str) -> InstanceRecord:
        """The record of ``instance``; :class:`RegistryError` if this host does not run it."""
        with self._locked():
            recs = self._read()
        if instance not in recs:
            known = ", ".join(sorted(recs)) or "none"
            raise RegistryError(f"unknown instance {instance!r} on this host (running: {known})")
        return recs[instance]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, InstanceRecord]]:
        """Read-modify-write under the lock: mutate the yielded dict, it is saved on success."""
        with self._locked():
            recs = self._read()
            yield recs
            self._write(recs)

    def endpoint(self, rec: InstanceRecord, host: str, host_index: int) -> dict[str, Any]:
        """The instance as ``nf.steering.Endpoint`` fields (what steering/failover/migration need)."""
        return {"instance": rec.instance, "host": host, "host_index": host_index,
                "ip": rec.overlay_ip or (rec.data_ip if rec.data_ip not in ("", "0.0.0.0")
                                         else rec.control.rpartition(":")[0]),
                # processes have no overlay interface: the same placeholder nf.launcher uses
                "mac": rec.mac or "02:00:00:00:00:00",
                "data_port": rec.data_port, "dup_port": rec.dup_port, "repl_port": rec.repl_port,
                "workers": rec.workers, "ovs_port": rec.ovs_port, "control": rec.control}

    def next_index(self, recs: dict[str, InstanceRecord]) -> int:
        """Smallest free instance index k >= 1 (overlay IP .10+k, control port base+k)."""
        used = {r.index for r in recs.values()}
        k = 1
        while k in used:
            k += 1
        return k
