"""Traffic hosts from an Ansible inventory: the ``traffic`` group and its ``traffic_role`` hostvars.

Why ``ansible-inventory --list``: it is Ansible's own resolver, so INI/YAML files, ``group_vars``,
``host_vars``, children groups and plugins all resolve exactly as they do for ``site.yml``.

Hostvars used: ``traffic_role`` (client | sink), ``ansible_host``/``ansible_port``/``ansible_user``/
``ansible_ssh_private_key_file`` (SSH), ``overlay_ip`` (data address on the VXLAN overlay),
``deftctl_bin`` (path of ``deftctl`` on the host; unset: ``deftctl`` on the remote PATH, else the
controller's own ``deftctl`` path, which exists on lab hosts because they share the filesystem).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("client", "sink")


class InventoryError(ValueError):
    """The inventory cannot be read or lacks what a traffic run needs; the message says what."""


@dataclass(frozen=True)
class TrafficHost:
    name: str
    role: str
    ssh_host: str
    ssh_port: int
    ssh_user: str
    key_file: str
    mgmt_ip: str
    overlay_ip: str
    deftctl: str
    known_hosts: str = ""  # UserKnownHostsFile from ansible_ssh_common_args/extra_args
    strict_host_keys: bool = False  # StrictHostKeyChecking=yes there: unknown host keys are refused

    def data_ip(self, network: str) -> str:
        """Address other traffic hosts send to: the overlay IP, or the management IP."""
        if network == "overlay":
            if not self.overlay_ip:
                raise InventoryError(f"{self.name}: no overlay_ip hostvar; use --network mgmt")
            return self.overlay_ip
        if network == "mgmt":
            return self.mgmt_ip
        raise InventoryError(f"network {network!r} is not overlay or mgmt")


def load_inventory(path: Path | str) -> dict[str, Any]:
    exe = shutil.which("ansible-inventory")
    if not exe:
        raise InventoryError("ansible-inventory not found (pip install -r requirements.txt)")
    if not Path(path).exists():
        raise InventoryError(f"inventory {path} does not exist")
    cp = subprocess.run(
        [exe, "-i", str(path), "--list"], capture_output=True, text=True, timeout=120, check=False
    )
    if cp.returncode != 0:
        raise InventoryError(f"ansible-inventory -i {path} failed: {cp.stderr.strip()}")
    data: dict[str, Any] = json.loads(cp.stdout)
    return data


def group_hosts(data: dict[str, Any], group: str) -> list[str]:
    """Hosts of ``group`` including its children groups, in inventory order, without repeats."""
    out: list[str] = []
    todo, done = [group], set()
    while todo:
        g = todo.pop(0)
        if g in done:
            continue
        done.add(g)
        entry = data.get(g, {})
        for h in entry.get("hosts", []):
            if h not in out:
                out.append(h)
        todo.extend(entry.get("children", []))
    return out


def ssh_options(hv: dict[str, Any]) -> dict[str, str]:
    """``-o Key=Value`` options from ``ansible_ssh_common_args`` / ``ansible_ssh_extra_args``."""
    words = shlex.split(f"{hv.get('ansible_ssh_common_args', '')} {hv.get('ansible_ssh_extra_args', '')}")
    opts: dict[str, str] = {}
    for i, w in enumerate(words):
        val = words[i + 1] if w == "-o" and i + 1 < len(words) else (w[2:] if w.startswith("-o") else "")
        if "=" in val:
            k, v = val.split("=", 1)
            opts[k.strip().lower()] = v.strip()
    return opts


def _strip_prefix(ip: str) -> str:
    return ip.split("/", 1)[0] if ip else ""


def _host(name: str, hv: dict[str, Any], role: str) -> TrafficHost:
    ssh_host = str(hv.get("ansible_host", name))
    opts = ssh_options(hv)
    return TrafficHost(
        name=name, role=role, ssh_host=ssh_host, ssh_port=int(hv.get("ansible_port", 22)),
        ssh_user=str(hv.get("ansible_user", "root")),
        key_file=str(hv.get("ansible_ssh_private_key_file", "")),
        mgmt_ip=ssh_host, overlay_ip=_strip_prefix(str(hv.get("overlay_ip", ""))),
        deftctl=str(hv.get("deftctl_bin", "")),
        known_hosts=opts.get("userknownhostsfile", ""),
        strict_host_keys=opts.get("stricthostkeychecking", "").lower() == "yes",
    )


def traffic_hosts(path: Path | str) -> list[TrafficHost]:
    """The ``traffic`` group's hosts with their roles; errors name the host and the missing var."""
    data = load_inventory(path)
    names = group_hosts(data, "traffic")
    if not names:
        raise InventoryError(f"{path}: the traffic group has no hosts")
    hostvars: dict[str, dict[str, Any]] = data.get("_meta", {}).get("hostvars", {})
    hosts = []
    for n in names:
        hv = hostvars.get(n, {})
        role = str(hv.get("traffic_role", ""))
        if role not in ROLES:
            raise InventoryError(f"{path}: host {n}: traffic_role {role!r} must be client or sink")
        hosts.append(_host(n, hv, role))
    return hosts


def group_members(path: Path | str, group: str) -> list[TrafficHost]:
    """Any group's hosts with their SSH settings (``role`` empty), e.g. ``nfv`` or ``controller``
    for commands that drive NF hosts the same way traffic runs drive traffic hosts."""
    data = load_inventory(path)
    names = group_hosts(data, group)
    if not names:
        raise InventoryError(f"{path}: group {group!r} has no hosts")
    hostvars: dict[str, dict[str, Any]] = data.get("_meta", {}).get("hostvars", {})
    return [_host(n, hostvars.get(n, {}), "") for n in names]
