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

from agent.remote import SshError, run_command
from deploy.config import DeployConfig

log = logging.getLogger(__name__)


class AgentError(RuntimeError):
    """An agent command failed or its host is unreachable; the message names host and command."""


class AgentSsh:
    """``run(host, *args)`` = ``<agent_command> *args --json`` on ``host``, parsed."""

    def __init__(self, cfg: DeployConfig) -> None:
        self.cfg = cfg

    def run(self, host: str, *args: str) -> Any:
        entry = self.cfg.host(host)
        s = self.cfg.ssh
        command = shlex.join([*self.cfg.agent_command, *args, "--json"])
        where = f"{host} ({s.user}@{entry.address}:{entry.ssh_port})"
        try:
            status, stdout, stderr = run_command(host, entry.address, entry.ssh_port, s, command)
        except SshError as exc:
            raise AgentError(str(exc)) from exc
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
