"""Baseline placement policies (anchors.md B.2), vectorised over the batch with numpy.

All threshold-triggered baselines look at the hottest up host (estimated utilisation from the current
placement and the last measured rates); if it is above the overload threshold (80 %, the thesis'
definition) they move one VNF off it per step and differ only in *which* VNF goes *where*:

* ``first-fit``: the hottest host's largest VNF -> the first host (index order) where it fits under
  the threshold.
* ``best-fit``: same VNF -> the feasible host with the least room left under the threshold.
* ``least-loaded``: the VNF whose move to the least-loaded host minimises the larger of the two hosts'
  utilisations -> the least-loaded host (a greedy min-max step; moves only when that strictly improves).
* ``thesis-80``: the thesis' "Algorithm for Cluster Overload" (deft-seeds.md 5.5): the overloaded NF's
  highest-rate flow -> the lowest-usage NF if the expected usage there stays under 80 %; its "create a
  new NF" branch has no counterpart in a fixed cluster, so it does nothing then. This is an adapter
  to the one implementation in ``nf/balancer.py``.

``excess-greedy`` (an imitation teacher, not a reported baseline) makes the one move that lowers
the ILP's objective most. ``trend-least-loaded`` (also a teacher only) is least-loaded on the rates
projected ``horizon_s`` ahead along each rising VNF's measured slope, so it moves a rising VNF while
it still fits. ``make-room-least-loaded`` (a teacher too) is least-loaded that, when the hottest host
is over its trigger and no VNF on it can move anywhere with a gain, moves a *smaller* VNF off some
host g to a third host so that a hot VNF fits on g at the next step ("make room, then move").

``static`` is DEFT as shipped (round-robin placement, never migrates); ``random`` moves a random
feasible VNF with probability ``p_move`` per step (the sanity floor).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from placement.observation import Observation, host_loads
from placement.policies.base import NOOP, noop_moves


class StaticPolicy:
    """DEFT static round-robin: the initial placement is never changed."""

    name = "static"

    def reset(self, batch: int) -> None:
        del batch

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        del mask
        return noop_moves(obs.batch)


class RandomPolicy:
    """Random feasible move with probability ``p_move`` per step (seeded, reproducible)."""

    name = "random"

    def __init__(self, p_move: float = 0.1, seed: int = 0) -> None:
        self.p_move = p_move
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, batch: int) -> None:
        del batch
        self.rng = np.random.default_rng(self.seed)

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        out = noop_moves(obs.batch)
        flat = mask.reshape(obs.batch, -1)
        n_h = mask.shape[2]
        for b in np.flatnonzero(self.rng.random(obs.batch) < self.p_move):
            cand = np.flatnonzero(flat[b])
            if cand.size:
                k = int(cand[self.rng.integers(cand.size)])
                out[b] = (k // n_h, k % n_h)
        return out


class _HotspotPolicy:
    """Shared trigger: find the hottest up host; subclasses pick (vnf, target)."""

    name = "hotspot"

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold

    def reset(self, batch: int) -> None:
        del batch

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        thr = obs.overload_threshold if self.threshold is None else self.threshold
        util = np.where(obs.host_up, obs.host_load_pps / obs.host_capacity_pps, -np.inf)
        hot = util.argmax(axis=1)
        b = np.arange(obs.batch)
        trig = util[b, hot] > thr
        on_hot = (obs.vnf_host == hot[:, None]) & mask.any(axis=2)
        out = noop_moves(obs.batch)
        go = trig & on_hot.any(axis=1)
        if not go.any():
            return out
        v, h, ok = self._choose(obs, mask, util, hot, on_hot, thr)
        sel = go & ok
        out[sel, 0] = v[sel]
        out[sel, 1] = h[sel]
        return out

    def _choose(
        self,
        obs: Observation,
        mask: np.ndarray,
        util: np.ndarray,
        hot: np.ndarray,
        on_hot: np.ndarray,
        thr: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    @staticmethod
    def _largest(obs: Observation, on_hot: np.ndarray) -> np.ndarray:
        idx: np.ndarray = np.where(on_hot, obs.vnf_rate_pps, -np.inf).argmax(axis=1)
        return idx


class FirstFitPolicy(_HotspotPolicy):
    name = "first-fit"

    def _choose(self, obs, mask, util, hot, on_hot, thr):  # type: ignore[no-untyped-def]
        b = np.arange(obs.batch)
        v = self._largest(obs, on_hot)
        r = obs.vnf_rate_pps[b, v][:, None]
        fits = mask[b, v] & (obs.host_load_pps + r <= thr * obs.host_capacity_pps)
        return v, fits.argmax(axis=1), fits.any(axis=1)


class BestFitPolicy(_HotspotPolicy):
    name = "best-fit"

    def _choose(self, obs, mask, util, hot, on_hot, thr):  # type: ignore[no-untyped-def]
        b = np.arange(obs.batch)
        v = self._largest(obs, on_hot)
        r = obs.vnf_rate_pps[b, v][:, None]
        room = thr * obs.host_capacity_pps - obs.host_load_pps - r
        fits = mask[b, v] & (room >= 0)
        h = np.where(fits, room, np.inf).argmin(axis=1)
        return v, h, fits.any(axis=1)


class LeastLoadedPolicy(_HotspotPolicy):
    name = "least-loaded"

    def __init__(self, threshold: float | None = None, margin: float = 0.02) -> None:
        super().__init__(threshold)
        self.margin = margin  # hysteresis: required drop of the max utilisation (fraction)

    def _choose(self, obs, mask, util, hot, on_hot, thr):  # type: ignore[no-untyped-def]
        b = np.arange(obs.batch)
        cold_util = np.where(obs.host_up, util, np.inf)
        cold_util[b, hot] = np.inf
        t = cold_util.argmin(axis=1)
        cap_h = obs.host_capacity_pps[b, hot][:, None]
        cap_t = obs.host_capacity_pps[b, t][:, None]
        r = obs.vnf_rate_pps
        new_max = np.maximum(
            util[b, hot][:, None] - r / cap_h, (obs.host_load_pps[b, t][:, None] + r) / cap_t
        )
        cand = on_hot & mask[b, :, t]
        v = np.where(cand, new_max, np.inf).argmin(axis=1)
        ok = cand.any(axis=1) & (new_max[b, v] < util[b, hot] - self.margin)
        return v, t, ok


class TrendLeastLoadedPolicy(LeastLoadedPolicy):
    """Least-loaded on projected rates: ``rate + horizon_s * max(slope, 0)`` (pps; the slope in pps/s
    is the observation's ``vnf_rate_slope``). Trigger, VNF and target are chosen on the projected
    loads; the move must still fit now (the mask). Without rate history it is least-loaded."""

    name = "trend-least-loaded"

    def __init__(self, threshold: float | None = None, margin: float = 0.02, horizon_s: float = 10.0) -> None:
        super().__init__(threshold, margin)
        self.horizon_s = horizon_s

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        rate = obs.vnf_rate_pps + self.horizon_s * np.maximum(obs.vnf_rate_slope, 0.0) * obs.vnf_active
        load = host_loads(obs.vnf_host, rate, obs.host_up.shape[1])
        return super().decide(replace(obs, vnf_rate_pps=rate, host_load_pps=load), mask)


class MakeRoomPolicy(LeastLoadedPolicy):
    """Least-loaded that makes room when it is stuck: the first half of a two-move plan.

    Why: when a flash crowd puts several hot VNFs on one host (140-150 % for a minute), none of them
    may fit under 100 % on any other host (the feasibility mask), so every one-step rule sits there
    dropping packets, while the per-step ILP first shuffles a smaller VNF off a target host and then
    moves a hot VNF there (README, "Second round"). This rule plays that plan one move per step and
    keeps no memory, so a network can imitate it from the current observation alone:

    1. least-loaded's move (coldest host as target) when it makes one;
    2. else, if the hottest up host is above the trigger: the hot VNF -> any feasible host (not only
       the coldest) with the lowest ``max(hot after, target after)``, if that is below the hot
       host's utilisation minus ``margin`` (the follow-up move once room has been made lands here
       or in 1.);
    3. else the *make-room* move: over every movable hot VNF v and every movable VNF w on another up
       host g, with w moved to its least-loaded feasible third host k (not the hot host, k != g) and
       v to fit under 100 % on g afterwards (``load_g - rate_w + rate_v <= capacity_g``), the pair
       with the lowest ``max(hot after v leaves, g after the swap, k after w arrives)``; it moves
       w -> k now if that maximum is below the hot host's utilisation minus ``margin``.

    Utilisations are fractions of capacity, rates pps (measured, lagged, like every baseline). The
    pair search is ``[B, V, V]`` (the best k per w is one ``[B, V, H]`` pass) and runs only for the
    environments where 1. and 2. made no move.

    After every :meth:`decide`, ``last_stuck_moves`` ([B] bool) marks the environments whose move
    came from 2. or 3., the states where plain least-loaded would sit still; training can weight
    those labels (``TrainConfig.room_label_weight``).
    """

    name = "make-room-least-loaded"

    def __init__(self, threshold: float | None = None, margin: float = 0.02) -> None:
        super().__init__(threshold, margin)
        self.last_stuck_moves = np.zeros(0, dtype=bool)  # [B] of the last decide (see above)

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        out = super().decide(obs, mask)
        self.last_stuck_moves = np.zeros(obs.batch, dtype=bool)
        thr = obs.overload_threshold if self.threshold is None else self.threshold
        cap = obs.host_capacity_pps
        util = np.where(obs.host_up, obs.host_load_pps / cap, -np.inf)
        hot = util.argmax(axis=1)
        b_all = np.arange(obs.batch)
        u_hot_all = util[b_all, hot]
        stuck = np.flatnonzero((u_hot_all > thr) & (out[:, 0] == NOOP))
        if stuck.size == 0:
            return out
        n_h = mask.shape[2]
        m = mask[stuck]  # [n, V, H]
        hs = hot[stuck]
        u_hot = u_hot_all[stuck]
        load = obs.host_load_pps[stuck]  # [n, H] pps
        c = cap[stuck]
        up = obs.host_up[stuck]
        r = obs.vnf_rate_pps[stuck]  # [n, V] pps
        vh = obs.vnf_host[stuck]
        n = stuck.size
        bi = np.arange(n)[:, None]
        on_hot = (vh == hs[:, None]) & obs.vnf_movable[stuck]
        hot_after = u_hot[:, None] - r / c[np.arange(n), hs][:, None]  # [n, V]
        tgt_after = (load[:, None, :] + r[:, :, None]) / c[:, None, :]  # [n, V, H]
        # 2. a hot VNF to any feasible host
        direct = np.where(on_hot[:, :, None] & m, np.maximum(hot_after[:, :, None], tgt_after), np.inf)
        flat = direct.reshape(n, -1)
        k_d = flat.argmin(axis=1)
        best_d = flat[np.arange(n), k_d]
        go_d = best_d < u_hot - self.margin
        # 3. make room: w (on g != hot) -> its least-loaded feasible third host k
        not_hot = np.arange(n_h)[None, None, :] != hs[:, None, None]
        k_util = np.where(m & not_hot, tgt_after, np.inf)  # [n, V(w), H(k)]
        k_best = k_util.argmin(axis=2)
        u_k = k_util[bi, np.arange(k_util.shape[1])[None, :], k_best]  # [n, V(w)]
        w_ok = np.isfinite(u_k) & (vh != hs[:, None]) & up[bi, vh]
        free_g = load[bi, vh] - r  # [n, V(w)] pps left on w's host once w has gone
        after_g = free_g[:, None, :] + r[:, :, None]  # [n, V(v), V(w)] pps on g with v there
        cap_g = c[bi, vh][:, None, :]
        pair_ok = on_hot[:, :, None] & w_ok[:, None, :] & (after_g <= cap_g)
        score = np.maximum(np.maximum(hot_after[:, :, None], after_g / cap_g), u_k[:, None, :])
        flat_p = np.where(pair_ok, score, np.inf).reshape(n, -1)
        k_p = flat_p.argmin(axis=1)
        best_p = flat_p[np.arange(n), k_p]
        go_p = ~go_d & (best_p < u_hot - self.margin)
        n_v = r.shape[1]
        w = k_p % n_v
        sel = stuck[go_d]
        out[sel, 0] = k_d[go_d] // n_h
        out[sel, 1] = k_d[go_d] % n_h
        sel = stuck[go_p]
        out[sel, 0] = w[go_p]
        out[sel, 1] = k_best[np.arange(n), w][go_p]
        self.last_stuck_moves[stuck[go_d | go_p]] = True
        return out


class ThesisBalancerPolicy:
    """Adapter to THE thesis balancer in :mod:`nf.balancer` (one decision function for NF and placement).

    Each up host is one balancer "instance" of a single cluster (usage = estimated utilisation,
    capacity = host pps, flow groups = its movable VNFs and their rates). The cluster is capped at its
    current size, so the balancer's "start a new instance" outcome has no counterpart here and is
    treated as no-op; the first move of the round (off the most loaded host) is carried out.
    """

    name = "thesis-80"

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold

    def reset(self, batch: int) -> None:
        del batch

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        from nf.balancer import InstanceLoad, decide  # noqa: PLC0415  (nf is a sibling package)

        thr = obs.overload_threshold if self.threshold is None else self.threshold
        out = noop_moves(obs.batch)
        util = obs.host_load_pps / obs.host_capacity_pps
        for b in range(obs.batch):
            up = np.flatnonzero(obs.host_up[b])
            if not (util[b, up] >= thr).any():
                continue
            loads = [
                InstanceLoad(
                    instance=str(h),
                    cluster="cluster",
                    usage=float(util[b, h]),
                    capacity_pps=float(obs.host_capacity_pps[b, h]),
                    flows={
                        str(v): float(obs.vnf_rate_pps[b, v])
                        for v in np.flatnonzero((obs.vnf_host[b] == h) & obs.vnf_movable[b])
                    },
                )
                for h in up
            ]
            dec = decide(loads, threshold=thr, max_per_cluster=len(loads), moves_per_instance=1)
            hosts = {str(h) for h in up}
            for mv in dec.moves:  # first move onto an existing host (new instances: no-op)
                if mv.to_new_instance or mv.dst not in hosts:
                    continue
                v, h = int(mv.group), int(mv.dst)
                if mask[b, v, h]:
                    out[b] = (v, h)
                break
        return out


class ExcessGreedyPolicy:
    """One step of the ILP's objective, greedily: the single feasible move that lowers it most.

    The objective is :mod:`placement.policies.ilp`'s: ``sum_h max(0, util_h - threshold) + max_weight
    * max_h util_h + migration_weight * #moved`` (utilisations are fractions of capacity). Every
    feasible (VNF, host) pair is scored at once (``[B, V, H]`` numpy arrays; the maximum over the hosts
    other than source and target comes from the top three utilisations), and the best move is made
    when it lowers the objective, else no-op. Unlike the hotspot rules it looks at every host and every
    target, not only the hottest and the coldest. Used as an imitation teacher (``train.py``), not part
    of the "best heuristic" reference set of the reports.
    """

    name = "excess-greedy"

    def __init__(
        self, threshold: float | None = None, max_weight: float = 0.1, migration_weight: float = 0.02
    ) -> None:
        self.threshold = threshold
        self.max_weight = max_weight
        self.migration_weight = migration_weight

    def reset(self, batch: int) -> None:
        del batch

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        thr = obs.overload_threshold if self.threshold is None else self.threshold
        n_b, n_v, n_h = mask.shape
        cap = obs.host_capacity_pps
        util = np.where(obs.host_up, obs.host_load_pps / cap, -1.0)  # a down host is never the max
        bi = np.arange(n_b)[:, None]
        src = obs.vnf_host
        u_src = util[bi, src]  # [B, V]
        src_after = u_src - obs.vnf_rate_pps / cap[bi, src]
        tgt_after = util[:, None, :] + obs.vnf_rate_pps[:, :, None] / cap[:, None, :]  # [B, V, H]

        def excess(u: np.ndarray) -> np.ndarray:
            return np.maximum(u - thr, 0.0)

        d_excess = (
            (excess(src_after) - excess(u_src))[:, :, None] + excess(tgt_after) - excess(util)[:, None, :]
        )
        k = min(3, n_h)
        order = np.argsort(-util, axis=1)[:, :k]
        top = np.take_along_axis(util, order, axis=1)
        rest = np.full((n_b, n_v, n_h), -1.0)  # max utilisation of the hosts other than src and tgt
        found = np.zeros((n_b, n_v, n_h), dtype=bool)
        hosts = np.arange(n_h)[None, None, :]
        for i in range(k):
            cand = order[:, i][:, None, None]
            ok = (cand != src[:, :, None]) & (cand != hosts) & ~found
            rest = np.where(ok, top[:, i][:, None, None], rest)
            found |= ok
        new_max = np.maximum(np.maximum(rest, src_after[:, :, None]), tgt_after)
        d_max = new_max - util.max(axis=1)[:, None, None]
        delta = d_excess + self.max_weight * d_max + self.migration_weight
        flat = np.where(mask, delta, np.inf).reshape(n_b, -1)
        best = flat.argmin(axis=1)
        go = flat[np.arange(n_b), best] < 0.0
        out = noop_moves(n_b)
        out[go, 0] = best[go] // n_h
        out[go, 1] = best[go] % n_h
        return out
