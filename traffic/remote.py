"""Multi-host runs: sinks then generators on the inventory's traffic hosts, over SSH (paramiko).

Sequence of ``run_across``:

1. read the ``traffic`` hosts (``inventory.py``); sinks are ``traffic_role: sink``, clients ``client``;
2. on every host: make a private temp dir, upload the profile (SFTP);
3. start each sink (``deftctl traffic sink``), wait for its ready file;
4. start each generator (``deftctl traffic gen --dst <its sink's data IP> --flow-id-base k*F``), so flow
   ids are unique across clients; client k sends to sink ``k mod #sinks``;
5. wait for generators, then sinks (they stop ``idle_timeout_s`` after the last packet); fetch the
   JSON reports, merge (exact loss per flow) and remove the temp dirs. On any failure the remote
   processes are sent SIGTERM (they write partial results and exit).

Host keys: the inventory's ``UserKnownHostsFile`` (in ``ansible_ssh_common_args``) is loaded; with
``StrictHostKeyChecking=yes`` there, unknown keys are refused, otherwise accepted for the session
(like OpenSSH ``accept-new`` without saving). A key that contradicts a known one is always refused.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traffic import results
from traffic.inventory import InventoryError, TrafficHost, traffic_hosts
from traffic.profile import TrafficProfile

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 15.0


class RemoteError(RuntimeError):
    """A remote step failed; the message names the host and the command."""


@dataclass
class Session:
    """One SSH connection to a traffic host, its temp dir and the processes started there."""

    host: TrafficHost
    client: Any  # paramiko.SSHClient
    tmp: str = ""
    deftctl: str = "deftctl"
    procs: list[tuple[int, Any]] = field(default_factory=list)  # (remote pid, channel)

    def exec(self, cmd: str, timeout: float = 60.0) -> str:
        _, out, err = self.client.exec_command(cmd, timeout=timeout)
        rc = out.channel.recv_exit_status()
        text = str(out.read().decode())
        if rc != 0:
            raise RemoteError(f"{self.host.name}: `{cmd}` failed ({rc}): {err.read().decode().strip()}")
        return text

    def start(self, cmd: str) -> tuple[int, Any]:
        """Start ``cmd`` in the background of this session; returns (pid, channel)."""
        chan = self.client.get_transport().open_session()
        chan.exec_command(f"sh -c {shlex.quote('echo $$; exec ' + cmd)}")
        f = chan.makefile("r")
        line = f.readline().strip()
        if not line.isdigit():
            err = chan.makefile_stderr("r").read()
            raise RemoteError(f"{self.host.name}: could not start `{cmd}`: {err!r}")
        proc = (int(line), chan)
        self.procs.append(proc)
        return proc

    def read(self, path: str) -> str:
        with self.client.open_sftp() as sftp, sftp.open(path, "r") as fh:
            return str(fh.read().decode())

    def exists(self, path: str) -> bool:
        with self.client.open_sftp() as sftp:
            try:
                sftp.stat(path)
            except OSError:
                return False
            return True

    def close(self) -> None:
        for pid, chan in self.procs:
            if not chan.exit_status_ready():
                try:
                    self.exec(f"kill -TERM {pid} 2>/dev/null || true", timeout=10)
                except Exception as exc:  # best effort; keep closing
                    log.warning("%s: could not stop pid %d: %s", self.host.name, pid, exc)
        if self.tmp:
            try:
                self.exec(f"rm -rf {shlex.quote(self.tmp)}", timeout=30)
            except Exception as exc:
                log.warning("%s: could not remove %s: %s", self.host.name, self.tmp, exc)
        self.client.close()


def check_reachable(client: Session, sink: TrafficHost, network: str) -> None:
    """Ping the sink's data address from the client first: a missing overlay would otherwise send
    the whole run into a default route and show up as 100 % loss."""
    dst = sink.data_ip(network)
    try:
        client.exec(f"ping -c 1 -W 2 {shlex.quote(dst)}", timeout=15)
    except RemoteError as exc:
        hint = ""
        if network == "overlay":
            hint = " (is the overlay provisioned? run site.yml, or use --network mgmt)"
        raise RemoteError(f"{client.host.name} cannot reach {sink.name} at {dst}{hint}: {exc}") from exc


def find_deftctl(s: Session) -> str:
    """The ``deftctl`` command on the host: ``deftctl_bin``, else ``deftctl`` on PATH, else the
    controller's own path (lab hosts share the controller's filesystem)."""
    own = str(Path(sys.executable).parent / "deftctl")
    candidates = [s.host.deftctl] if s.host.deftctl else ["deftctl", own]
    for c in candidates:
        try:
            s.exec(f"command -v {shlex.quote(c)}", timeout=30)
            return c
        except RemoteError:
            continue
    raise RemoteError(f"{s.host.name}: deftctl not found over SSH (tried {', '.join(candidates)}): "
                      "set the deftctl_bin hostvar to its path")


def connect(host: TrafficHost) -> Session:
    import paramiko  # noqa: PLC0415 - keeps `deftctl` start-up fast

    logging.getLogger("paramiko").setLevel(logging.WARNING)  # no per-SFTP-session INFO lines

    c = paramiko.SSHClient()
    c.load_system_host_keys()
    if host.known_hosts:
        try:
            c.load_host_keys(host.known_hosts)
        except OSError as exc:
            raise RemoteError(f"{host.name}: cannot read known_hosts {host.known_hosts}: {exc}") from exc
    strict = paramiko.RejectPolicy() if host.strict_host_keys else paramiko.AutoAddPolicy()
    c.set_missing_host_key_policy(strict)
    try:
        c.connect(
            host.ssh_host, port=host.ssh_port, username=host.ssh_user,
            key_filename=host.key_file or None, timeout=CONNECT_TIMEOUT_S,
            banner_timeout=CONNECT_TIMEOUT_S, auth_timeout=CONNECT_TIMEOUT_S,
        )
    except (paramiko.SSHException, OSError) as exc:
        where = f"{host.ssh_user}@{host.ssh_host}:{host.ssh_port}"
        raise RemoteError(f"{host.name}: SSH to {where} failed: {exc}") from exc
    return Session(host, c)


def _wait_exit(sess: Session, chan: Any, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not chan.exit_status_ready():
        if time.monotonic() > deadline:
            raise RemoteError(f"{sess.host.name}: {what} did not stop within {timeout_s:.0f} s")
        time.sleep(0.1)
    rc = chan.recv_exit_status()
    if rc != 0:
        err = chan.makefile_stderr("r").read()
        err = err.decode() if isinstance(err, bytes) else str(err)
        raise RemoteError(f"{sess.host.name}: {what} failed ({rc}): {err.strip()[-2000:]}")


def run_across(
    inventory: Path, profile_path: Path, profile: TrafficProfile, network: str = "overlay",
    out_dir: Path | None = None,
) -> results.RunSummary:
    try:
        hosts = traffic_hosts(inventory)
    except InventoryError as exc:
        raise RemoteError(str(exc)) from exc
    sinks = [h for h in hosts if h.role == "sink"]
    clients = [h for h in hosts if h.role == "client"]
    if not sinks or not clients:
        raise RemoteError(f"{inventory}: need >= 1 traffic host with traffic_role sink and >= 1 with client")
    flows_per_gen = sum(f.count for f in profile.flows)
    sessions: list[Session] = []
    try:
        for h in sinks + clients:
            s = connect(h)
            sessions.append(s)
            s.deftctl = find_deftctl(s)
            s.tmp = s.exec("mktemp -d /tmp/deft-traffic.XXXXXX").strip()
            with s.client.open_sftp() as sftp:
                sftp.put(str(profile_path), f"{s.tmp}/profile.yml")
        sink_sessions, client_sessions = sessions[: len(sinks)], sessions[len(sinks) :]
        sink_chans = []
        for s in sink_sessions:
            cmd = (
                f"{s.deftctl} traffic sink --profile {s.tmp}/profile.yml --json-out {s.tmp}/sink.json "
                f"--csv-out {s.tmp}/sink.csv --ready-file {s.tmp}/ready"
            )
            sink_chans.append(s.start(cmd)[1])
        for s, ch in zip(sink_sessions, sink_chans, strict=True):
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not s.exists(f"{s.tmp}/ready"):
                if ch.exit_status_ready() or time.monotonic() > deadline:
                    _wait_exit(s, ch, "sink", 1.0)
                    raise RemoteError(f"{s.host.name}: sink not ready within {READY_TIMEOUT_S:.0f} s")
                time.sleep(0.1)
        for k, s in enumerate(client_sessions):
            check_reachable(s, sinks[k % len(sinks)], network)
        gen_chans = []
        for k, s in enumerate(client_sessions):
            dst = sinks[k % len(sinks)].data_ip(network)
            cmd = (
                f"{s.deftctl} traffic gen --profile {s.tmp}/profile.yml --dst {dst} "
                f"--flow-id-base {profile.flow_id_base + k * flows_per_gen} --json-out {s.tmp}/gen.json"
            )
            gen_chans.append(s.start(cmd)[1])
        bound = profile.duration_s + 60.0
        for s, ch in zip(client_sessions, gen_chans, strict=True):
            _wait_exit(s, ch, "generator", bound)
        for s, ch in zip(sink_sessions, sink_chans, strict=True):
            # a sink that saw nothing would wait for its first packet: once the generators are
            # done it gets idle_timeout_s + 5 s, then SIGTERM (it still writes its report)
            deadline = time.monotonic() + profile.sink.idle_timeout_s + 5.0
            while not ch.exit_status_ready() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not ch.exit_status_ready():
                s.exec(f"kill -TERM {s.procs[0][0]} 2>/dev/null || true", timeout=10)
            _wait_exit(s, ch, "sink", profile.sink.grace_s + 30.0)
        gens = [results.gen_from_dict(json.loads(s.read(f"{s.tmp}/gen.json"))) for s in client_sessions]
        sink_reps = [results.sink_from_dict(json.loads(s.read(f"{s.tmp}/sink.json"))) for s in sink_sessions]
        summary = results.summarize(profile.name, gens, sink_reps)
        if out_dir:
            out_dir.mkdir(parents=True, exist_ok=True)
            for g in gens:
                results.write_json(g, out_dir / f"gen-{g.host}.json")
            for r in sink_reps:
                results.write_json(r, out_dir / f"sink-{r.host}.json")
                results.write_flows_csv(r, out_dir / f"sink-{r.host}.csv")
            results.write_json(summary, out_dir / "summary.json")
        return summary
    finally:
        for s in sessions:
            s.close()


def format_summary(s: results.RunSummary) -> str:
    lines = [f"traffic run {s.profile!r}"]
    for g in s.generators:
        lines.append(
            f"  gen  {g.host:<12} sent {g.sent:>10} in {g.duration_s:7.2f} s  {g.achieved_pps:>10.0f} pps "
            f"(target {g.target_pps:.0f}) stop={g.stop_reason}"
        )
    for r in s.sinks:
        lines.append(
            f"  sink {r.host:<12} recv {r.received:>10} unique {r.unique} loss {r.loss} "
            f"dup {r.duplicates} reord {r.reordered} malformed {r.malformed} "
            f"p50 {r.latency_p50_us:.0f} us p99 {r.latency_p99_us:.0f} us"
        )
    loss_pct = 100.0 * s.loss / s.sent if s.sent else 0.0
    lines.append(
        f"  total sent {s.sent} unique {s.unique} loss {s.loss} ({loss_pct:.3f} %) dup {s.duplicates} "
        f"reordered {s.reordered} | {s.achieved_pps:.0f} pps of {s.target_pps:.0f} target"
    )
    return "\n".join(lines)
