"""Starting and stopping NF instances: ONE launcher interface, two implementations.

* :class:`ProcessLauncher` runs the NF as a local process (hosts without Docker, CI, the
  lab when no runtime image is built). It is started in its own session, logs to
  ``<state_dir>/logs/<instance>.log``, and is identified by pid + process create time so a reused
  pid is never killed by mistake.
* :class:`DockerLauncher` runs the NF as a container of the project's runtime image (``deft-rl``,
  built by the docker role) with no Docker network, then plugs it into the host's OVS ``br-int``
  with the docker role's ``deft-ovs-attach`` (ovs-docker style: a veth pair, host end on
  ``br-int`` with ``external_ids:container_id``, container end ``eth1`` with the instance's
  overlay IP ``10.80.<host_index>.(10+k)``, checksum offload off for the userspace datapath). The
  instance config (:mod:`agent.nfconfig`) is bind-mounted read-only into the container.

Both return an :class:`~agent.registry.InstanceRecord`; the caller (:mod:`agent.commands`)
stores it in the registry. Failures raise :class:`LaunchError` with the command and its stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import psutil

from agent.config import AgentConfig
from agent.registry import InstanceRecord

log = logging.getLogger(__name__)


class LaunchError(RuntimeError):
    """An instance could not be started or stopped; the message says why (command + stderr)."""


class Launcher(Protocol):
    """Starts/stops NF instances described by a draft :class:`InstanceRecord`."""

    def start(self, draft: InstanceRecord, ready_timeout_s: float) -> InstanceRecord: ...

    def stop(self, rec: InstanceRecord, grace_s: float) -> None: ...

    def alive(self, rec: InstanceRecord) -> bool: ...


def render_command(template: tuple[str, ...], draft: InstanceRecord, python: str, config: str) -> list[str]:
    """Substitute ``{python} {config} {instance} {nf_type} {control} {role}`` in the template."""
    values = {"python": python, "config": config, "instance": draft.instance, "nf_type": draft.nf_type,
              "control": draft.control, "role": draft.role}
    try:
        return [part.format(**values) for part in template]
    except (KeyError, IndexError, ValueError) as exc:
        raise LaunchError(f"nf_command {list(template)!r}: bad placeholder {exc}") from exc


def wait_tcp(addr: str, timeout_s: float, alive: object = None) -> bool:
    """Wait until ``host:port`` accepts TCP connections (True) or ``timeout_s`` passes (False)."""
    host, _, port = addr.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def _tail(path: str, n: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class ProcessLauncher:
    """NF instances as local processes (see module doc)."""

    def __init__(self, conf: AgentConfig) -> None:
        self.conf = conf
        self.log_dir = conf.state_dir / "logs"

    def start(self, draft: InstanceRecord, ready_timeout_s: float) -> InstanceRecord:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = render_command(self.conf.nf_command, draft, sys.executable, draft.config_path)
        if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
            raise LaunchError(f"nf_command: {cmd[0]!r} not found on PATH")
        log_path = self.log_dir / f"{draft.instance}.log"
        with open(log_path, "ab") as logf:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                        start_new_session=True, close_fds=True, cwd=str(self.conf.state_dir))
            except OSError as exc:
                raise LaunchError(f"cannot start {cmd!r}: {exc}") from exc
        rec = replace(draft, pid=proc.pid, pid_create_time=psutil.Process(proc.pid).create_time(),
                      log_path=str(log_path), command=tuple(cmd), started_at_ns=time.time_ns())
        if ready_timeout_s > 0 and not wait_tcp(rec.control, ready_timeout_s, lambda: proc.poll() is None):
            code = proc.poll()
            self.stop(rec, grace_s=2.0)
            what = f"exited with code {code}" if code is not None else \
                f"did not open its control API {rec.control} within {ready_timeout_s:.0f} s"
            raise LaunchError(f"instance {draft.instance}: {what}; log {log_path}:\n{_tail(str(log_path))}")
        # Reap the child when it exits while this process lives (the CLI exits right away anyway).
        return rec

    def _process(self, rec: InstanceRecord) -> psutil.Process | None:
        try:
            p = psutil.Process(rec.pid)
            if abs(p.create_time() - rec.pid_create_time) > 0.01 or p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except psutil.Error:
            return None

    def alive(self, rec: InstanceRecord) -> bool:
        return rec.pid > 0 and self._process(rec) is not None

    def stop(self, rec: InstanceRecord, grace_s: float) -> None:
        p = self._process(rec)
        if p is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec.pid, sig)  # the instance leads its own session/process group
            try:
                p.wait(timeout=grace_s)
                return
            except psutil.TimeoutExpired:
                log.warning("instance %s (pid %d) ignored SIGTERM; killing", rec.instance, rec.pid)
            except psutil.Error:
                return


class DockerLauncher:
    """NF instances as containers on OVS ``br-int`` (see module doc)."""

    def __init__(self, conf: AgentConfig) -> None:
        self.conf = conf
        self.dconf = conf.docker

    def _docker(self, *args: str, timeout: float = 60.0) -> str:
        exe = shutil.which("docker")
        if exe is None:
            raise LaunchError("docker CLI not installed (launcher: docker)")
        cmd = [exe] + (["-H", self.dconf.docker_host] if self.dconf.docker_host else []) + list(args)
        return _run(cmd, timeout)

    def _env(self) -> dict[str, str] | None:
        """DOCKER_HOST for the attach helper (it calls ``docker inspect`` itself)."""
        return {"DOCKER_HOST": self.dconf.docker_host} if self.dconf.docker_host else None

    @staticmethod
    def container_name(instance: str) -> str:
        return f"deft-nf-{instance}"

    def image(self) -> str:
        """The runtime image: configured, else the docker role's reference file."""
        if self.dconf.image:
            return self.dconf.image
        try:
            ref = self.dconf.image_ref_file.read_text().strip()
        except OSError as exc:
            raise LaunchError(f"no runtime image: docker.image unset and {self.dconf.image_ref_file} "
                              f"unreadable ({exc.strerror}); run the docker role") from exc
        if not ref:
            raise LaunchError(f"{self.dconf.image_ref_file} is empty")
        return ref

    def start(self, draft: InstanceRecord, ready_timeout_s: float) -> InstanceRecord:
        if not draft.overlay_ip:
            raise LaunchError("docker launcher needs an overlay IP: set host_index in agent.yml")
        inner_cfg = f"{self.dconf.config_dir}/{draft.instance}.yml"
        cmd = render_command(self.conf.nf_command, draft, self.dconf.python, inner_cfg)
        name = self.container_name(draft.instance)
        cid = self._docker("run", "-d", "--name", name, "--network", "none", "--label",
                           f"deft.instance={draft.instance}", "-v", f"{draft.config_path}:{inner_cfg}:ro",
                           self.image(), *cmd).strip()
        rec = replace(draft, container_id=cid, command=tuple(cmd), started_at_ns=time.time_ns())
        try:
            attach = [self.dconf.attach_script]
            iface = ["--iface", self.dconf.container_ifname]
            _run([*attach, "add", name, f"{draft.overlay_ip}/{self.dconf.prefix_len}", *iface,
                  "--bridge", self.dconf.bridge], timeout=60, env=self._env())
            port = _run([*attach, "port", name, *iface], env=self._env()).strip()
            pid = self._docker("inspect", "-f", "{{.State.Pid}}", cid).strip()
            if pid in ("", "0"):  # the NF exited right away: say why instead of failing on nsenter
                raise LaunchError(f"instance {draft.instance}: container exited at start; docker logs: "
                                  f"{self._docker('logs', '--tail', '15', cid)}")
            link = _run(["nsenter", "-t", pid, "-n", "ip", "-o", "link", "show", self.dconf.container_ifname])
            mac = link.split("link/ether ")[1].split()[0] if "link/ether " in link else ""
            rec = replace(rec, ovs_port=port, mac=mac)
            if ready_timeout_s > 0 and not wait_tcp(rec.control, ready_timeout_s, lambda: self.alive(rec)):
                raise LaunchError(f"instance {draft.instance}: control API {rec.control} not up within "
                                  f"{ready_timeout_s:.0f} s; docker logs: "
                                  f"{self._docker('logs', '--tail', '15', cid)}")
        except LaunchError:
            self.stop(rec, grace_s=2.0)
            raise
        return rec

    def alive(self, rec: InstanceRecord) -> bool:
        try:
            return self._docker("inspect", "-f", "{{.State.Running}}", rec.container_id).strip() == "true"
        except LaunchError:
            return False

    def stop(self, rec: InstanceRecord, grace_s: float) -> None:
        name = self.container_name(rec.instance)
        with contextlib.suppress(LaunchError):
            _run([self.dconf.attach_script, "del", name, "--iface", self.dconf.container_ifname,
                  "--bridge", self.dconf.bridge], env=self._env())
        with contextlib.suppress(LaunchError):
            self._docker("stop", "-t", str(max(1, int(grace_s))), rec.container_id or name)
        with contextlib.suppress(LaunchError):
            self._docker("rm", "-f", rec.container_id or name)


def _run(cmd: list[str], timeout: float = 30.0, env: dict[str, str] | None = None) -> str:
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                            env={**os.environ, **env} if env else None)
    except FileNotFoundError as exc:
        raise LaunchError(f"{cmd[0]}: not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LaunchError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    if cp.returncode != 0:
        raise LaunchError(f"`{' '.join(cmd)}` failed ({cp.returncode}): {cp.stderr.strip()}")
    return cp.stdout


def make_launcher(conf: AgentConfig, kind: str | None = None) -> ProcessLauncher | DockerLauncher:
    """The launcher named by ``kind`` (default: ``conf.launcher``)."""
    k = kind or conf.launcher
    if k == "process":
        return ProcessLauncher(conf)
    if k == "docker":
        return DockerLauncher(conf)
    raise LaunchError(f"unknown launcher {k!r} (process | docker)")
