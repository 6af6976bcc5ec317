"""Vectorised cluster simulator: a batch of B independent clusters advanced in lock-step with numpy.

Model (per environment, per step of ``step_s`` seconds):

* **Hosts** have a capacity ``mu`` (pps) and may be down (scenario failures). A down host's VNFs fail
  over to their DEFT secondary on the next host up in ring order (charged ``failover_ms`` of SLA
  violation, no loss: the secondary holds the duplicates).
* **VNFs** offer ``rate`` pps (exogenous trace, see :mod:`placement.traces`). New VNFs are placed
  round-robin over up hosts, as DEFT's stamper does; existing ones only move when a policy moves them.
* **Service**: host load ``lam`` = sum of its VNFs' rates. A fluid queue ``q`` (packets) grows by
  ``(lam - mu) * step_s`` and is capped by the hosts' buffers (``buffer_pkts_per_vnf`` per VNF);
  overflow is dropped. Per-packet latency is the M/M/1-style ``base_ms / (1 - rho)`` (``rho`` capped
  at 0.99) plus the queue wait ``q / mu``. A VNF violates its SLA in a step when its host's latency
  exceeds ``sla_ms`` or while it is migrating (packets are held during the downtime).
* **Migration** of VNF v to host h costs downtime ``migration_fixed_ms + state_bytes / transfer_rate``
  (SLA seconds) and ``state_bytes`` moved (MB cost). At most one move per environment per step.
* **Telemetry delay**: policies observe rates, CPU and latency as they were ``telemetry_delay_s``
  ago (rounded to steps) while they know the current placement, exactly like the live service.
  The snapshot also carries each VNF's mean rate over the last ``TREND_SHORT_S`` / ``TREND_LONG_S``
  of that lagged telemetry (steps where the VNF existed only), the input of the rate-trend features.

Composite cost = ``cost_sla_per_s * SLA-violation VNF-seconds + cost_drop_per_kpkt * kpkts dropped
+ cost_overload_per_s * host-seconds above the overload threshold + cost_migration_per_mb * MB moved``
with every term kept separately in :class:`Metrics`. Everything is deterministic given the seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from placement.calibration import Calibration, load_calibration
from placement.observation import (
    TREND_LONG_S,
    TREND_SHORT_S,
    Observation,
    Snapshot,
    build_observation,
    host_loads,
)
from placement.scenario import Scenario
from placement.traces import Traces, build_traces

NOOP = -1
COST_TERMS = ("sla_s", "drops_kpkt", "overload_s", "migration_mb")


@dataclass
class Metrics:
    """Cumulative per-environment outcome counters ([B] arrays)."""

    sla_s: np.ndarray  # VNF-seconds with latency over SLA (incl. migration/failover downtime)
    drops_pkt: np.ndarray  # packets dropped (buffer overflow)
    overload_s: np.ndarray  # host-seconds above the overload threshold
    migrations: np.ndarray  # policy-driven moves carried out
    migration_bytes: np.ndarray  # state bytes moved by those moves
    migration_downtime_s: np.ndarray  # sum of their downtimes
    failovers: np.ndarray  # VNFs moved by host failures (not the policy's doing)
    invalid_actions: np.ndarray  # chosen moves that were infeasible (treated as no-op)
    offered_pkt: np.ndarray  # packets offered in total

    @classmethod
    def zeros(cls, n: int) -> Metrics:
        return cls(*(np.zeros(n) for _ in range(9)))

    def cost_terms(self, cal: Calibration) -> dict[str, np.ndarray]:
        """Weighted composite-cost terms, each [B]."""
        return {
            "sla_s": cal.v("cost_sla_per_s") * self.sla_s,
            "drops_kpkt": cal.v("cost_drop_per_kpkt") * self.drops_pkt / 1e3,
            "overload_s": cal.v("cost_overload_per_s") * self.overload_s,
            "migration_mb": cal.v("cost_migration_per_mb") * self.migration_bytes / 1e6,
        }

    def cost(self, cal: Calibration) -> np.ndarray:
        """Composite cost [B] (sum of :meth:`cost_terms`)."""
        terms = self.cost_terms(cal)
        total: np.ndarray = np.sum([terms[k] for k in COST_TERMS], axis=0)
        return total


@dataclass
class _History:
    """Ring buffer of past telemetry so observations can lag like production."""

    rates: list[np.ndarray] = field(default_factory=list)  # kept for the long trend window too
    active: list[np.ndarray] = field(default_factory=list)  # VNF existed (same length as rates)
    cpu: list[np.ndarray] = field(default_factory=list)
    pps: list[np.ndarray] = field(default_factory=list)
    lat: list[np.ndarray] = field(default_factory=list)


class ClusterSim:
    """B clusters of one scenario, one seed each; call :meth:`reset` then :meth:`step` repeatedly."""

    def __init__(self, scenario: Scenario, seeds: Sequence[int], calibration: Calibration | None = None):
        self.sc = scenario
        self.cal = calibration or load_calibration()
        self.seeds = list(seeds)
        self.B = len(self.seeds)
        self.H = scenario.n_hosts
        self.V = scenario.n_vnfs
        self.T = scenario.steps
        self.dt = scenario.step_s
        self.delay_steps = round(self.cal.v("telemetry_delay_s") / self.dt)
        self.short_steps = max(1, round(TREND_SHORT_S / self.dt))
        self.long_steps = max(self.short_steps, round(TREND_LONG_S / self.dt))
        self.traces: Traces = build_traces(scenario, self.seeds)
        self._bidx = np.arange(self.B)
        self._cap = np.broadcast_to(self.traces.host_capacity_pps.astype(np.float64), (self.B, self.H))
        self._state = np.broadcast_to(self.traces.state_bytes.astype(np.float64), (self.B, self.V))
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> Observation:
        """Start every environment at t = 0 with DEFT's static round-robin placement."""
        self.t = 0
        self.placement = np.zeros((self.B, self.V), dtype=np.int64)
        self.mig_left_s = np.zeros((self.B, self.V))
        self.queue = np.zeros((self.B, self.H))
        self.rr = np.zeros(self.B, dtype=np.int64)
        self.metrics = Metrics.zeros(self.B)
        self._prev_active = np.zeros((self.B, self.V), dtype=bool)
        self._hist = _History()
        self._place_arrivals(0)
        self._failover(0)
        zero_h = np.zeros((self.B, self.H))
        self._push_history(
            self.traces.rates_pps[:, 0].astype(np.float64),
            self.traces.active[:, 0],
            zero_h,
            zero_h,
            np.full((self.B, self.V), self.cal.v("latency_base_ms")),
        )
        return self.observe()

    @property
    def done(self) -> bool:
        return self.t >= self.T

    def snapshot(self) -> Snapshot:
        """Telemetry as the controller would see it now (lagged measurements, current placement)."""
        k = max(0, len(self._hist.cpu) - 1 - self.delay_steps)  # the lagged entry (short lists)
        kr = max(0, len(self._hist.rates) - 1 - self.delay_steps)  # the same entry in the rate list
        t = min(self.t, self.T - 1)
        short, long = (self._window_mean(kr, w) for w in (self.short_steps, self.long_steps))
        return Snapshot(
            host_capacity_pps=self._cap,
            host_up=self.traces.host_up[:, t],
            host_pps=self._hist.pps[k],
            host_cpu=self._hist.cpu[k],
            vnf_rate_pps=self._hist.rates[kr],
            vnf_host=self.placement,
            vnf_latency_ms=self._hist.lat[k],
            vnf_active=self.traces.active[:, t],
            vnf_state_bytes=self._state,
            vnf_migrating=self.mig_left_s > 0,
            sla_ms=self.sc.sla_ms,
            overload_threshold=self.cal.v("overload_threshold"),
            vnf_rate_short_pps=short,
            vnf_rate_long_pps=long,
        )

    def _window_mean(self, k: int, steps: int) -> np.ndarray:
        """Mean rate (pps) per VNF over the ``steps`` history entries ending at index ``k``, counting
        only entries where the VNF existed (like telemetry, which has no points before it does)."""
        lo = max(0, k - steps + 1)
        r = np.sum(self._hist.rates[lo : k + 1], axis=0)
        c = np.sum(self._hist.active[lo : k + 1], axis=0)
        out: np.ndarray = r / np.maximum(c, 1)
        return out

    def observe(self) -> Observation:
        return build_observation(self.snapshot())

    # ------------------------------------------------------------------ dynamics
    def step(self, moves: np.ndarray) -> np.ndarray:
        """Apply ``moves`` [B, 2] = (vnf index or -1, target host), advance one step.

        Returns the composite cost incurred in this step per environment [B] (>= 0).
        """
        if self.done:
            raise RuntimeError("episode finished; call reset()")
        t = self.t
        before = self.metrics.cost(self.cal)
        self._apply_moves(np.asarray(moves, dtype=np.int64).reshape(self.B, 2), t)
        self._serve(t)
        self.t += 1
        if not self.done:  # the world changes before the next decision: arrivals land, failed hosts fail over
            self._place_arrivals(self.t)
            self._failover(self.t)
        step_cost: np.ndarray = self.metrics.cost(self.cal) - before
        return step_cost

    def _apply_moves(self, moves: np.ndarray, t: int) -> None:
        v, h = moves[:, 0], moves[:, 1]
        want = v != NOOP
        vc = np.clip(v, 0, self.V - 1)
        hc = np.clip(h, 0, self.H - 1)
        ok = (
            want
            & (v >= 0)
            & (v < self.V)
            & (h >= 0)
            & (h < self.H)
            & self.traces.active[self._bidx, t, vc]
            & self.traces.host_up[self._bidx, t, hc]
            & (self.placement[self._bidx, vc] != hc)
            & (self.mig_left_s[self._bidx, vc] <= 0)
        )
        self.metrics.invalid_actions += want & ~ok
        if not ok.any():
            return
        b = self._bidx[ok]
        vv, hh = vc[ok], hc[ok]
        nbytes = self._state[b, vv]
        down = self.cal.v("migration_fixed_ms") / 1e3 + nbytes / self.cal.v("transfer_bytes_per_s")
        self.placement[b, vv] = hh
        self.mig_left_s[b, vv] = down
        self.metrics.migrations[b] += 1
        self.metrics.migration_bytes[b] += nbytes
        self.metrics.migration_downtime_s[b] += down

    def _place_arrivals(self, t: int) -> None:
        act = self.traces.active[:, t]
        new = act & ~self._prev_active
        self._prev_active = act.copy()
        if not new.any():
            return
        up = self.traces.host_up[:, t]
        for b in np.flatnonzero(new.any(axis=1)):
            hosts = np.flatnonzero(up[b])
            idx = np.flatnonzero(new[b])
            self.placement[b, idx] = hosts[(self.rr[b] + np.arange(idx.size)) % hosts.size]
            self.rr[b] = (self.rr[b] + idx.size) % hosts.size

    def _failover(self, t: int) -> None:
        up = self.traces.host_up[:, t]
        if up.all():
            return
        nxt = np.full((self.B, self.H), -1, dtype=np.int64)
        hs = np.arange(self.H)
        for k in range(1, self.H + 1):
            cand = (hs + k) % self.H
            take = (nxt < 0) & up[:, cand]
            nxt = np.where(take, cand[None, :], nxt)
        on_down = ~up[self._bidx[:, None], self.placement]
        if not on_down.any():
            return
        b, v = np.nonzero(on_down)
        self.placement[b, v] = nxt[b, self.placement[b, v]]
        act = self.traces.active[b, t, v]
        self.mig_left_s[b, v] = np.maximum(self.mig_left_s[b, v], self.cal.v("failover_ms") / 1e3)
        np.add.at(self.metrics.failovers, b, act.astype(np.float64))
        self.queue[~up] = 0.0

    def _serve(self, t: int) -> None:
        dt = self.dt
        rates = self.traces.rates_pps[:, t].astype(np.float64)
        act = self.traces.active[:, t]
        up = self.traces.host_up[:, t]
        lam = host_loads(self.placement, rates, self.H)
        mu = self._cap * up
        nv = host_loads(self.placement, act.astype(np.float64), self.H)
        buf = np.maximum(nv, 1.0) * self.cal.v("buffer_pkts_per_vnf")
        q = self.queue + (lam - mu) * dt
        drops = np.maximum(q - buf, 0.0)
        self.queue = np.clip(q, 0.0, buf) * up
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(mu > 0, lam / mu, 0.0)
            wait_ms = np.where(mu > 0, 1e3 * self.queue / mu, 0.0)
        lat_h = self.cal.v("latency_base_ms") / (1.0 - np.minimum(rho, 0.99)) + wait_ms
        lat_v = lat_h[self._bidx[:, None], self.placement]
        mig_frac = np.minimum(self.mig_left_s, dt) / dt
        viol = np.maximum((lat_v > self.sc.sla_ms).astype(np.float64), mig_frac) * act
        self.mig_left_s = np.maximum(self.mig_left_s - dt, 0.0)
        m = self.metrics
        m.sla_s += viol.sum(axis=1) * dt
        m.drops_pkt += drops.sum(axis=1)
        m.overload_s += ((rho > self.cal.v("overload_threshold")) & up).sum(axis=1) * dt
        m.offered_pkt += rates.sum(axis=1) * dt
        self._push_history(rates, act, np.minimum(rho, 1.0), np.minimum(lam, mu), lat_v)

    def _push_history(
        self, rates: np.ndarray, active: np.ndarray, cpu: np.ndarray, pps: np.ndarray, lat: np.ndarray
    ) -> None:
        h = self._hist
        for lst, x, keep in (
            (h.rates, rates, self.delay_steps + self.long_steps),
            (h.active, active, self.delay_steps + self.long_steps),
            (h.cpu, cpu, self.delay_steps + 1),
            (h.pps, pps, self.delay_steps + 1),
            (h.lat, lat, self.delay_steps + 1),
        ):
            lst.append(x)
            if len(lst) > keep:
                lst.pop(0)
