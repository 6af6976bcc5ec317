"""Changes the lab makes in the root namespace, each one recorded so it can be undone exactly.

Per lab: the ``<name>-mgmt`` bridge (holding the hosts' gateway ``.1``), the ``<name>-data`` bridge
(underlay, MTU 1600) and one ``iptables -t nat POSTROUTING MASQUERADE`` rule for the management
subnet, tagged with the comment ``deft-lab:<name>`` - so lab hosts reach the Debian mirror and PyPI
(``apt``/``pip`` inside hosts work) through the machine's own uplink.

Machine-wide, shared by all labs that are up (see :class:`lab.state.RootChanges`):
``net.ipv4.ip_forward=1``; the socket buffer sysctls of :data:`SOCKET_BUFFER_SYSCTLS` (raised, never
lowered); ``/usr/sbin/policy-rc.d`` (``exit 101``) so that ``apt install`` of a
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
from collections.abc import Iterator
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

#: Socket buffer sizes (bytes) the lab raises machine-wide. On a server the ``common`` role sets these
#: per host; the lab's hosts share one kernel where ``net.core.*`` is read-only inside a network
#: namespace, so ``lab up`` sets them for all hosts. Why it matters: the userspace OVS datapath reads
#: every port through an AF_PACKET socket sized by ``rmem_default`` (212992 bytes by default, ~4 ms
#: of 64-byte packets at 50 kpps); on a loaded 2-core machine ovs-vswitchd is descheduled longer
#: than that and the socket drops packets that no port counter shows (``ss -f link -m``: ``d<N>``).
SOCKET_BUFFER_SYSCTLS: dict[str, int] = {
    "net.core.rmem_max": 16 * 1024 * 1024,
    "net.core.wmem_max": 16 * 1024 * 1024,
    "net.core.rmem_default": 4 * 1024 * 1024,
    "net.core.wmem_default": 1024 * 1024,
}


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def raise_socket_buffers() -> dict[str, str]:
    """Raise every sysctl of :data:`SOCKET_BUFFER_SYSCTLS` that is below its value (machine-wide,
    from the root namespace); returns ``{name: value before}`` of those it changed."""
    changed: dict[str, str] = {}
    for name, want in SOCKET_BUFFER_SYSCTLS.items():
        path = _sysctl_path(name)
        before = path.read_text().strip()
        if int(before) < want:
            path.write_text(f"{want}\n")
            changed[name] = before
            log.info("raised %s to %d (was %s)", name, want, before)
    return changed


@contextlib.contextmanager
def socket_buffers_raised() -> Iterator[dict[str, str]]:
    """:func:`raise_socket_buffers` for the duration of a block (tests and benchmarks that run their
    own userspace OVS without a lab); restores exactly what it changed, even on failure."""
    before = raise_socket_buffers()
    try:
        yield before
    finally:
        restore_sysctls(before)


def restore_sysctls(before: dict[str, str]) -> None:
    """Write back the values :func:`raise_socket_buffers` returned."""
    for name, value in before.items():
        _sysctl_path(name).write_text(value + "\n")
        log.info("restored %s=%s", name, value)


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
    for name, before in raise_socket_buffers().items():
        rc.sysctls_before.setdefault(name, before)
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
    restore_sysctls(rc.sysctls_before)
    rc.sysctls_before = {}
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
