"""``deftctl placement serve``: live placement from InfluxDB telemetry to SSH-driven migrations.

One decision round (every ``interval_s``):

1. **Read** the last ``window_s`` of telemetry with InfluxQL (``agent/schema.py``: measurement ``nf``
   per primary instance: ``processed_pps``, ``latency_ms``, tag ``host``; measurement ``host``:
   ``cpu_percent``) through ``agent.query.QueryClient`` and the contract file
   ``/etc/deft/telemetry.yml``. A live "VNF" is an NF instance (primary); its host is the ``host``
   tag; host capacities (pps) come from this service's config.
2. **Observe**: fill a :class:`~placement.observation.Snapshot` and call THE observation builder, the
   same one the simulator uses, so the trained network sees what it was trained on. The snapshot
   also carries each instance's mean offered rate over the last ``TREND_SHORT_S`` and
   ``TREND_LONG_S`` of telemetry before the newest point (the rate-trend inputs).
3. **Decide** with the configured policy (``rl`` = the shipped model). If the model cannot be loaded,
   or the newest telemetry is older than ``stale_after_s``, the fallback heuristic decides instead
   (telemetry that is stale *and* older than ``window_s`` yields no decision at all).
4. **Guard**: hysteresis (a move must lower the hotter of the two hosts' utilisation by ``min_gain``;
   a VNF is not moved again within ``vnf_cooldown_s``) and rate limits (``min_gap_s`` between
   migrations, ``max_per_hour``).
5. **Act**: unless ``--dry-run``, SSH (paramiko) to the instance's host and run the agent command
   ``deftctl agent migrate -i <instance> --to <host> --json`` (agent/commands.py). The migration
   protocol (nf/migration.py) keeps exactly one owner per flow group whatever happens to SSH; if the
   SSH session fails mid-way the outcome is unknown to us, so the service never retries blindly: it
   records the failure, freezes decisions for one telemetry window and re-reads ownership (rates per
   instance) before deciding again.
6. **Record** every decision (measurement ``placement``) and every migration attempt (``event``,
   kind ``placement``/``migration``) in InfluxDB: Grafana shows them as annotations.
"""

from __future__ import annotations

import logging
import math
import shlex
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from agent.remote import SshConfig, SshError, run_command
from deftctl.config import ConfigError, from_dict, read_yaml
from placement.observation import (
    TREND_LONG_S,
    TREND_SHORT_S,
    Observation,
    Snapshot,
    build_observation,
    pair_mask,
)
from placement.policies import DEFAULT_MODEL, NOOP, Policy, make_policy
from placement.policies.lookahead import DEFAULT_LOOKAHEAD, LookaheadConfig

log = logging.getLogger(__name__)
DEFAULT_SERVICE_FILE = Path("/etc/deft/placement.yml")


class ServiceError(RuntimeError):
    """The service cannot run (bad config, no telemetry contract); the message says what to fix."""


@dataclass(frozen=True)
class HostEntry:
    """One NFV host the service may place VNFs on."""

    name: str  # inventory hostname = the `host` tag in telemetry
    address: str  # SSH address (management network)
    capacity_pps: float = 0.0  # 0 = ServiceConfig.default_capacity_pps
    ssh_port: int = 22


@dataclass(frozen=True)
class ServiceConfig:
    """``/etc/deft/placement.yml`` (written by the ``placement`` role)."""

    hosts: list[HostEntry] = field(default_factory=list)
    telemetry_file: Path = Path("/etc/deft/telemetry.yml")
    controller: str = field(default_factory=socket.gethostname)  # `host` tag of our own points
    policy: str = "rl"
    fallback_policy: str = "least-loaded"
    model: Path = DEFAULT_MODEL
    interval_s: float = 5.0
    window_s: float = 10.0
    stale_after_s: float = 15.0
    default_capacity_pps: float = 100000.0
    sla_ms: float = 10.0
    overload_threshold: float = 0.8
    lookahead: bool = True  # RL decision-time search (policies/lookahead.py); a step = interval_s
    min_gain: float = 0.05
    vnf_cooldown_s: float = 120.0
    min_gap_s: float = 30.0
    max_per_hour: int = 30
    agent_command: str = "deftctl agent migrate"
    ssh: SshConfig = field(default_factory=SshConfig)

    def __post_init__(self) -> None:
        for k in ("interval_s", "window_s", "stale_after_s", "default_capacity_pps", "sla_ms"):
            if getattr(self, k) <= 0:
                raise ValueError(f"{k}: must be > 0, got {getattr(self, k)}")
        if not 0 < self.overload_threshold <= 1:
            raise ValueError(f"overload_threshold: must be in (0, 1], got {self.overload_threshold}")
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError(f"hosts: duplicate names in {names}")

    def lookahead_config(self) -> LookaheadConfig | None:
        """The RL search for this service: the default one, with a decision every ``interval_s``
        and this service's SLA; None when ``lookahead`` is off."""
        if not self.lookahead or DEFAULT_LOOKAHEAD is None:
            return None
        return replace(DEFAULT_LOOKAHEAD, step_s=self.interval_s, sla_ms=self.sla_ms)

    @classmethod
    def load(cls, path: Path | None, telemetry_file: Path | None = None) -> ServiceConfig:
        """Load ``path`` (None = defaults); ``telemetry_file`` overrides the contract location."""
        data: dict[str, Any] = {}
        if path is not None:
            raw = read_yaml(path)
            if raw is not None and not isinstance(raw, dict):
                raise ConfigError(f"{path}: expected a mapping at top level")
            data = dict(raw or {})
        if telemetry_file is not None:
            data["telemetry_file"] = str(telemetry_file)
        return from_dict(cls, data, source=str(path or "<defaults>"))

    def capacity(self, host: str) -> float:
        for h in self.hosts:
            if h.name == host and h.capacity_pps > 0:
                return h.capacity_pps
        return self.default_capacity_pps


# ------------------------------------------------------------------------------- telemetry
@dataclass
class LiveView:
    """What one telemetry read found: names in index order, the snapshot, and the data age (s)."""

    hosts: list[str]
    vnfs: list[str]
    snapshot: Snapshot
    age_s: float


def read_telemetry(client: Any, cfg: ServiceConfig, now_ns: int | None = None) -> LiveView:
    """Query ``nf`` and ``host`` points and build the live snapshot from the newest ``window_s`` of them.

    The query looks back ``2 * max(window_s, stale_after_s, TREND_LONG_S)`` so that stale telemetry is
    still found (and reported as stale: ``age_s``) instead of looking like an empty cluster; values are
    averaged over the ``window_s`` before the newest point, and each instance's offered rate also over
    the last ``TREND_SHORT_S`` and ``TREND_LONG_S`` (s) before it (the rate-trend inputs).
    ``client`` is an ``agent.query.QueryClient`` (``rows(influxql)``). Hosts are the configured ones
    (points of other hosts, e.g. traffic hosts' agents, are ignored), or every host seen in telemetry
    when none is configured; a host with neither a ``host`` point nor an NF in the window is down.
    """
    now_ns = now_ns or time.time_ns()
    w = f"{math.ceil(2 * max(cfg.window_s, cfg.stale_after_s, TREND_LONG_S))}s"
    nf_rows = client.rows(
        f'SELECT "processed_pps", "drops_pps", "latency_ms", "up" FROM "nf" WHERE time > now() - {w} '
        f'AND "role" != \'secondary\' GROUP BY "host", "instance"'
    )
    host_rows = client.rows(f'SELECT "cpu_percent" FROM "host" WHERE time > now() - {w} GROUP BY "host"')
    latest = max((int(r["time"]) for r in [*nf_rows, *host_rows]), default=0)
    since = latest - int(cfg.window_s * 1e9)
    hosts = [h.name for h in cfg.hosts]
    if hosts:
        # only the configured NFV hosts: agents on traffic hosts and the controller report `host`
        # points too, and they must never become placement targets
        host_rows = [r for r in host_rows if r.get("host") in hosts]
        nf_rows = [r for r in nf_rows if r.get("host") in hosts]
    trend_rows = nf_rows
    nf_rows = [r for r in nf_rows if int(r["time"]) >= since]
    host_rows = [r for r in host_rows if int(r["time"]) >= since]
    if not hosts:
        for r in [*host_rows, *nf_rows]:
            if r.get("host") and r["host"] not in hosts:
                hosts.append(str(r["host"]))
    newest = 0
    cpu: dict[str, list[float]] = defaultdict(list)
    for r in host_rows:
        newest = max(newest, int(r["time"]))
        if r.get("cpu_percent") is not None:
            cpu[r["host"]].append(float(r["cpu_percent"]) / 100.0)
    inst: dict[str, dict[str, Any]] = {}
    for r in nf_rows:
        newest = max(newest, int(r["time"]))
        d = inst.setdefault(r["instance"], {"host": r["host"], "t": 0, "rate": [], "lat": []})
        if int(r["time"]) >= d["t"]:  # the newest point decides where the instance is now
            d["t"], d["host"] = int(r["time"]), r["host"]
        if r.get("processed_pps") is not None:
            # offered load = processed + input-buffer drops: a saturated NF processes at its host's
            # capacity, and only its drops show how much more it is asked to carry
            d["rate"].append(float(r["processed_pps"]) + float(r.get("drops_pps") or 0.0))
        if r.get("latency_ms") is not None:
            d["lat"].append(float(r["latency_ms"]))
    vnfs = sorted(inst)
    short, long = (_window_rates(trend_rows, vnfs, latest, w_s) for w_s in (TREND_SHORT_S, TREND_LONG_S))
    h_idx = {h: i for i, h in enumerate(hosts)}
    n_h, n_v = len(hosts), len(vnfs)
    host_pps = np.zeros((1, n_h))
    rates = np.array([[float(np.mean(inst[v]["rate"])) if inst[v]["rate"] else 0.0 for v in vnfs]])
    vh = np.array([[h_idx[inst[v]["host"]] for v in vnfs]], dtype=np.int64).reshape(1, n_v)
    for j in range(n_v):
        host_pps[0, vh[0, j]] += rates[0, j]
    up = np.array([[h in cpu or any(inst[v]["host"] == h for v in vnfs) for h in hosts]])
    snap = Snapshot(
        host_capacity_pps=np.array([[cfg.capacity(h) for h in hosts]]),
        host_up=up,
        host_pps=host_pps,
        host_cpu=np.array([[float(np.mean(cpu[h])) if cpu.get(h) else 0.0 for h in hosts]]),
        vnf_rate_pps=rates,
        vnf_host=vh,
        vnf_latency_ms=np.array([[float(np.mean(inst[v]["lat"])) if inst[v]["lat"] else 0.0 for v in vnfs]]),
        vnf_active=np.ones((1, n_v), dtype=bool),
        vnf_state_bytes=np.zeros((1, n_v)),
        vnf_migrating=np.zeros((1, n_v), dtype=bool),
        sla_ms=cfg.sla_ms,
        overload_threshold=cfg.overload_threshold,
        vnf_rate_short_pps=np.where(np.isnan(short), rates, short),
        vnf_rate_long_pps=np.where(np.isnan(long), rates, long),
    )
    age = (now_ns - newest) / 1e9 if newest else math.inf
    return LiveView(hosts, vnfs, snap, age)


def _window_rates(rows: list[dict[str, Any]], vnfs: list[str], latest_ns: int, window_s: float) -> np.ndarray:
    """[1, V] mean offered rate (pps: processed + drops) per instance over the ``window_s`` seconds up
    to ``latest_ns`` (points strictly after ``latest_ns - window_s``); NaN where it has none."""
    since = latest_ns - int(window_s * 1e9)
    acc: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if int(r["time"]) > since and r.get("processed_pps") is not None:
            acc[r["instance"]].append(float(r["processed_pps"]) + float(r.get("drops_pps") or 0.0))
    return np.array([[float(np.mean(acc[v])) if acc.get(v) else math.nan for v in vnfs]])


# ------------------------------------------------------------------------------- SSH executor
class SshExecutor:
    """Runs agent commands on hosts with paramiko (one connection per command: rare, simple)."""

    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.by_name = {h.name: h for h in cfg.hosts}

    def run(self, host: str, command: str) -> tuple[int, str, str]:
        """Run ``command`` on ``host``; returns (exit status, stdout, stderr) or raises :class:`SshError`."""
        entry = self.by_name.get(host)
        if entry is None:
            raise SshError(f"host {host!r} is not in the service config (hosts: {sorted(self.by_name)})")
        return run_command(host, entry.address, entry.ssh_port, self.cfg.ssh, command)


# ------------------------------------------------------------------------------- decision loop
@dataclass
class Decision:
    """One round's outcome (also what ``--once --dry-run`` prints)."""

    policy: str
    instance: str = ""
    src_host: str = ""
    dst_host: str = ""
    reason: str = ""
    executed: bool = False
    ok: bool = True
    decision_ms: float = 0.0


class PlacementService:
    """State of a running service: policies, rate limiter, cooldowns, event writer."""

    def __init__(
        self,
        cfg: ServiceConfig,
        client: Any,
        writer: Any | None,
        executor: SshExecutor | None,
        dry_run: bool = False,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.writer = writer
        self.executor = executor
        self.dry_run = dry_run
        self.fallback: Policy = make_policy(cfg.fallback_policy)
        self.primary: Policy | None = None
        try:
            self.primary = make_policy(cfg.policy, model=cfg.model, lookahead=cfg.lookahead_config())
        except (FileNotFoundError, RuntimeError, ValueError, KeyError) as exc:
            log.warning("policy %s unavailable (%s); using fallback %s", cfg.policy, exc, cfg.fallback_policy)
        self.last_move: dict[str, float] = {}
        self.history: list[float] = []
        self.hold_until = 0.0

    def _choose(self, view: LiveView) -> tuple[Policy, Observation, np.ndarray, str]:
        obs = build_observation(view.snapshot)
        mask = pair_mask(obs)
        if self.primary is None:
            return self.fallback, obs, mask, "model unavailable"
        if view.age_s > self.cfg.stale_after_s:
            return self.fallback, obs, mask, f"telemetry stale ({view.age_s:.0f} s)"
        return self.primary, obs, mask, ""

    def round(self, now: float | None = None) -> Decision:
        """One read-decide-guard-act-record round."""
        now = time.time() if now is None else now
        if now < self.hold_until:
            return Decision("none", reason="re-reading ownership after a failed migration")
        view = read_telemetry(self.client, self.cfg)
        if not view.vnfs:
            d = Decision("none", reason=f"no usable telemetry (age {view.age_s:.0f} s, {len(view.vnfs)} NFs)")
            self._record(d)
            return d
        pol, obs, mask, why = self._choose(view)
        t0 = time.perf_counter()
        mv = pol.decide(obs, mask)[0]
        d = Decision(pol.name, reason=why, decision_ms=1e3 * (time.perf_counter() - t0))
        if mv[0] != NOOP:
            v, h = int(mv[0]), int(mv[1])
            d.instance, d.dst_host = view.vnfs[v], view.hosts[h]
            d.src_host = view.hosts[int(obs.vnf_host[0, v])]
            block = self._guard(obs, v, h, now, d.instance)
            if block:
                d.reason = "; ".join(x for x in (why, block) if x)
                d.instance = d.src_host = d.dst_host = ""
            elif not self.dry_run:
                self._migrate(d, now)
            else:
                d.reason = "; ".join(x for x in (why, "dry run") if x)
        self._record(d)
        return d

    def _guard(self, obs: Observation, v: int, h: int, now: float, name: str) -> str:
        """Hysteresis and rate limits; returns why the move is blocked ('' = allowed)."""
        cfg = self.cfg
        util = obs.host_load_pps[0] / obs.host_capacity_pps[0]
        src = int(obs.vnf_host[0, v])
        r = obs.vnf_rate_pps[0, v]
        before = max(util[src], util[h])
        after = max(util[src] - r / obs.host_capacity_pps[0, src], util[h] + r / obs.host_capacity_pps[0, h])
        if before - after < cfg.min_gain:
            return f"hysteresis: gain {before - after:.3f} < {cfg.min_gain}"
        if now - self.last_move.get(name, -math.inf) < cfg.vnf_cooldown_s:
            return "hysteresis: VNF moved recently"
        self.history = [t for t in self.history if now - t < 3600]
        if self.history and now - self.history[-1] < cfg.min_gap_s:
            return f"rate limit: < {cfg.min_gap_s:.0f} s since the last migration"
        if len(self.history) >= cfg.max_per_hour:
            return f"rate limit: {cfg.max_per_hour} migrations in the last hour"
        return ""

    def _migrate(self, d: Decision, now: float) -> None:
        assert self.executor is not None
        cmd = f"{self.cfg.agent_command} -i {shlex.quote(d.instance)} --to {shlex.quote(d.dst_host)} --json"
        t0 = time.monotonic()
        self.history.append(now)
        self.last_move[d.instance] = now
        d.executed = True
        try:
            status, out, err = self.executor.run(d.src_host, cmd)
            d.ok = status == 0
            d.reason = (d.reason + "; " if d.reason else "") + (
                "migrated" if d.ok else f"agent exit {status}: {(err or out).strip()[-300:]}"
            )
        except SshError as exc:
            d.ok = False
            d.reason = f"SSH failed, outcome unknown; re-reading ownership: {exc}"
            self.hold_until = now + self.cfg.window_s  # never retry blindly
        ms = 1e3 * (time.monotonic() - t0)
        log.log(
            logging.INFO if d.ok else logging.WARNING,
            "migration %s %s -> %s: %s",
            d.instance,
            d.src_host,
            d.dst_host,
            d.reason,
        )
        self._write_event(
            "migration",
            f"placement: migrate {d.instance} {d.src_host} -> {d.dst_host}",
            d.reason,
            d.instance,
            d.ok,
            ms,
            src_host=d.src_host,
            dst_host=d.dst_host,
        )

    def _write_event(
        self, kind: str, title: str, text: str, instance: str, ok: bool, ms: float, **extra: Any
    ) -> None:
        if self.writer is None:
            return
        from agent.events import event_point  # noqa: PLC0415

        self._write([event_point(self.cfg.controller, kind, title, text, instance, ok, ms, **extra)])

    def _record(self, d: Decision) -> None:
        if self.writer is None:
            return
        from agent.schema import make_point  # noqa: PLC0415

        fields: dict[str, Any] = {
            "migrations": int(d.executed and d.ok),
            "decision_ms": d.decision_ms,
            "instance": d.instance,
            "target_host": d.dst_host,
        }
        pts = [
            make_point("placement", {"host": self.cfg.controller, "policy": d.policy}, fields, time.time_ns())
        ]
        if d.instance and not d.executed:  # a proposal (dry run): an annotation too
            from agent.events import event_point  # noqa: PLC0415

            pts.append(
                event_point(
                    self.cfg.controller,
                    "placement",
                    f"placement proposes {d.instance} {d.src_host} -> {d.dst_host}",
                    d.reason or d.policy,
                    d.instance,
                    True,
                    d.decision_ms,
                    src_host=d.src_host,
                    dst_host=d.dst_host,
                )
            )
        self._write(pts)

    def _write(self, points: list[Any]) -> None:
        if self.writer is None:
            return
        try:
            self.writer.write([p.to_line() for p in points])
        except Exception as exc:  # a telemetry outage must not stop placement
            log.warning("could not record %d point(s): %s", len(points), exc)


def run_service(cfg: ServiceConfig, dry_run: bool = False, once: bool = False) -> list[Decision]:
    """Run rounds every ``interval_s`` (forever, or once); bad rounds are logged and the loop goes on."""
    from agent.config import load_telemetry  # noqa: PLC0415
    from agent.query import QueryClient  # noqa: PLC0415
    from agent.writer import make_writer  # noqa: PLC0415

    try:
        tel = load_telemetry(cfg.telemetry_file)
    except (ConfigError, OSError) as exc:
        raise ServiceError(f"telemetry contract unusable: {exc}") from exc
    svc = PlacementService(cfg, QueryClient(tel), make_writer(tel), SshExecutor(cfg), dry_run=dry_run)
    out: list[Decision] = []
    while True:
        t0 = time.monotonic()
        try:
            d = svc.round()
            out.append(d)
            log.info(
                "decision: policy=%s move=%s %s->%s executed=%s ok=%s %s",
                d.policy,
                d.instance or "-",
                d.src_host or "-",
                d.dst_host or "-",
                d.executed,
                d.ok,
                d.reason,
            )
        except Exception as exc:  # keep serving: the next round may succeed (InfluxDB back, ...)
            if once:
                raise ServiceError(f"decision round failed: {exc}") from exc
            log.exception("decision round failed; continuing")
        if once:
            return out
        time.sleep(max(0.0, cfg.interval_s - (time.monotonic() - t0)))
