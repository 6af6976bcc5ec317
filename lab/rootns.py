"""Changes the lab makes in the root namespace, each one recorded so it can be undone exactly.

Per lab: the ``<name>-mgmt`` bridge (holding the hosts' gateway ``.1``), the ``<name>-data`` bridge
(underlay, MTU 1600) and one ``iptables -t nat POSTROUTING MASQUERADE`` rule for the management
subnet, tagged with the comment ``deft-lab:<name>`` - so lab hosts reach the Debian mirror and PyPI
(``apt``/``pip`` inside hosts work) through the machine's own uplink.

Machine-wide, shared by all labs that are up (see :class:`lab.state.RootChanges`):
``net.ipv4.ip_forward=1``; ``/usr/sbin/policy-rc.d`` (``exit 101``) so that ``apt install`` of a
daemon package inside a host never auto-starts the daemon (lab hosts share the dpkg database; daemons
are run by the Ansible ``services`` role under supervisord); and the mount-point directories of
:data:`lab.privdirs.PRIVATE_DIRS`, which must exist in the shared filesystem before a host can
bind-mount over them. The first lab up makes these changes; the last lab down restores them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
from pathlib import Path

from lab import netns
from lab.config import LabConfig
from lab.privdirs import PRIVATE_DIRS
from lab.state import RootChanges

log = logging.getLogger(__name__)

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
POLICY_RC = Path("/usr/sbin/policy-rc.d")
POLICY_RC_TEXT = (
    "#!/bin/sh\n# Installed by `deftctl lab up` (DEFT-RL): lab hosts share the dpkg database, so package\n"
    "# installs must not start daemons; the Ansible services role runs them. Removed by `deftctl lab down`.\n"
    "exit 101\n"
)


class LabError(RuntimeError):
    """The lab cannot be brought up or down; the message says what is wrong and what to do."""


def nat_rule(cfg: LabConfig) -> list[str]:
    """The POSTROUTING rule spec (without -A/-D) for the lab's management subnet."""
    return [
        "POSTROUTING", "-s", cfg.mgmt_subnet, "!", "-d", cfg.mgmt_subnet, "-j", "MASQUERADE",
        "-m", "comment", "--comment", f"deft-lab:{cfg.name}",
    ]  # fmt: skip


def check_subnets_free(cfg: LabConfig) -> None:
    """Refuse subnets that collide with a route the lab does not own (another lab, the uplink)."""
    routes = json.loads(netns.run(["ip", "-j", "-4", "route", "show"]).stdout or "[]")
    ours = {cfg.mgmt_bridge, cfg.data_bridge}
    for key, net in (("mgmt_subnet", cfg.mgmt_net), ("data_subnet", cfg.data_net)):
        for r in routes:
            dst = r.get("dst", "")
            if dst == "default" or r.get("dev") in ours:
                continue
            try:
                other = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
            except ValueError:
                continue
            if net.overlaps(other):
                raise LabError(
                    f"{key} {net} overlaps route {dst} on {r.get('dev')} (another lab or the uplink); "
                    f"choose another --{key.replace('_', '-')}"
                )


def setup_bridges(cfg: LabConfig) -> list[str]:
    """Create (idempotently) the lab's two root bridges; returns their names."""
    netns.add_bridge(cfg.mgmt_bridge, f"{cfg.mgmt_gateway}/{cfg.mgmt_net.prefixlen}")
    netns.add_bridge(cfg.data_bridge, mtu=cfg.data_mtu)
    return [cfg.mgmt_bridge, cfg.data_bridge]


def add_nat(cfg: LabConfig) -> list[str]:
    rule = nat_rule(cfg)
    if netns.run(["iptables", "-t", "nat", "-C", *rule], check=False).returncode != 0:
        netns.run(["iptables", "-t", "nat", "-A", *rule])
        log.info("added NAT: iptables -t nat -A %s", " ".join(rule))
    return rule


def del_nat(rule: list[str]) -> None:
    """Delete every copy of ``rule`` (a crash between -A and the state write could leave two)."""
    if not rule:
        return
    for _ in range(10):
        if netns.run(["iptables", "-t", "nat", "-D", *rule], check=False).returncode != 0:
            return


def apply_machine_changes(rc: RootChanges, lab_name: str) -> RootChanges:
    """Make the machine-wide changes (idempotent), recording only what this code changed."""
    current = IP_FORWARD.read_text().strip()
    if current != "1":
        if rc.ip_forward_before is None:
            rc.ip_forward_before = current
        IP_FORWARD.write_text("1\n")
        log.info("set net.ipv4.ip_forward=1 (was %s)", current)
    if not POLICY_RC.exists():
        POLICY_RC.write_text(POLICY_RC_TEXT)
        POLICY_RC.chmod(0o755)
        rc.policy_rc_added = True
        log.info("installed %s (exit 101: packages do not start daemons)", POLICY_RC)
    for path in PRIVATE_DIRS:
        p = Path(path)
        missing = []
        while not p.exists():
            missing.append(str(p))
            p = p.parent
        if missing:
            Path(path).mkdir(parents=True)
            rc.created_dirs.extend(d for d in reversed(missing) if d not in rc.created_dirs)
    if lab_name not in rc.labs:
        rc.labs.append(lab_name)
    return rc


def restore_machine_changes(rc: RootChanges, lab_name: str) -> RootChanges:
    """Forget ``lab_name``; when no lab is left, undo every recorded machine-wide change."""
    if lab_name in rc.labs:
        rc.labs.remove(lab_name)
    if rc.labs:
        return rc
    if rc.ip_forward_before is not None:
        IP_FORWARD.write_text(rc.ip_forward_before + "\n")
        log.info("restored net.ipv4.ip_forward=%s", rc.ip_forward_before)
        rc.ip_forward_before = None
    if rc.policy_rc_added:
        with contextlib.suppress(FileNotFoundError):
            if POLICY_RC.read_text() == POLICY_RC_TEXT:
                POLICY_RC.unlink()
                log.info("removed %s", POLICY_RC)
        rc.policy_rc_added = False
    for d in sorted(rc.created_dirs, key=len, reverse=True):
        try:
            Path(d).rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.info("left %s in place (not empty: something else uses it): %s", d, exc.strerror)
    rc.created_dirs = []
    return rc
