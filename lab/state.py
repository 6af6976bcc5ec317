"""What the lab changed, written down so ``lab down`` undoes exactly that and nothing else.

Two records live under the storage root (``/var/lib/deft-lab``):

- ``<lab>/state.json`` (:class:`LabState`): the lab's config, its hosts (namespace, keeper PID,
  mount-namespace inode) and the root-namespace objects it created (bridges, NAT rule).
- ``root-changes.json`` (:class:`RootChanges`): machine-wide changes shared by all labs that are up
  (``net.ipv4.ip_forward``, ``/usr/sbin/policy-rc.d``, mount-point directories created in the shared
  filesystem). They are made by the first lab that comes up and restored when the last one goes down.

Every change to these records happens under :func:`locked` (an ``flock`` on ``.lock``), so two
``lab up``/``lab down`` runs for different labs never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deftctl.config import from_dict, to_dict


@dataclass
class HostState:
    """One host as created: ``mntns`` identifies its mount namespace even after its keeper died."""

    host: str
    ns: str
    index: int
    mgmt_ip: str
    data_ip: str
    keeper_pid: int = 0
    mntns: int = 0


@dataclass
class LabState:
    """The record of one lab; ``config`` is the :class:`lab.config.LabConfig` as a dict."""

    name: str
    config: dict[str, Any]
    hosts: dict[str, HostState] = field(default_factory=dict)
    bridges: list[str] = field(default_factory=list)
    nat_rule: list[str] = field(default_factory=list)


@dataclass
class RootChanges:
    """Machine-wide changes, shared by the labs listed in ``labs``."""

    labs: list[str] = field(default_factory=list)
    ip_forward_before: str | None = None
    #: machine-wide sysctls the lab raised (see lab.rootns.SOCKET_BUFFER_SYSCTLS): name -> value before
    sysctls_before: dict[str, str] = field(default_factory=dict)
    policy_rc_added: bool = False
    created_dirs: list[str] = field(default_factory=list)


def state_path(storage_root: Path, name: str) -> Path:
    return storage_root / name / "state.json"


def load_state(storage_root: Path, name: str) -> LabState | None:
    path = state_path(storage_root, name)
    if not path.exists():
        return None
    return from_dict(LabState, json.loads(path.read_text()), source=str(path))


def save_state(storage_root: Path, state: LabState) -> None:
    _write_json(state_path(storage_root, state.name), to_dict(state))


def drop_state(storage_root: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(storage_root, name).unlink()


def load_root(storage_root: Path) -> RootChanges:
    path = storage_root / "root-changes.json"
    if not path.exists():
        return RootChanges()
    return from_dict(RootChanges, json.loads(path.read_text()), source=str(path))


def save_root(storage_root: Path, rc: RootChanges) -> None:
    path = storage_root / "root-changes.json"
    if not rc.labs and rc.ip_forward_before is None and not rc.policy_rc_added and not rc.created_dirs:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    _write_json(path, to_dict(rc))


@contextlib.contextmanager
def locked(storage_root: Path) -> Iterator[None]:
    """Serialise lab up/down across processes (blocking ``flock`` on ``<storage_root>/.lock``)."""
    storage_root.mkdir(parents=True, exist_ok=True)
    with open(storage_root / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
