"""THE placement observation: one builder for the simulator and for the live service.

Both worlds first describe the cluster as a :class:`Snapshot` of plain numbers a telemetry system
can deliver (per host: capacity, up, measured pps and CPU; per VNF: measured rate, host, latency,
state size, migrating). The simulator fills it from its (lagged) internal state; ``placement serve``
fills it from InfluxDB rows (agent/schema.py). :func:`build_observation` turns a snapshot into
size-independent features:

* a fixed-length feature vector per host (``HOST_FEATURES``) and per VNF (``VNF_FEATURES``), so a
  network that scores hosts/VNFs with shared weights works on 4 hosts or on 50;
* the raw quantities baselines need (estimated host load from the *current* placement and the
  last measured VNF rates, capacities), so heuristics and RL see exactly the same information.

Rate trends (``VNF_TREND_FEATURES``, ``HOST_TREND_FEATURES``): when the snapshot carries each VNF's
mean rate over the last ``TREND_SHORT_S`` and over the last ``TREND_LONG_S`` seconds of (lagged)
telemetry, the observation also holds the rate slope (pps/s, from the difference of the two means
over the distance of their centres) and features derived from it. They are kept apart from
``hosts``/``vnfs`` so networks trained without them still load; without those means every trend is 0.

Arrays carry a leading batch dimension ``B`` (``B = 1`` in the live service). Rates are pps,
latencies ms, state sizes bytes; utilisations are fractions of capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOST_FEATURES = (
    "up",
    "capacity_rel",  # capacity / mean capacity of up hosts
    "util_est",  # load from current placement and last rates / capacity
    "cpu",  # measured CPU utilisation (telemetry, lagged)
    "util_meas",  # measured processed pps / capacity (telemetry, lagged)
    "util_dev",  # util_est - cluster mean util_est
    "over",  # util_est > overload threshold
    "vnf_share",  # VNFs on host / mean VNFs per up host
    "headroom_rel",  # (threshold * capacity - load) / mean capacity
)
VNF_FEATURES = (
    "active",
    "rate_rel",  # rate / mean host capacity
    "rate_host",  # rate / own host capacity
    "host_util",  # util_est of own host
    "host_over",  # own host over threshold
    "latency_sla",  # measured latency / SLA (clipped)
    "migrating",
    "state_log",  # log10(1 + state MB)
)
VNF_TREND_FEATURES = (
    "rise_rel",  # slope * TREND_HORIZON_S / mean host capacity (signed; > 0 rising)
    "ratio",  # short-window mean / long-window mean - 1, clipped to [-1, TREND_RATIO_CLIP]
    "rise_host",  # slope * TREND_HORIZON_S / own host capacity
    "own_host_rise",  # own host's summed VNF slopes * TREND_HORIZON_S / its capacity
)
HOST_TREND_FEATURES = ("rise",)  # summed slopes of the host's VNFs * TREND_HORIZON_S / capacity
TREND_SHORT_S = 3.0  # s, window of the "recent" mean rate
TREND_LONG_S = 15.0  # s, window of the reference mean rate (ends at the same time)
TREND_HORIZON_S = 10.0  # s, the slope features are the rate change expected over this long
TREND_RATIO_CLIP = 3.0
N_HOST_FEATURES = len(HOST_FEATURES)
N_VNF_FEATURES = len(VNF_FEATURES)
N_VNF_TREND = len(VNF_TREND_FEATURES)
N_HOST_TREND = len(HOST_TREND_FEATURES)
FEATURE_CLIP = 10.0


@dataclass
class Snapshot:
    """What telemetry says about the cluster (leading batch dim ``B``)."""

    host_capacity_pps: np.ndarray  # [B, H] float
    host_up: np.ndarray  # [B, H] bool
    host_pps: np.ndarray  # [B, H] measured processed pps
    host_cpu: np.ndarray  # [B, H] measured CPU utilisation 0..1
    vnf_rate_pps: np.ndarray  # [B, V] measured offered rate
    vnf_host: np.ndarray  # [B, V] int host index (current placement)
    vnf_latency_ms: np.ndarray  # [B, V]
    vnf_active: np.ndarray  # [B, V] bool
    vnf_state_bytes: np.ndarray  # [B, V]
    vnf_migrating: np.ndarray  # [B, V] bool
    sla_ms: float
    overload_threshold: float
    # optional: mean offered rate over the last TREND_SHORT_S / TREND_LONG_S of telemetry (pps);
    # None = no history (every trend feature is 0)
    vnf_rate_short_pps: np.ndarray | None = None  # [B, V]
    vnf_rate_long_pps: np.ndarray | None = None  # [B, V]


def rate_slope(short_pps: np.ndarray, long_pps: np.ndarray) -> np.ndarray:
    """Rate slope in pps/s from the short- and long-window means (both windows end now, so their
    centres are ``(TREND_LONG_S - TREND_SHORT_S) / 2`` seconds apart)."""
    out: np.ndarray = (short_pps - long_pps) / (0.5 * (TREND_LONG_S - TREND_SHORT_S))
    return out


@dataclass
class Observation:
    """Features for learned policies plus the raw numbers baselines use (batch dim ``B``)."""

    hosts: np.ndarray  # [B, H, N_HOST_FEATURES] float32
    vnfs: np.ndarray  # [B, V, N_VNF_FEATURES] float32
    vnf_host: np.ndarray  # [B, V] int64
    host_load_pps: np.ndarray  # [B, H] estimated load from current placement
    host_capacity_pps: np.ndarray  # [B, H]
    host_up: np.ndarray  # [B, H] bool
    vnf_rate_pps: np.ndarray  # [B, V]
    vnf_active: np.ndarray  # [B, V] bool
    vnf_movable: np.ndarray  # [B, V] bool: active and not migrating
    vnf_state_bytes: np.ndarray  # [B, V]
    overload_threshold: float
    vnf_rate_slope: np.ndarray  # [B, V] pps/s (0 without rate history)
    vnf_trend: np.ndarray  # [B, V, N_VNF_TREND] float32
    host_trend: np.ndarray  # [B, H, N_HOST_TREND] float32

    @property
    def batch(self) -> int:
        return int(self.hosts.shape[0])

    @property
    def util(self) -> np.ndarray:
        """Estimated utilisation per host [B, H]; down hosts report +inf."""
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.host_load_pps / self.host_capacity_pps
        return np.where(self.host_up, u, np.inf)

    def index(self, b: int) -> Observation:
        """The single-environment observation ``b`` (still with a batch dim of 1)."""
        return self.take(slice(b, b + 1))

    def take(self, s: slice | np.ndarray) -> Observation:
        """The environments selected by ``s`` (a slice or an index array) along the batch dim."""
        return Observation(
            self.hosts[s],
            self.vnfs[s],
            self.vnf_host[s],
            self.host_load_pps[s],
            self.host_capacity_pps[s],
            self.host_up[s],
            self.vnf_rate_pps[s],
            self.vnf_active[s],
            self.vnf_movable[s],
            self.vnf_state_bytes[s],
            self.overload_threshold,
            self.vnf_rate_slope[s],
            self.vnf_trend[s],
            self.host_trend[s],
        )


def host_loads(vnf_host: np.ndarray, rates: np.ndarray, n_hosts: int) -> np.ndarray:
    """Sum of ``rates`` [B, V] per host of ``vnf_host`` [B, V] -> [B, H] (one bincount, no loop)."""
    b, _ = vnf_host.shape
    flat = (np.arange(b)[:, None] * n_hosts + vnf_host).ravel()
    return np.bincount(flat, weights=rates.ravel(), minlength=b * n_hosts).reshape(b, n_hosts)


def build_observation(s: Snapshot) -> Observation:
    """Snapshot -> :class:`Observation`; see the module docstring for the feature meaning."""
    n_b, n_h = s.host_capacity_pps.shape
    up = s.host_up.astype(bool)
    upf = up.astype(np.float64)
    act = s.vnf_active.astype(bool)
    rate = np.where(act, s.vnf_rate_pps, 0.0)
    cap = np.maximum(s.host_capacity_pps.astype(np.float64), 1e-9)
    n_up = np.maximum(upf.sum(1, keepdims=True), 1.0)
    cap_ref = (cap * upf).sum(1, keepdims=True) / n_up  # [B, 1]
    load = host_loads(s.vnf_host, rate, n_h)
    util = load / cap
    mean_util = (util * upf).sum(1, keepdims=True) / n_up
    nv = host_loads(s.vnf_host, act.astype(np.float64), n_h)
    nv_ref = np.maximum(nv.sum(1, keepdims=True) / n_up, 1.0)
    thr = s.overload_threshold
    hosts = np.stack(
        [
            upf,
            cap / cap_ref,
            util * upf,
            s.host_cpu * upf,
            s.host_pps / cap * upf,
            (util - mean_util) * upf,
            (util > thr) * upf,
            nv / nv_ref,
            (thr * cap - load) / cap_ref * upf,
        ],
        axis=-1,
    )
    vh = s.vnf_host.astype(np.int64)
    bidx = np.arange(n_b)[:, None]
    own_cap = cap[bidx, vh]
    own_util = util[bidx, vh]
    actf = act.astype(np.float64)
    vnfs = np.stack(
        [
            actf,
            rate / cap_ref,
            rate / own_cap,
            own_util * actf,
            (own_util > thr) * actf,
            np.minimum(s.vnf_latency_ms / s.sla_ms, FEATURE_CLIP) * actf,
            s.vnf_migrating.astype(np.float64) * actf,
            np.log10(1.0 + s.vnf_state_bytes / 1e6) * actf,
        ],
        axis=-1,
    )
    slope = np.zeros_like(rate)
    ratio = np.zeros_like(rate)
    if s.vnf_rate_short_pps is not None and s.vnf_rate_long_pps is not None:
        short = np.where(act, s.vnf_rate_short_pps, 0.0)
        long = np.where(act, s.vnf_rate_long_pps, 0.0)
        slope = rate_slope(short, long)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(long > 0, np.clip(short / long - 1.0, -1.0, TREND_RATIO_CLIP), 0.0)
    rise = slope * TREND_HORIZON_S
    host_rise = host_loads(vh, rise, n_h) / cap * upf
    vnf_trend = np.stack(
        [rise / cap_ref, ratio, rise / own_cap, host_rise[bidx, vh] * actf],
        axis=-1,
    )
    return Observation(
        hosts=np.clip(hosts, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32),
        vnfs=np.clip(vnfs, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32),
        vnf_host=vh,
        host_load_pps=load,
        host_capacity_pps=cap,
        host_up=up,
        vnf_rate_pps=rate,
        vnf_active=act,
        vnf_movable=act & ~s.vnf_migrating.astype(bool),
        vnf_state_bytes=np.asarray(s.vnf_state_bytes, dtype=np.float64),
        overload_threshold=thr,
        vnf_rate_slope=slope,
        vnf_trend=np.clip(vnf_trend, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32),
        host_trend=np.clip(host_rise[..., None], -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32),
    )


def pair_mask(obs: Observation) -> np.ndarray:
    """Feasible moves [B, V, H]: VNF movable, target up, not its current host, fits under 100 %.

    "Fits" uses the estimated load, so a move that would itself overflow the target is masked:
    it can only add drops. A policy may still choose not to move (no-op is always feasible).
    """
    n_h = obs.host_up.shape[1]
    after = obs.host_load_pps[:, None, :] + obs.vnf_rate_pps[:, :, None]
    fits = after <= obs.host_capacity_pps[:, None, :]
    own = obs.vnf_host[:, :, None] == np.arange(n_h)[None, None, :]
    out: np.ndarray = fits & ~own & obs.host_up[:, None, :] & obs.vnf_movable[:, :, None]
    return out


def action_masks(obs: Observation, pairs: np.ndarray | None = None) -> np.ndarray:
    """Flat MultiDiscrete mask [B, V + 1 + H] (sb3-contrib style: VNF choice incl. no-op, then host).

    A VNF is selectable when at least one move for it is feasible; index V (no-op) always is. Hosts
    are selectable when up; the exact pair feasibility is :func:`pair_mask`.
    """
    p = pair_mask(obs) if pairs is None else pairs
    n_b = p.shape[0]
    vnf_ok = np.concatenate([p.any(axis=2), np.ones((n_b, 1), dtype=bool)], axis=1)
    return np.concatenate([vnf_ok, obs.host_up], axis=1)
