"""Running commands on other hosts' agents over SSH: the one SSH client path of the controller side.

Why one module: the placement service (migrations), the deployment glue (NF lifecycle on other
hosts) and the failure detector's launcher all reach agents the same way -- paramiko, key auth,
pinned host keys, one connection per command (commands are rare: deploy, failover, migration).
Keeping the connection and error handling here means an unreachable host reads the same
everywhere: ``nfv2 (root@10.77.0.12:22): unreachable: ...``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


class SshError(RuntimeError):
    """A host is unreachable or the SSH session failed; the message names host, user and address."""


@dataclass(frozen=True)
class SshConfig:
    """How the controller reaches agents (the ``placement`` role's key pair by default)."""

    user: str = "root"
    key_file: str = ""  # private key; empty = ssh-agent / default keys
    known_hosts: str = ""  # known_hosts file; empty = the system's
    strict_host_keys: bool = True  # False only where host keys are generated per run
    connect_timeout_s: float = 5.0
    command_timeout_s: float = 120.0  # an NF start waits for the container's control API


def run_command(
    host: str, address: str, port: int, ssh: SshConfig, command: str
) -> tuple[int, str, str]:
    """Run ``command`` on ``host`` (reached at ``address:port``); returns (exit status, stdout, stderr).

    Raises :class:`SshError` when the host cannot be reached or the session breaks; a command that
    runs and fails is *not* an error here (the caller reads the status and the agent's JSON).
    """
    import paramiko  # noqa: PLC0415 - only controller-side commands need it; keeps CLIs fast

    where = f"{host} ({ssh.user}@{address}:{port})"
    client = paramiko.SSHClient()
    try:
        if ssh.known_hosts:
            client.load_host_keys(ssh.known_hosts)
        else:
            client.load_system_host_keys()
        client.set_missing_host_key_policy(
            paramiko.RejectPolicy() if ssh.strict_host_keys else paramiko.AutoAddPolicy()
        )
        client.connect(
            address,
            port=port,
            username=ssh.user,
            key_filename=ssh.key_file or None,
            timeout=ssh.connect_timeout_s,
            banner_timeout=ssh.connect_timeout_s,
            auth_timeout=ssh.connect_timeout_s,
            allow_agent=not ssh.key_file,
            look_for_keys=not ssh.key_file,
        )
    except (OSError, paramiko.SSHException) as exc:
        client.close()
        raise SshError(f"{where}: unreachable: {type(exc).__name__}: {exc}") from exc
    try:
        _, out, err = client.exec_command(command, timeout=ssh.command_timeout_s)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        status = out.channel.recv_exit_status()
    except (OSError, paramiko.SSHException) as exc:
        raise SshError(f"{where}: session failed while running {command!r}: {exc}") from exc
    finally:
        client.close()
    log.debug("%s: %s -> %d", where, command, status)
    return status, stdout, stderr
