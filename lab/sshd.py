"""Per-host sshd and the lab's SSH client key: how Ansible (and every operator) reaches a lab host.

Each host runs its own ``/usr/sbin/sshd`` inside the host's namespaces (started by ``nsenter`` into
the keeper, see :mod:`lab.privdirs`), so every SSH session - hence every Ansible task - sees that
host's hostname, addresses and private directories. Its files live in the host's private storage
(``<storage>/ssh/``): ``sshd_config``, an ed25519 ``HostKey`` (kept across ``down``/``up`` so
``known_hosts`` stays valid), ``sshd.pid`` and ``sshd.log``. Only public-key auth is accepted, with
the lab-wide client key ``<lab_dir>/ssh/id_ed25519`` (copied into the inventory directory).
sshd listens on the host's management IP only.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

from lab import netns, procs
from lab.config import HostPlan, LabConfig
from lab.procs import pid_alive, read_pidfile

log = logging.getLogger(__name__)

SSHD = "/usr/sbin/sshd"
SSH_PORT = 22


def ssh_dir(storage: Path) -> Path:
    return storage / "ssh"


def sshd_pidfile(storage: Path) -> Path:
    return ssh_dir(storage) / "sshd.pid"


def mux_dir(lab_dir: Path) -> Path:
    """Where Ansible's persisted SSH masters of this lab keep their sockets (``ControlPath``).

    Why persist at all: each SSH handshake costs ~1 s on a loaded 2-core machine and a site.yml run
    opens thousands of sessions. Why this is safe: a master keeps the mount view of the host it was
    opened on, so every place that (re)creates a host or restarts its sshd calls
    :func:`close_masters` first; a master can never outlive the host view it belongs to.
    """
    return lab_dir / "mux"


def close_masters(lab_dir: Path) -> int:
    """Stop every persisted SSH master of this lab (their command line names :func:`mux_dir`)."""
    marker = str(mux_dir(lab_dir)) + "/"
    pids = {p.pid for p in procs.snapshot() if p.cmdline.startswith("ssh") and marker in p.cmdline}
    return procs.kill_all(lambda: pids, grace_s=1.0) if pids else 0


def ensure_client_key(lab_dir: Path) -> Path:
    """The lab's client key pair (created once per lab); returns the private key path."""
    key = lab_dir / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.parent.chmod(0o700)
        netns.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"deft-lab@{lab_dir.name}", "-f", str(key)]
        )
    return key


def write_config(plan: HostPlan, client_key: Path) -> bool:
    """Host key, authorized_keys and sshd_config for one host (idempotent).

    Returns True when ``sshd_config`` changed (e.g. a new ListenAddress), i.e. sshd must restart.
    """
    d = ssh_dir(plan.storage)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    hostkey = d / "ssh_host_ed25519_key"
    if not hostkey.exists():
        netns.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{plan.host}", "-f", str(hostkey)]
        )
    auth = d / "authorized_keys"
    auth.write_text(Path(f"{client_key}.pub").read_text())
    auth.chmod(0o600)
    cfg = d / "sshd_config"
    text = "\n".join(
        [
            f"# deft-lab host {plan.ns}: written by `deftctl lab up`, do not edit",
            f"ListenAddress {plan.mgmt_ip}",
            f"Port {SSH_PORT}",
            f"HostKey {hostkey}",
            f"PidFile {sshd_pidfile(plan.storage)}",
            f"AuthorizedKeysFile {auth}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "MaxStartups 100:30:200",
            "MaxSessions 100",
            "AcceptEnv LANG LC_*",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            "",
        ]
    )
    old = cfg.read_text() if cfg.exists() else None
    if old != text:
        cfg.write_text(text)
    return old != text


def known_hosts_line(plan: HostPlan) -> str:
    kind, blob = (ssh_dir(plan.storage) / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    return f"{plan.mgmt_ip} {kind} {blob}"


def sshd_pid(plan: HostPlan) -> int | None:
    """PID of the host's sshd listener, or None when it is not running."""
    pid = read_pidfile(sshd_pidfile(plan.storage))
    return pid if pid_alive(pid) else None


def start(plan: HostPlan, keeper_pid: int, timeout_s: float = 10.0) -> int:
    """Start sshd inside the keeper's namespaces and wait until it accepts TCP; returns its PID.

    sshd daemonises and writes its PidFile; ``-E`` sends its log to ``<storage>/ssh/sshd.log``
    (there is no syslog in a lab host).
    """
    d = ssh_dir(plan.storage)
    sshd_pidfile(plan.storage).unlink(missing_ok=True)
    cmd = [
        "nsenter", f"--target={keeper_pid}", "--mount", "--uts", "--net",
        SSHD, "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log"),
    ]  # fmt: skip
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if cp.returncode != 0:
        raise netns.NetnsError(
            f"sshd on {plan.ns} failed to start: {cp.stderr.strip() or _tail(d / 'sshd.log')}"
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = sshd_pid(plan)
        if pid and _port_open(plan.mgmt_ip, SSH_PORT):
            return pid
        time.sleep(0.05)
    raise netns.NetnsError(
        f"sshd on {plan.ns} ({plan.mgmt_ip}:22) not reachable after {timeout_s:.0f} s: "
        f"{_tail(d / 'sshd.log')}"
    )


def ssh_command(plan: HostPlan, key: Path, known_hosts: Path) -> list[str]:
    """``ssh`` argv reaching ``plan`` as root with the lab key (append the remote command)."""
    return [
        "ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ConnectTimeout=5", f"root@{plan.mgmt_ip}",
    ]  # fmt: skip


def ssh_run(cfg: LabConfig, plan: HostPlan, command: str, check: bool = True, timeout_s: float = 60.0) -> str:
    """Run ``command`` on a lab host over SSH with the inventory's key and known_hosts; returns stdout.

    Raises :class:`lab.netns.NetnsError` naming the host and stderr when ``check`` and it fails.
    """
    d = cfg.inventory_path / ".ssh"
    cmd = [*ssh_command(plan, d / "id_ed25519", d / "known_hosts"), command]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if check and cp.returncode != 0:
        raise netns.NetnsError(f"ssh {plan.host} {command!r} failed ({cp.returncode}): {cp.stderr.strip()}")
    return cp.stdout


def _port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path, n: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return "(no log)"


def which_or_die(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise netns.NetnsError(
            f"missing tools: {', '.join(missing)} (apt-get install openssh-server util-linux)"
        )
