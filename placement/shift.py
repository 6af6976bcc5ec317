"""``deftctl placement shift``: the live load-shift comparison of placement policies on a provisioned
lab (or cluster). Every policy gets the same service, the same small host and the same traffic; the
report compares what each lost, how late it delivered and how often it moved.

Why this exists: learned placement is easy to make look good in a simulator and often loses to
simple rules in reality (``../shared/reference/anchors.md`` §B). Here nothing is simulated: packets
cross the VXLAN overlay, a CPU-starved NF really tail-drops, the placement service reads the agents'
real telemetry from InfluxDB and moves the NF with the agent's loss-free migration over SSH.

What "small host" means: lab hosts are namespaces sharing the machine's cores, so the first NFV host
gets a CPU cap on its containers (the docker role's ``docker_host_cpu_limit``, applied through
Ansible, tag ``docker-cpu``) and is declared to the placement service with the capacity that cap
gives it (``small_capacity_pps``). The other NFV hosts are uncapped.

Sequence, for each policy (each starts from the same state):

1. deploy the service (primary on the small host, secondary on the second NFV host, the stamper on
   the traffic client) and start an idle spare instance on every further NFV host, so a migration
   has a target there (DEFT's cluster of instances, thesis §3). The first policy declares it with
   ``playbooks/nf.yml``; later ones, whose declaration is the same, redeploy its instances through
   the agents (``deploy services``, seconds instead of a playbook run);
2. start ``deftctl placement serve`` on the controller with the policy (the placement role's venv
   and config, plus the small host's capacity, a short decision interval and a per-run ``controller``
   tag, so its decisions can be told apart from the role's own service loop);
3. run the traffic: ``base_pps`` until ``shift_at_s``, a ``rise_s`` ramp to ``peak_pps``, held to the end
   (client -> stamper -> primary -> sink; exact per-flow loss, reordering and latency at the sink).
   Each policy's flows have their own source ports: the stamper outlives a policy's instances,
   and a flow it already numbered would reach the fresh primary in the middle of its sequence;
4. stop the loop; read the run's telemetry (``nf`` points of the service, the loop's ``placement``
   decisions) and the sink's report;
5. undeploy (``deploy remove``: steering deleted, spares stopped); after the last policy,
   ``playbooks/nf.yml`` without the service.

The cap is removed at the end, also after a failure. Output in ``out``: ``results.json``,
``report.md``, ``shift.png`` (processed and dropped packets per second, migrations marked), and per
policy the traffic run's JSON/CSV; the placement loop's log stays on the controller in
``/tmp/deft-shift-shift-<policy>.log`` for diagnosis.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deftctl.playbook import PlaybookRun, run_playbook
from traffic import remote
from traffic.inventory import InventoryError, TrafficHost, group_members
from traffic.profile import profile_from_dict
from traffic.results import RunSummary

log = logging.getLogger(__name__)

#: UDP destination port of the test flows and the first source port (flows use sport, sport+1, ...);
#: policy number i (0, 1, ...) starts at SPORT + i * SPORT_STEP
DPORT, SPORT, SPORT_STEP = 7000, 20000, 1000


class ShiftError(RuntimeError):
    """A step of the experiment failed; the message names the step and the host."""


@dataclass(frozen=True)
class ShiftConfig:
    """One comparison run. Rates in packets/s, times in seconds, CPU in CPUs (cores)."""

    inventory: Path
    policies: tuple[str, ...] = ("static", "rl")
    service: str = "shift"
    nf_type: str = "counter"
    #: CPU cap of the small host's containers, and the capacity the placement service is told it has.
    #: On the lab a counter NF capped at 0.1 CPU still kept up with 6 kpps (at 30 ms median latency);
    #: at 0.05 CPU it carried ~2.5-3 kpps until the burst socket I/O and a faster machine (2026-12-05):
    #: then static lost nothing in one CI run, so the small host is 0.02 CPU (static lost 44 % there,
    #: placement/README.md). The point is a host the peak overloads, whatever the NF's speed.
    small_cpus: float = 0.02
    small_capacity_pps: float = 2500.0
    base_pps: float = 1500.0
    peak_pps: float = 6000.0
    shift_at_s: float = 20.0
    rise_s: float = 5.0
    duration_s: float = 80.0
    flows: int = 16
    flow_groups: int = 16
    #: NF engine: DEFT's defaults (32-packet batches, 2 ms batch timer, 10-batch input buffer) and a
    #: 256 KiB kernel socket buffer (~300 small packets, ~50 ms at 6 kpps) instead of the engine's
    #: 8 MiB: with 8 MiB an overloaded NF queues for seconds in the kernel (p99 1.4 s measured at
    #: 0.05 CPU) instead of tail-dropping like DEFT's bounded buffer
    batch_size: int = 32
    engine: dict[str, Any] = field(
        default_factory=lambda: {"batch_timeout_ms": 2.0, "buffer_size": 10, "rcvbuf_bytes": 262144}
    )
    #: placement loop: decision interval and telemetry window (s), and at least `min_gap_s` (s)
    #: between two migrations (also the per-NF cooldown)
    interval_s: float = 2.0
    window_s: float = 4.0
    min_gap_s: float = 10.0
    out: Path = Path("results/shift")
    agent_python: str = "/opt/deft/venv/bin/python"
    placement_deftctl: str = "/opt/deft/placement-venv/bin/deftctl"
    placement_config: str = "/etc/deft/placement.yml"

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("policies: at least one")
        if self.small_cpus < 0.01:
            raise ValueError(f"small_cpus: {self.small_cpus} is below the kernel's 0.01-CPU quota minimum")
        if not 0 < self.base_pps <= self.peak_pps:
            raise ValueError(f"rates: need 0 < base_pps ({self.base_pps}) <= peak_pps ({self.peak_pps})")
        if not 0 <= self.shift_at_s < self.shift_at_s + self.rise_s < self.duration_s:
            raise ValueError("times: need 0 <= shift_at_s < shift_at_s + rise_s < duration_s")


@dataclass
class PolicyRun:
    """What one policy's run measured (the JSON the report is made of)."""

    policy: str
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    loss_pct: float = 0.0
    reordered: int = 0
    duplicates: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    nf_dropped: int = 0  # input drops (input buffer + socket buffer) reported by the instances
    migrations: list[dict[str, Any]] = field(default_factory=list)  # executed moves, t in s from start
    decisions: int = 0
    #: policy name -> decisions it made: the service falls back to its heuristic when the model is
    #: missing or telemetry is stale, and the report must say so rather than credit the model
    decided_by: dict[str, int] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)  # t_s, processed_pps, drops_pps
    #: instance -> its last reported data-plane counters (INSTANCE_COUNTERS): where packets went
    #: when the sink saw loss, duplicates or reordering (a failover, a replay, a full socket)
    instances: dict[str, dict[str, int]] = field(default_factory=dict)
    error: str = ""


class Cluster:
    """SSH sessions to the inventory's controller and NFV hosts (traffic.remote's paramiko sessions)."""

    def __init__(self, inventory: Path) -> None:
        try:
            self.nfv = group_members(inventory, "nfv")
            self.controller = group_members(inventory, "controller")[0]
        except InventoryError as exc:
            raise ShiftError(str(exc)) from exc
        if len(self.nfv) < 2:
            raise ShiftError(
                f"{inventory}: the nfv group needs >= 2 hosts (has {[h.name for h in self.nfv]})"
            )
        self.sessions: dict[str, remote.Session] = {}

    def session(self, host: TrafficHost) -> remote.Session:
        if host.name not in self.sessions:
            try:
                self.sessions[host.name] = remote.connect(host)
            except remote.RemoteError as exc:
                raise ShiftError(str(exc)) from exc
        return self.sessions[host.name]

    def run(self, host: TrafficHost, argv: list[str], timeout_s: float = 120.0) -> str:
        try:
            return self.session(host).exec(shlex.join(argv), timeout=timeout_s)
        except remote.RemoteError as exc:
            raise ShiftError(str(exc)) from exc

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.sessions.clear()


def _playbook(cfg: ShiftConfig, playbook: str, *args: str) -> PlaybookRun:
    run = run_playbook(cfg.inventory, playbook, *args, timeout_s=1800.0)
    if not run.ok:
        raise ShiftError(f"{playbook} {' '.join(args)} failed:\n{run.tail(30)}")
    return run


def set_cpu_cap(cfg: ShiftConfig, host: str, cpus: float) -> None:
    """The docker role's CPU cap on ``host`` (0 = none), through Ansible like every host setting."""
    _playbook(
        cfg,
        "playbooks/docker.yml",
        "--tags",
        "docker-cpu",
        "--limit",
        host,
        "-e",
        json.dumps({"docker_host_cpu_limit": cpus}),
    )


def _services_vars(cfg: ShiftConfig, primary: str, secondary: str) -> dict[str, Any]:
    return {"deft_services": [{
        "name": cfg.service, "nf_type": cfg.nf_type, "instances": 2, "primary_host": primary,
        "secondary_host": secondary, "workers": 1, "flow_groups": cfg.flow_groups,
        "batch_size": cfg.batch_size, "engine": cfg.engine,
    }]}  # fmt: skip


def profile_doc(cfg: ShiftConfig, sport: int = SPORT) -> dict[str, Any]:
    """The traffic: kernel UDP sockets (packets follow the client's routes into the stamper's TUN);
    flows use source ports ``sport`` .. ``sport + cfg.flows - 1``."""
    hold = cfg.duration_s - cfg.shift_at_s - cfg.rise_s
    return {
        "name": f"shift-{cfg.base_pps:.0f}-{cfg.peak_pps:.0f}", "duration_s": cfg.duration_s,
        "method": "udp",
        "flows": [{"proto": "udp", "dport": DPORT, "sport": sport, "count": cfg.flows, "size_bytes": 64}],
        "pattern": {"kind": "flash_crowd", "rate_pps": cfg.base_pps, "peak_pps": cfg.peak_pps,
                    "at_s": cfg.shift_at_s, "rise_s": cfg.rise_s, "hold_s": hold, "decay_s": 0.0},
        "sink": {"mode": "udp", "idle_timeout_s": 5, "first_packet_timeout_s": 30},
    }  # fmt: skip


#: cumulative nf counters (agent/schema.py) kept per instance in results.json
INSTANCE_COUNTERS = ("received", "processed", "released", "dropped", "socket_dropped", "duplicates",
                     "reordered", "gaps_skipped", "replayed", "forwarded", "failovers", "migrations_in",
                     "migrations_out", "migration_dropped", "replica_log_overflow")


def _instance_counters(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per instance, the largest value of each counter in ``rows`` (counters only grow)."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        inst = out[str(r.get("instance"))]
        for k in INSTANCE_COUNTERS:
            if r.get(k) is not None:
                inst[k] = max(inst.get(k, 0), int(r[k]))
    return dict(out)


def _query(c: Cluster, cfg: ShiftConfig, influxql: str) -> list[dict[str, Any]]:
    out = c.run(c.controller, [cfg.agent_python, "-m", "agent", "query", influxql, "--json"])
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def _series(rows: list[dict[str, Any]], t0_ms: int) -> dict[str, list[float]]:
    """Per-second sums over the service's instances of processed and dropped packets/s (row times
    in ms, as ``agent query --json`` gives them)."""
    proc: dict[int, float] = defaultdict(float)
    drop: dict[int, float] = defaultdict(float)
    for r in rows:
        sec = (int(r["time"]) - t0_ms) // 1000
        proc[sec] += float(r.get("processed_pps") or 0.0)
        drop[sec] += float(r.get("drops_pps") or 0.0)
    secs = sorted(set(proc) | set(drop))
    return {
        "t_s": [float(s) for s in secs],
        "processed_pps": [proc[s] for s in secs],
        "drops_pps": [drop[s] for s in secs],
    }


def _dropped(rows: list[dict[str, Any]]) -> int:
    """Input drops (input buffer + socket buffer) during the run: per instance, last - first of
    the cumulative ``input_dropped`` counter."""
    per: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r.get("input_dropped") is not None:
            per[str(r.get("instance"))].append(int(r["input_dropped"]))
    return sum(max(v) - min(v) for v in per.values())


class ShiftRun:
    """One comparison: the cap, then every policy on a fresh deployment, then the report."""

    def __init__(self, cfg: ShiftConfig) -> None:
        self.cfg = cfg
        self.c = Cluster(cfg.inventory)
        self.small, self.second = self.c.nfv[0], self.c.nfv[1]
        self.spares = {h.name: h for h in self.c.nfv[2:]}
        self.tmp = Path(tempfile.mkdtemp(prefix="deft-shift-"))
        #: the service is declared (playbooks/nf.yml ran with it): later policies skip the playbook
        self.declared = False

    def run(self) -> list[PolicyRun]:
        cfg = self.cfg
        results: list[PolicyRun] = []
        try:
            log.info("capping %s's containers at %.2f CPUs", self.small.name, cfg.small_cpus)
            set_cpu_cap(cfg, self.small.name, cfg.small_cpus)
            for i, policy in enumerate(cfg.policies):
                results.append(self.one(policy, SPORT + SPORT_STEP * i))
        finally:
            try:
                set_cpu_cap(cfg, self.small.name, 0.0)
                self.forget()
            finally:
                self.c.close()
                shutil.rmtree(self.tmp, ignore_errors=True)
        return results

    def _spare(self, host: str) -> str:
        return f"{self.cfg.service}-spare-{host}"

    def deploy(self) -> None:
        cfg = self.cfg
        if not self.declared:
            varsfile = self.tmp / "services.yml"
            varsfile.write_text(yaml.safe_dump(_services_vars(cfg, self.small.name, self.second.name)))
            _playbook(cfg, "playbooks/nf.yml", "-e", f"@{varsfile}")
            self.declared = True
        else:  # same declaration (stamper, FDU config): only the instances were removed
            self.c.run(
                self.c.controller,
                [cfg.agent_python, "-m", "deploy", "services", "--only", cfg.service, "--json"],
                timeout_s=300,
            )
        engine = json.dumps({"batch_size": cfg.batch_size, **cfg.engine})
        for name, host in self.spares.items():
            self.c.run(host, [
                cfg.agent_python, "-m", "agent", "nf", "start", "-i", self._spare(name), "-t", cfg.nf_type,
                "--service", cfg.service, "--set", f"lease={self._spare(name)}", "--set", "workers=1",
                "--set", f"flow_groups={cfg.flow_groups}", "--set", f"engine={engine}",
                "--ready-timeout", "60", "--json",
            ], timeout_s=180)  # fmt: skip

    def undeploy(self) -> None:
        """Stop the service's instances (spares included: `deploy remove` stops every instance an
        agent lists for it) and delete its steering, so the next policy starts clean; best effort."""
        cfg = self.cfg
        try:
            self.c.run(
                self.c.controller,
                [cfg.agent_python, "-m", "deploy", "remove", cfg.service, "--json"],
                timeout_s=300,
            )
        except ShiftError as exc:
            log.warning("undeploy: deploy remove failed: %s", exc)

    def forget(self) -> None:
        """Once, after the last policy: declare the services without this one (``playbooks/nf.yml``
        with no extra vars), so a later site.yml does not deploy it again; best effort."""
        try:
            _playbook(self.cfg, "playbooks/nf.yml")
        except ShiftError as exc:
            log.warning("undeploy: playbooks/nf.yml without the service failed: %s", exc)

    def _serve_config(self, policy: str, tag: str) -> str:
        cfg = self.cfg
        s = self.c.session(self.c.controller)
        doc: dict[str, Any] = yaml.safe_load(s.read(cfg.placement_config))
        for h in doc.get("hosts", []):
            if h["name"] == self.small.name:
                h["capacity_pps"] = cfg.small_capacity_pps
        doc.update(
            policy=policy,
            controller=tag,
            interval_s=cfg.interval_s,
            window_s=cfg.window_s,
            stale_after_s=max(3 * cfg.window_s, 10.0),
            vnf_cooldown_s=cfg.min_gap_s,
            min_gap_s=cfg.min_gap_s,
        )
        path = f"/tmp/deft-shift-{tag}.yml"
        with s.client.open_sftp() as sftp, sftp.open(path, "w") as fh:
            fh.write(yaml.safe_dump(doc))
        return path

    def one(self, policy: str, sport: int = SPORT) -> PolicyRun:
        """One policy's run (steps 1-5 of the module docstring); its flows start at ``sport``."""
        cfg = self.cfg
        res = PolicyRun(policy)
        tag = f"shift-{policy}"
        log.info(
            "[%s] deploying %s (primary %s, secondary %s, spares %s)",
            policy,
            cfg.service,
            self.small.name,
            self.second.name,
            ",".join(self.spares) or "-",
        )
        try:
            self.deploy()
            ctl = self.c.session(self.c.controller)
            conf = self._serve_config(policy, tag)
            t0_ns = int(ctl.exec("date +%s%N").strip())
            pid, _ = ctl.start(
                f"{cfg.placement_deftctl} placement serve --config {conf} 2>>/tmp/deft-shift-{tag}.log"
            )
            prof_path = self.tmp / "profile.yml"
            doc = profile_doc(cfg, sport)
            prof_path.write_text(yaml.safe_dump(doc))
            log.info("[%s] traffic: %s", policy, doc["pattern"])
            try:
                summary = remote.run_across(
                    cfg.inventory,
                    prof_path,
                    profile_from_dict(doc, str(prof_path)),
                    "overlay",
                    cfg.out / policy,
                )
            finally:
                ctl.exec(f"kill -TERM {pid} 2>/dev/null || true")
            t1_ns = int(ctl.exec("date +%s%N").strip())
            self._measure(res, summary, t0_ns, t1_ns, tag)
        except (ShiftError, remote.RemoteError, OSError, ValueError) as exc:
            res.error = str(exc)
            log.error("[%s] %s", policy, exc)
        finally:
            self.undeploy()
        return res

    def _measure(self, res: PolicyRun, s: RunSummary, t0_ns: int, t1_ns: int, tag: str) -> None:
        cfg = self.cfg
        res.sent, res.delivered, res.lost = s.sent, s.unique, s.loss
        res.loss_pct = 100.0 * s.loss / s.sent if s.sent else 0.0
        res.reordered, res.duplicates = s.reordered, s.duplicates
        res.latency_p50_ms, res.latency_p99_ms = s.latency_p50_us / 1e3, s.latency_p99_us / 1e3
        window = f"time >= {t0_ns // 1_000_000}ms AND time <= {t1_ns // 1_000_000 + 5000}ms"
        nf_rows = _query(
            self.c,
            cfg,
            # every instance of the service: the `role` tag is the role an instance started with,
            # and a migration target that started as the secondary processes the traffic afterwards
            'SELECT "processed_pps", "drops_pps", "input_dropped", "instance", '
            + ", ".join(f'"{k}"' for k in INSTANCE_COUNTERS)
            + f" FROM \"nf\" WHERE \"service\" = '{cfg.service}' AND {window}",
        )
        res.series = _series(nf_rows, t0_ns // 1_000_000)
        res.nf_dropped = _dropped(nf_rows)
        res.instances = _instance_counters(nf_rows)
        rows = _query(self.c, cfg, f'SELECT * FROM "placement" WHERE "host" = \'{tag}\' AND {window}')
        res.decisions = len(rows)
        for r in rows:
            name = str(r.get("policy") or "?")
            res.decided_by[name] = res.decided_by.get(name, 0) + 1
        res.migrations = [
            {"t_s": round((int(r["time"]) - t0_ns // 1_000_000) / 1e3, 1), "instance": r.get("instance"),
             "to": r.get("target_host")}
            for r in rows if int(r.get("migrations") or 0) > 0
        ]  # fmt: skip


def write_report(cfg: ShiftConfig, results: list[PolicyRun]) -> Path:
    """``results.json``, ``shift.png`` and ``report.md`` in ``cfg.out``; returns the report's path."""
    import matplotlib  # noqa: PLC0415 - plotting only here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    (out / "results.json").write_text(
        json.dumps({"config": meta, "runs": [asdict(r) for r in results]}, indent=2)
    )
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for r in results:
        line = axes[0].plot(r.series.get("t_s", []), r.series.get("processed_pps", []), label=r.policy)[0]
        axes[1].plot(
            r.series.get("t_s", []), r.series.get("drops_pps", []), color=line.get_color(), label=r.policy
        )
        for m in r.migrations:
            for ax in axes:
                ax.axvline(m["t_s"], color=line.get_color(), linestyle=":", linewidth=1)
    axes[0].set_ylabel("processed (pps)")
    axes[1].set_ylabel("NF input-buffer drops (pps)")
    axes[1].set_xlabel("time since the policy's start (s); dotted: migrations")
    axes[0].legend()
    axes[0].set_title(
        f"load shift {cfg.base_pps:.0f} -> {cfg.peak_pps:.0f} pps at {cfg.shift_at_s:.0f} s; "
        f"small host {cfg.small_cpus} CPU"
    )
    fig.tight_layout()
    fig.savefig(out / "shift.png", dpi=110)
    plt.close(fig)
    lines = [
        "# Live load shift: placement policies on the lab", "",
        f"Service `{cfg.service}` ({cfg.nf_type}, {cfg.flows} flows), primary on the small host "
        f"({cfg.small_cpus} CPU, declared {cfg.small_capacity_pps:.0f} pps); traffic {cfg.base_pps:.0f} pps, "
        f"from {cfg.shift_at_s:.0f} s a {cfg.rise_s:.0f} s ramp to {cfg.peak_pps:.0f} pps, "
        f"{cfg.duration_s:.0f} s in all. Loss, reordering and latency are the sink's (exact, per flow); "
        "NF drops are what the instances' telemetry counts as lost on input (input buffer and socket "
        "buffer).", "",
        "| policy | sent | delivered | lost | loss % | reordered | dup | p50 ms | p99 ms | NF drops "
        "| migrations |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in results:
        moves = ", ".join(f"{m['t_s']:.0f} s -> {m['to']}" for m in r.migrations) or "none"
        others = {k: v for k, v in r.decided_by.items() if k != r.policy}
        if others:
            by = ", ".join(f"{k}: {v} of {r.decisions}" for k, v in others.items())
            moves += f" (decided by {by})"
        if r.error:
            lines.append(f"| {r.policy} | error: {r.error[:200]} | | | | | | | | | |")
            continue
        lines.append(
            f"| {r.policy} | {r.sent} | {r.delivered} | {r.lost} | {r.loss_pct:.2f} | {r.reordered} | "
            f"{r.duplicates} | {r.latency_p50_ms:.1f} | {r.latency_p99_ms:.1f} | {r.nf_dropped} | {moves} |"
        )
    base = next((r for r in results if r.policy == "static" and not r.error), None)
    if base is not None and base.lost > 0:
        lines.append("")
        for r in results:
            if r is not base and not r.error:
                change = 100.0 * (1 - r.lost / base.lost)
                word = "fewer" if change >= 0 else "more"
                lines.append(f"- {r.policy}: {abs(change):.0f} % {word} packets lost than DEFT static.")
    lines += ["", "![processed and dropped packets per second](shift.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def run_shift(cfg: ShiftConfig) -> tuple[list[PolicyRun], Path]:
    """The whole comparison; returns the runs and the report's path."""
    t0 = time.monotonic()
    results = ShiftRun(cfg).run()
    report = write_report(cfg, results)
    log.info("load shift comparison done in %.0f s: %s", time.monotonic() - t0, report)
    return results, report
