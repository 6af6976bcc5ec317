"""Run agent commands on other hosts over SSH and parse their ``--json`` answers.

Why SSH: the agents' NF lifecycle commands are the one way instances are started (the agent picks
the overlay IP, writes the instance config, starts the container and attaches it to ``br-int``).
The controller reaches them exactly as the placement service does (paramiko, key auth, pinned host
keys); one connection per command, because commands are rare (deploy, failover, migration).
"""

from __future__ import annotations

import json
import logging
import shlex
from typing import Any

from deploy.config import DeployConfig

log = logging.getLogger(__name__)


class AgentError(RuntimeError):
    """An agent command failed or its host is unreachable; the message names host and command."""


class AgentSsh:
    """``run(host, *args)`` = ``<agent_command> *args --json`` on ``host``, parsed."""

    def __init__(self, cfg: DeployConfig) -> None:
        self.cfg = cfg

    def run(self, host: str, *args: str) -> Any:
        import paramiko  # noqa: PLC0415 - only the controller's commands need it

        entry = self.cfg.host(host)
        s = self.cfg.ssh
        command = shlex.join([*self.cfg.agent_command, *args, "--json"])
        where = f"{host} ({s.user}@{entry.address}:{entry.ssh_port})"
        client = paramiko.SSHClient()
        try:
            if s.known_hosts:
                client.load_host_keys(s.known_hosts)
            else:
                client.load_system_host_keys()
            client.set_missing_host_key_policy(
                paramiko.RejectPolicy() if s.strict_host_keys else paramiko.AutoAddPolicy()
            )
            client.connect(
                entry.address,
                port=entry.ssh_port,
                username=s.user,
                key_filename=s.key_file or None,
                timeout=s.connect_timeout_s,
                banner_timeout=s.connect_timeout_s,
                auth_timeout=s.connect_timeout_s,
                allow_agent=not s.key_file,
                look_for_keys=not s.key_file,
            )
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            raise AgentError(f"{where}: unreachable: {type(exc).__name__}: {exc}") from exc
        try:
            _, out, err = client.exec_command(command, timeout=s.command_timeout_s)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
            status = out.channel.recv_exit_status()
        except (OSError, paramiko.SSHException) as exc:
            raise AgentError(f"{where}: session failed while running {command!r}: {exc}") from exc
        finally:
            client.close()
        log.debug("%s: %s -> %d", host, command, status)
        try:
            doc = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            doc = None
        if status != 0:
            msg = (
                str(doc["error"]) if isinstance(doc, dict) and "error" in doc else (stderr or stdout).strip()
            )
            raise AgentError(f"{where}: `{command}` failed ({status}): {msg[-800:]}")
        if doc is None:
            raise AgentError(f"{where}: `{command}` printed no JSON: {stdout[-400:]!r} {stderr[-400:]!r}")
        return doc
