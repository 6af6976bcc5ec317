"""``lab up`` / ``lab down`` / ``lab status``: build, repair, inspect and remove a lab.

How a host comes to life (``ensure_host``), in order:

1. private storage ``<storage_root>/<lab>/<host>/root/...`` for every path of
   :data:`lab.privdirs.PRIVATE_DIRS` (``/etc`` ones seeded once from the machine's copy, owner and mode
   copied so e.g. the ``redis`` user can write its private ``/var/lib/redis``);
2. network namespace ``<lab>-<host>``; ``eth0`` = veth to bridge ``<lab>-mgmt`` (default route via
   its ``.1``), ``eth1`` = veth to bridge ``<lab>-data`` (MTU 1600, no gateway);
3. the *keeper*: ``ip netns exec <ns> unshare --uts bash -c <boot script>`` sets the hostname, mounts
   ``/run`` (tmpfs), the private directories and the cgroup hierarchies, then becomes
   ``sleep infinity``; it holds the host's mount and UTS namespaces;
4. sshd, started with ``nsenter`` into the keeper's namespaces.

Every step checks what already exists, so ``up`` is idempotent and repairs a crashed host: a dead
sshd is restarted in the *same* mount namespace; a dead keeper is re-created by entering the
namespaces of any surviving process of the host (e.g. supervisord); only when nothing of the host's
mount namespace survives is the host rebuilt from scratch (its leftover processes are stopped and
the report says so). ``up`` with a different ``--hosts`` adds or removes hosts and re-addresses
``client``/``sink`` in place.

``down`` stops every process of every host (see :mod:`lab.procs`: namespace members and their
descendants, so supervisord children, dockerd and containers too), deletes the namespaces (their
veths go with them), the bridges and the NAT rule, and - when it is the last lab - restores the
machine-wide changes. The hosts' private mounts exist only in their mount namespaces, which vanish
with their last process. ``--purge`` also deletes the private storage and the inventory files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deftctl.config import from_dict, to_dict
from lab import inventory, netns, procs, rootns, sshd
from lab.config import STORAGE_ROOT, HostPlan, LabConfig
from lab.privdirs import KEEPER_ARGV0, PRIVATE_DIRS, boot_script, private_source
from lab.rootns import LabError
from lab.state import HostState, LabState, drop_state, load_root, load_state, locked, save_root, save_state

log = logging.getLogger(__name__)

KEEPER_TIMEOUT_S = 15.0


@dataclass
class UpReport:
    """What ``up`` did, one line per host, plus where the inventory went."""

    inventory: Path
    state_backend: str
    lines: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- up


def up(cfg: LabConfig) -> UpReport:
    """Bring the lab to the shape ``cfg`` describes (create, repair, grow or shrink); idempotent."""
    sshd.which_or_die("ip", "iptables", "nsenter", "unshare", "setsid", "ssh-keygen", sshd.SSHD)
    root = Path(cfg.storage_root)
    with locked(root):
        state = load_state(root, cfg.name)
        if state is not None:
            _check_compatible(state, cfg)
        else:
            state = LabState(name=cfg.name, config=to_dict(cfg))
        rootns.check_subnets_free(cfg)
        rc = rootns.apply_machine_changes(load_root(root), cfg.name)
        save_root(root, rc)
        state.config = to_dict(cfg)
        state.bridges = rootns.setup_bridges(cfg)
        save_state(root, state)
        state.nat_rule = rootns.add_nat(cfg)
        save_state(root, state)
        key = sshd.ensure_client_key(cfg.lab_dir)
        sshd.close_masters(cfg.lab_dir)  # a persisted master would keep a rebuilt host's old view
        sshd.mux_dir(cfg.lab_dir).mkdir(mode=0o700, exist_ok=True)
        plans = cfg.plan()
        report = UpReport(inventory=cfg.inventory_path, state_backend=cfg.state_backend)
        wanted = {p.host for p in plans}
        for host in sorted(set(state.hosts) - wanted):
            _remove_hosts([state.hosts[host]])
            del state.hosts[host]
            save_state(root, state)
            report.lines.append(f"{host}: removed (not in a {cfg.hosts}-NFV-host lab)")
        moved = _release_moved_addresses(plans, state)
        _flush_neighbours(moved, [p.ns for p in plans if netns.ns_exists(p.ns)])
        for plan in plans:
            hs, line = _ensure_host(cfg, plan, state.hosts.get(plan.host), key)
            state.hosts[plan.host] = hs
            save_state(root, state)
            report.lines.append(line)
        if moved:
            _flush_neighbours(moved, [p.ns for p in plans])
        inventory.write(cfg, plans, key)
        return report


def _release_moved_addresses(plans: list[HostPlan], state: LabState) -> list[str]:
    """Hosts whose index changed (``client``/``sink`` after a resize) give up their old addresses
    and stop their sshd *before* any host takes new ones, so no address is ever held twice.
    Returns every address that changed hands (old and new)."""
    moved: list[str] = []
    for plan in plans:
        hs = state.hosts.get(plan.host)
        if hs is None or (hs.mgmt_ip, hs.data_ip) == (plan.mgmt_ip, plan.data_ip):
            continue
        moved += [hs.mgmt_ip, hs.data_ip, plan.mgmt_ip, plan.data_ip]
        if netns.ns_exists(plan.ns):
            for dev in ("eth0", "eth1"):
                if netns.link_exists(dev, plan.ns):
                    netns.run(["ip", "-4", "addr", "flush", "dev", dev], ns=plan.ns, check=False)
        pid = sshd.sshd_pid(plan)
        if pid:
            _terminate(pid)
    return moved


def _flush_neighbours(ips: list[str], namespaces: list[str]) -> None:
    """Forget cached MACs of addresses that moved to another host (root namespace and every host),
    otherwise traffic to them keeps going to the previous holder until the ARP entry expires."""
    for ns in [None, *namespaces]:
        for ip in sorted(set(ips)):
            netns.run(["ip", "neigh", "flush", "to", ip], ns=ns, check=False)


def _check_compatible(state: LabState, cfg: LabConfig) -> None:
    old = state.config
    for key in ("mgmt_subnet", "data_subnet", "storage_root"):
        if str(old.get(key)) != str(getattr(cfg, key)) and state.hosts:
            raise LabError(
                f"lab {cfg.name!r} is up with {key}={old.get(key)}; `deftctl lab down --name {cfg.name}` "
                f"first to change it to {getattr(cfg, key)}"
            )


def _ensure_host(cfg: LabConfig, plan: HostPlan, hs: HostState | None, key: Path) -> tuple[HostState, str]:
    notes: list[str] = []
    if hs is not None and hs.mgmt_ip != plan.mgmt_ip:
        notes.append(f"re-addressed (host_index {hs.index} -> {plan.index}; re-run site.yml for this host)")
    _prepare_storage(plan.storage)
    config_changed = sshd.write_config(plan, key)
    netns.add_ns(plan.ns)
    _ensure_link(plan.ns, plan.mgmt_veth, "eth0", cfg.mgmt_bridge, None)
    _ensure_link(plan.ns, plan.data_veth, "eth1", cfg.data_bridge, cfg.data_mtu)
    if _set_only_addr(plan.ns, "eth0", f"{plan.mgmt_ip}/{plan.prefixlen}"):
        notes.append(f"management address now {plan.mgmt_ip}")
    if _set_only_addr(plan.ns, "eth1", f"{plan.data_ip}/{plan.data_prefixlen}"):
        notes.append(f"data address now {plan.data_ip}")
    netns.add_route(plan.ns, "default", via=cfg.mgmt_gateway, dev="eth0")

    keeper, how = _ensure_keeper(plan, hs)
    if how:
        notes.append(how)
    mntns = procs.pid_ns(keeper, "mnt") or 0
    pid = sshd.sshd_pid(plan)
    if pid and (procs.pid_ns(pid, "mnt") != mntns or config_changed):
        _terminate(pid)
        pid = None
        notes.append("sshd restarted (new config or namespace)")
    if pid is None:
        pid = sshd.start(plan, keeper)
        if not any("sshd" in n or "created" in n for n in notes):
            notes.append("sshd was down: restarted")
    new = HostState(plan.host, plan.ns, plan.index, plan.mgmt_ip, plan.data_ip, keeper, mntns)
    status = "; ".join(notes) if notes else "up (unchanged)"
    return new, f"{plan.host}: {plan.ns} {plan.mgmt_ip} - {status}"


def _prepare_storage(storage: Path) -> None:
    for path in PRIVATE_DIRS:
        src = private_source(storage, path)
        if src.exists():
            continue
        src.mkdir(parents=True)
        shared = Path(path)
        if shared.is_dir():
            if path.startswith("/etc/") and any(shared.iterdir()):
                netns.run(["cp", "-a", f"{shared}/.", str(src)])
            st = shared.stat()
            os.chown(src, st.st_uid, st.st_gid)
            src.chmod(st.st_mode & 0o7777)


def _ensure_link(ns: str, outer: str, inner: str, bridge: str, mtu: int | None) -> None:
    if netns.link_exists(outer) and not netns.link_exists(inner, ns):
        netns.del_link(outer)  # half-made pair from an interrupted run
    tmp = f"dl{os.getpid() % 100000}{inner[-1]}"
    netns.add_veth(outer, tmp, ns, inner_name=inner, bridge=bridge, mtu=mtu)


def _set_only_addr(ns: str, dev: str, cidr: str) -> bool:
    """Make ``cidr`` the only IPv4 address of ``dev``; True when something changed."""
    info = json.loads(netns.run(["ip", "-j", "-4", "addr", "show", "dev", dev], ns=ns).stdout or "[]")
    have = [f"{a['local']}/{a['prefixlen']}" for i in info for a in i.get("addr_info", [])]
    changed = False
    for other in have:
        if other != cidr:
            netns.run(["ip", "addr", "del", other, "dev", dev], ns=ns)
            changed = True
    if cidr not in have:
        netns.run(["ip", "addr", "add", cidr, "dev", dev], ns=ns)
        changed = changed or bool(have)
    return changed


def _keeper_ok(pid: int | None, ns: str) -> bool:
    if not procs.pid_alive(pid) or pid is None:
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return cmd == KEEPER_ARGV0 and procs.pid_ns(pid, "net") == procs.netns_inode(ns)


def _ensure_keeper(plan: HostPlan, hs: HostState | None) -> tuple[int, str]:
    """Return (keeper PID, note). Reuse, re-create inside surviving namespaces, or build afresh."""
    pidfile = plan.storage / "keeper.pid"
    pid = procs.read_pidfile(pidfile)
    if _keeper_ok(pid, plan.ns):
        assert pid is not None
        return pid, ""
    net = procs.netns_inode(plan.ns)
    if hs and hs.mntns:
        survivors = [p for p in procs.snapshot() if p.mntns == hs.mntns and p.netns == net]
        if survivors:
            target = survivors[0].pid
            script = (
                f"echo $$ > {pidfile}; : > {plan.storage}/keeper.ready; exec -a {KEEPER_ARGV0} sleep infinity"
            )
            pid = _start_keeper(
                plan, ["nsenter", f"--target={target}", "--mount", "--uts", "--net", "bash", "-c", script]
            )
            return pid, f"keeper re-created inside the surviving namespaces of pid {target}"
    leftovers = procs.host_pids(net, [])
    note = "created"
    if hs is not None:
        note = "re-created (its mount namespace was gone"
        if leftovers:
            note += f"; stopped {len(leftovers)} orphaned processes - re-run site.yml"
        note += ")"
    if leftovers:
        procs.kill_all(lambda: procs.host_pids(net, []))
    script = boot_script(plan.host, plan.storage, pidfile, plan.storage / "keeper.ready")
    pid = _start_keeper(plan, ["ip", "netns", "exec", plan.ns, "unshare", "--uts", "bash", "-c", script])
    return pid, note


def _start_keeper(plan: HostPlan, argv: list[str]) -> int:
    ready = plan.storage / "keeper.ready"
    pidfile = plan.storage / "keeper.pid"
    ready.unlink(missing_ok=True)
    pidfile.unlink(missing_ok=True)
    logf = plan.storage / "keeper.log"
    with open(logf, "w") as fh:
        subprocess.run(["setsid", "-f", *argv], stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, check=True)
    deadline = time.monotonic() + KEEPER_TIMEOUT_S
    while time.monotonic() < deadline:
        pid = procs.read_pidfile(pidfile)
        if ready.exists() and pid and _keeper_ok(pid, plan.ns):
            return pid
        time.sleep(0.05)
    raise LabError(f"host {plan.ns}: namespace setup failed: {logf.read_text().strip() or 'no output'}")


def _terminate(pid: int) -> None:
    procs.kill_all(lambda: {pid} if procs.pid_alive(pid) else set(), grace_s=3.0)


# ------------------------------------------------------------------------------------------- down


@dataclass
class DownReport:
    hosts: list[str] = field(default_factory=list)
    processes: int = 0
    removed: list[str] = field(default_factory=list)


def down(name: str = "lab", purge: bool = False, storage_root: Path = STORAGE_ROOT) -> DownReport:
    """Remove everything lab ``name`` (or anything run inside it) created; see module docstring."""
    root = Path(storage_root)
    report = DownReport()
    with locked(root):
        state = load_state(root, name)
        cfg = _config_of(state, name, root)
        hosts = list(state.hosts.values()) if state else []
        # Namespaces left behind without a state record (e.g. a crash before the first save).
        known = {h.ns for h in hosts}
        pattern = re.compile(rf"^{re.escape(name)}-(nfv\d+|client|sink)$")
        for ns in netns.list_ns():
            if ns not in known and pattern.match(ns):
                hosts.append(HostState(ns.split("-", 1)[1], ns, 0, "", ""))
        report.hosts = [h.host for h in hosts]
        report.processes = sshd.close_masters(cfg.lab_dir) + _remove_hosts(hosts)
        for br in (state.bridges if state else []) or [cfg.mgmt_bridge, cfg.data_bridge]:
            if netns.link_exists(br):
                netns.del_link(br)
                report.removed.append(f"bridge {br}")
        rule = (state.nat_rule if state else []) or rootns.nat_rule(cfg)
        rootns.del_nat(rule)
        save_root(root, rootns.restore_machine_changes(load_root(root), name))
        drop_state(root, name)
        if purge:
            shutil.rmtree(cfg.lab_dir, ignore_errors=True)
            inventory.remove(cfg)
            report.removed.append(f"storage {cfg.lab_dir} and inventory {cfg.inventory_path}")
    return report


def _config_of(state: LabState | None, name: str, root: Path) -> LabConfig:
    if state is None:
        return LabConfig(name=name, storage_root=root)
    data = dict(state.config)
    data.pop("hazelcast_archive", None)  # the archive may be gone by now; irrelevant for down
    return from_dict(LabConfig, data, source=f"{root / name / 'state.json'}: config")


def _remove_hosts(hosts: list[HostState]) -> int:
    """Stop every process of ``hosts`` (all at once, so daemons shut down in parallel) and delete them."""
    nets = {h.ns: procs.netns_inode(h.ns) for h in hosts}
    mnts = [h.mntns for h in hosts if h.mntns]
    mnts += [m for h in hosts if _keeper_ok(h.keeper_pid, h.ns) and (m := procs.pid_ns(h.keeper_pid, "mnt"))]

    def members() -> set[int]:
        snap = procs.snapshot()
        out: set[int] = set()
        for inode in nets.values():
            out |= procs.host_pids(inode, mnts, snap)
        return out | procs.host_pids(None, mnts, snap)

    count = procs.kill_all(members)
    for h in hosts:
        if netns.ns_exists(h.ns):
            netns.run(["ip", "netns", "del", h.ns], check=False)
    return count


# ----------------------------------------------------------------------------------------- status


def status(name: str = "lab", storage_root: Path = STORAGE_ROOT) -> dict[str, Any]:
    """Hosts, addresses, sshd and daemons alive per host (from processes in each host's namespaces)."""
    root = Path(storage_root)
    state = load_state(root, name)
    if state is None:
        return {"name": name, "up": False, "hosts": {}}
    cfg = _config_of(state, name, root)
    plans = {p.host: p for p in cfg.plan()}
    snap = procs.snapshot()
    hosts: dict[str, Any] = {}
    for host, hs in sorted(state.hosts.items(), key=lambda kv: kv[1].index):
        net = procs.netns_inode(hs.ns)
        members = procs.host_pids(net, [hs.mntns], snap) if (net or hs.mntns) else set()
        daemons = procs.daemons_in(members, snap)
        plan = plans.get(host)
        sshd_pid = sshd.sshd_pid(plan) if plan else None
        hosts[host] = {
            "namespace": hs.ns,
            "host_index": hs.index,
            "mgmt_ip": hs.mgmt_ip,
            "data_ip": hs.data_ip,
            "namespace_exists": net is not None,
            "keeper_alive": _keeper_ok(hs.keeper_pid, hs.ns),
            "sshd_pid": sshd_pid,
            "sshd_alive": sshd_pid is not None,
            "processes": len(members),
            "daemons": {k: sorted(v) for k, v in sorted(daemons.items()) if k != "sshd"},
        }
    return {
        "name": name,
        "up": all(h["sshd_alive"] and h["keeper_alive"] for h in hosts.values()) and bool(hosts),
        "config": dataclasses.asdict(cfg) | {"storage_root": str(cfg.storage_root)},
        "inventory": str(cfg.inventory_path),
        "state_backend": cfg.state_backend,
        "hosts": hosts,
    }


def exec_argv(name: str, host: str, argv: list[str], storage_root: Path = STORAGE_ROOT) -> list[str]:
    """``nsenter`` argv that runs ``argv`` with host ``host``'s view (network, hostname, private dirs).

    Unlike ``ip netns exec <ns>`` (which makes a fresh mount namespace without the private
    directories), this enters the keeper's namespaces - what an SSH session into the host sees.
    """
    state = load_state(Path(storage_root), name)
    if state is None or host not in state.hosts:
        raise LabError(f"lab {name!r} has no host {host!r} (`deftctl lab status --name {name}`)")
    hs = state.hosts[host]
    if not _keeper_ok(hs.keeper_pid, hs.ns):
        raise LabError(f"host {host} of lab {name!r} is not running; run `deftctl lab up --name {name}`")
    return ["nsenter", f"--target={hs.keeper_pid}", "--mount", "--uts", "--net", "--wd=/", *argv]


def host_run(
    name: str,
    host: str,
    argv: list[str],
    check: bool = True,
    timeout_s: float = 60.0,
    storage_root: Path = STORAGE_ROOT,
) -> str:
    """Run ``argv`` with host ``host``'s view (see :func:`exec_argv`) and return its stdout.

    Raises :class:`LabError` naming the host, the command and its stderr when ``check`` and it fails.
    """
    cp = subprocess.run(
        exec_argv(name, host, argv, storage_root),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if check and cp.returncode != 0:
        # --json commands report their error on stdout ({"error": ...}): show whichever says something
        said = cp.stderr.strip() or cp.stdout.strip()[-2000:]
        raise LabError(f"{host}: `{' '.join(argv)}` failed ({cp.returncode}): {said}")
    return cp.stdout


def is_up(name: str, storage_root: Path = STORAGE_ROOT) -> bool:
    with contextlib.suppress(Exception):
        return bool(status(name, storage_root)["up"])
    return False
