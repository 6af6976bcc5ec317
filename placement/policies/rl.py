"""The learned policy: a size-independent scoring network (torch) and its :class:`Policy` adapter.

Architecture (why it works across cluster sizes): hosts and VNFs are *sets*. A shared MLP embeds
every host from its feature vector, another embeds every VNF from its features plus its own host's
embedding; a global context is the mean/max pooling of those embeddings. The action is chosen in two
pointer steps, both with shared weights, so the same parameters score 4 hosts or 50:

1. which VNF to move: one logit per VNF (``[vnf, context]``) plus a no-op logit (``context``);
2. where to: one logit per host (``[host, chosen vnf, pair features, context]``), where the pair
   features are the target's utilisation after the move, the source's after it leaves, the larger of
   the two and how far that is from the VNF's best feasible target.

Derived inputs (:func:`pair_stats`, computed from the observation inside the network so the simulator
and the live service feed exactly the same thing): for every VNF the best utilisation pair it can
reach by one feasible move (``min_h max(src_after, tgt_after_h)``, the quantity least-loaded
minimises, as a *feature*: the network still decides), per host its gap to the hottest host, and
global scalars (hottest utilisation, best single-move gain, log10 of the up-host count) so one set of
weights can act differently on 4 and on 50 hosts.

With ``NetConfig.trend`` (False in ``NetConfig`` so checkpoints saved before it load unchanged;
``TrainConfig.trend_features`` turns it on, and the shipped model has it) the encoders also get the
observation's rate-trend features (``VNF_TREND_FEATURES``, ``HOST_TREND_FEATURES``) and the host head
the target's utilisation after the move with every rate advanced by its trend
(``TREND_HORIZON_S`` ahead), so the network can move a *rising* VNF while it still fits.

Greedy decisions take the most likely of the V + 1 choices (no-op included). With
``NetConfig.move_first`` (False in ``NetConfig``, so the shipped model decides as it always did) they
first compare the no-op with the *summed* probability of all moves and, if moving wins, take the most
likely VNF: where the teacher's labels split between equally good VNFs (a make-room move usually has
several), no single VNF beats the no-op although the network says "move" (fifth round, README).

With ``NetConfig.room`` (False in ``NetConfig`` for the same reason; ``TrainConfig.room_features``
turns it on) every VNF also gets :func:`room_gain`, how far the hottest host's utilisation can fall
if this VNF makes room on its host for a hot VNF that fits nowhere ("make room, then move", the
first move of :class:`~placement.policies.heuristics.MakeRoomPolicy`), and the context its cluster
maximum. Without it the teacher's make-room move (a cold VNF between two cold hosts) looks arbitrary
from the other inputs.

Infeasible choices are masked to ``-inf`` before the softmax (VNFs with no feasible target, hosts
that are down/full/its own). ``NetConfig.noop_bias`` (a constant added to the no-op logit, 0 during
training) is chosen after training on the validation seeds: imitation leaves the move/no-op decision
least certain, and a student that moves on every doubt migrates more than its teachers. A value
head on the context serves PPO. Decision cost is a few small matrix products plus one [V, H] pass
for the pair statistics: ~1.5 ms CPU for 50 hosts x 500 VNFs on one core, observation and mask
included (``deftctl placement bench``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from placement.observation import (
    N_HOST_FEATURES,
    N_HOST_TREND,
    N_VNF_FEATURES,
    N_VNF_TREND,
    VNF_TREND_FEATURES,
    Observation,
)
from placement.policies.base import NOOP
from placement.policies.lookahead import CostModel, LookaheadConfig, choose

log = logging.getLogger(__name__)
NEG = -1e9


@dataclass(frozen=True)
class NetConfig:
    """Network sizes (kept in the checkpoint)."""

    hidden: int = 64
    arch: int = 2  # 1: the first network (no derived pair statistics); checkpoints of arch 1 no longer load
    noop_bias: float = 0.0  # added to the no-op logit; 0 while training, then chosen on validation seeds
    trend: bool = False  # also feed the rate-trend features (observation.VNF/HOST_TREND_FEATURES)
    room: bool = False  # also feed the make-room gains (room_gain); False so older checkpoints load
    move_first: bool = False  # greedy: move when P(no-op) < P(any move), see ScoringNet.act; False as shipped


N_VNF_EXTRA = 3  # best reachable max-utilisation, own utilisation minus it, gap of own host to the hottest
N_HOST_EXTRA = 1  # gap to the hottest host
N_GLOBAL = 3  # hottest utilisation, best single-move gain, log10(up hosts)
N_PAIR = 4  # target after, source after, max of both, that minus the VNF's best
N_VNF_ROOM = 1  # with NetConfig.room: the hottest utilisation a make-room move of this VNF leads to
N_GLOBAL_ROOM = 1  # with NetConfig.room: the best make-room gain of the cluster
_RISE_REL = VNF_TREND_FEATURES.index("rise_rel")


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, n_out))


@dataclass
class TorchObs:
    """An observation batch as tensors (what the network consumes)."""

    hosts: torch.Tensor  # [B, H, FH]
    vnfs: torch.Tensor  # [B, V, FV]
    vnf_host: torch.Tensor  # [B, V] long
    pair_mask: torch.Tensor  # [B, V, H] bool
    vnf_trend: torch.Tensor  # [B, V, N_VNF_TREND]
    host_trend: torch.Tensor  # [B, H, N_HOST_TREND]

    @classmethod
    def from_numpy(cls, obs: Observation, mask: np.ndarray) -> TorchObs:
        return cls(
            torch.from_numpy(obs.hosts),
            torch.from_numpy(obs.vnfs),
            torch.from_numpy(obs.vnf_host.astype(np.int64)),
            torch.from_numpy(np.ascontiguousarray(mask)),
            torch.from_numpy(obs.vnf_trend),
            torch.from_numpy(obs.host_trend),
        )

    def take(self, idx: torch.Tensor) -> TorchObs:
        """The samples ``idx`` (an index tensor) along the batch dim."""
        return TorchObs(
            self.hosts[idx],
            self.vnfs[idx],
            self.vnf_host[idx],
            self.pair_mask[idx],
            self.vnf_trend[idx],
            self.host_trend[idx],
        )

    @staticmethod
    def cat(obs: list[TorchObs]) -> TorchObs:
        """Concatenate observation batches of equal cluster size along the batch dim."""
        return TorchObs(
            torch.cat([o.hosts for o in obs]),
            torch.cat([o.vnfs for o in obs]),
            torch.cat([o.vnf_host for o in obs]),
            torch.cat([o.pair_mask for o in obs]),
            torch.cat([o.vnf_trend for o in obs]),
            torch.cat([o.host_trend for o in obs]),
        )


@dataclass
class PairStats:
    """Derived quantities of one observation batch (utilisations are fractions of capacity)."""

    tgt_after: torch.Tensor  # [B, V, H] target utilisation if VNF v moved to host h
    src_after: torch.Tensor  # [B, V] own host utilisation after v leaves
    best: torch.Tensor  # [B, V] min over feasible h of max(src_after, tgt_after); own util if none
    vnf_extra: torch.Tensor  # [B, V, N_VNF_EXTRA (+ N_VNF_ROOM with NetConfig.room)]
    host_extra: torch.Tensor  # [B, H, N_HOST_EXTRA]
    glob: torch.Tensor  # [B, N_GLOBAL (+ N_GLOBAL_ROOM with NetConfig.room)]


def pair_stats(o: TorchObs) -> PairStats:
    """Per-pair and per-VNF utilisation arithmetic the scoring heads use (see module docstring)."""
    up = o.hosts[..., 0]
    cap_rel = o.hosts[..., 1].clamp(min=1e-3)
    util = o.hosts[..., 2]
    rate_rel = o.vnfs[..., 1]
    own_util = o.vnfs[..., 3]
    src_after = own_util - o.vnfs[..., 2]
    tgt_after = util.unsqueeze(1) + rate_rel.unsqueeze(2) / cap_rel.unsqueeze(1)
    new_max = torch.maximum(src_after.unsqueeze(2), tgt_after).masked_fill(~o.pair_mask, 1e3)
    best = new_max.min(dim=2).values
    feasible = o.pair_mask.any(dim=2)
    best = torch.where(feasible, best, own_util)
    umax = (util * up - (1.0 - up) * 1e3).max(dim=1).values.clamp(min=0.0)  # [B]
    gap_own = umax.unsqueeze(1) - own_util
    gain = torch.where(feasible, own_util - best, torch.zeros_like(best))
    vnf_extra = torch.stack([best, own_util - best, gap_own], dim=-1)
    host_extra = (umax.unsqueeze(1) - util).unsqueeze(-1) * up.unsqueeze(-1)
    best_gain = torch.where(feasible & (gap_own <= 1e-6), gain, torch.zeros_like(gain)).max(dim=1).values
    n_up = torch.log10(up.sum(dim=1).clamp(min=1.0))
    glob = torch.stack([umax, best_gain, n_up], dim=-1)
    return PairStats(tgt_after, src_after, best, vnf_extra, host_extra, glob)


def room_gain(o: TorchObs, st: PairStats) -> torch.Tensor:
    """Per VNF w [B, V]: how far (utilisation, fraction of capacity) the hottest host's utilisation
    can fall by "make room, then move" through w: w leaves its host g (not the hottest) for its
    least-loaded feasible third host k, then some movable VNF v of the hottest host fits on g under
    100 %. The value is ``max(0, u_hot - min_v max(hot after v leaves, g after the swap, k after w
    arrives))``, the quantity :class:`~placement.policies.heuristics.MakeRoomPolicy` minimises, as a
    feature (the network still decides); 0 where no such plan exists. ``[B, V, V]`` arithmetic.
    """
    up = o.hosts[..., 0] > 0.5
    cap_rel = o.hosts[..., 1].clamp(min=1e-3)
    util = o.hosts[..., 2]
    n_b, n_h = util.shape
    bi = torch.arange(n_b)
    hot = torch.where(up, util, torch.full_like(util, -1e3)).argmax(dim=1)  # [B]
    u_hot = util[bi, hot]
    rate_rel = o.vnfs[..., 1]
    movable = (o.vnfs[..., 0] > 0.5) & (o.vnfs[..., 6] < 0.5)
    on_hot = (o.vnf_host == hot.unsqueeze(1)) & movable
    hot_after = u_hot.unsqueeze(1) - rate_rel / cap_rel[bi, hot].unsqueeze(1)  # [B, V]
    not_hot = torch.arange(n_h).unsqueeze(0) != hot.unsqueeze(1)  # [B, H]
    k_util = st.tgt_after.masked_fill(~(o.pair_mask & not_hot.unsqueeze(1)), 1e3)
    u_k = k_util.min(dim=2).values  # [B, V]: w's least-loaded feasible third host, after w arrives
    w_up = torch.gather(up, 1, o.vnf_host)
    w_ok = (u_k < 1e2) & (o.vnf_host != hot.unsqueeze(1)) & w_up
    cap_g = torch.gather(cap_rel, 1, o.vnf_host)  # [B, V(w)]
    after_g = st.src_after.unsqueeze(1) + rate_rel.unsqueeze(2) / cap_g.unsqueeze(1)  # [B, V(v), V(w)]
    ok = on_hot.unsqueeze(2) & w_ok.unsqueeze(1) & (after_g <= 1.0)
    score = torch.maximum(torch.maximum(hot_after.unsqueeze(2), after_g), u_k.unsqueeze(1))
    best = score.masked_fill(~ok, 1e3).min(dim=1).values  # [B, V(w)]
    return (u_hot.unsqueeze(1) - best).clamp(min=0.0) * (best < 1e2)


class ScoringNet(nn.Module):
    """Two-step pointer policy + value head over host/VNF sets (see module docstring)."""

    def __init__(self, cfg: NetConfig = NetConfig()) -> None:
        super().__init__()
        d = cfg.hidden
        self.cfg = cfg
        if cfg.arch != 2:
            raise ValueError(f"network arch {cfg.arch} is not supported by this code (retrain)")
        n_ht, n_vt, n_pt = (N_HOST_TREND, N_VNF_TREND, 1) if cfg.trend else (0, 0, 0)
        n_vr, n_g = (N_VNF_ROOM, N_GLOBAL + N_GLOBAL_ROOM) if cfg.room else (0, N_GLOBAL)
        self.host_enc = _mlp(N_HOST_FEATURES + N_HOST_EXTRA + n_ht, d, d)
        self.vnf_enc = _mlp(N_VNF_FEATURES + N_VNF_EXTRA + n_vt + n_vr + d, d, d)
        self.ctx = _mlp(4 * d + n_g, d, d)
        self.vnf_head = _mlp(2 * d, d, 1)
        self.noop_head = _mlp(d + n_g, d, 1)
        self.host_head = _mlp(3 * d + N_PAIR + n_pt, d, 1)
        self.value_head = _mlp(d, d, 1)

    def encode(self, o: TorchObs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PairStats]:
        """Host embeddings [B,H,d], VNF embeddings [B,V,d], context [B,d] and the pair statistics."""
        st = pair_stats(o)
        if self.cfg.room:  # the make-room gain per VNF and its cluster maximum (a global input)
            gain = room_gain(o, st)
            st.vnf_extra = torch.cat([st.vnf_extra, gain.unsqueeze(-1)], dim=-1)
            st.glob = torch.cat([st.glob, gain.max(dim=1).values.unsqueeze(-1)], dim=-1)
        h_in = [o.hosts, st.host_extra, o.host_trend] if self.cfg.trend else [o.hosts, st.host_extra]
        eh = self.host_enc(torch.cat(h_in, dim=-1))
        own = torch.gather(eh, 1, o.vnf_host.unsqueeze(-1).expand(-1, -1, eh.shape[-1]))
        v_in = [o.vnfs, st.vnf_extra, o.vnf_trend, own] if self.cfg.trend else [o.vnfs, st.vnf_extra, own]
        ev = self.vnf_enc(torch.cat(v_in, dim=-1))
        up = o.hosts[..., 0:1]
        act = o.vnfs[..., 0:1]
        mean_h = (eh * up).sum(1) / up.sum(1).clamp(min=1.0)
        max_h = (eh + (up - 1.0) * 1e4).max(1).values
        mean_v = (ev * act).sum(1) / act.sum(1).clamp(min=1.0)
        max_v = (ev + (act - 1.0) * 1e4).max(1).values.clamp(min=-1e3)
        return eh, ev, self.ctx(torch.cat([mean_h, max_h, mean_v, max_v, st.glob], dim=-1)), st

    def vnf_logits(self, o: TorchObs, ev: torch.Tensor, g: torch.Tensor, st: PairStats) -> torch.Tensor:
        """[B, V + 1] logits; index V = no-op."""
        n_v = ev.shape[1]
        lv = self.vnf_head(torch.cat([ev, g.unsqueeze(1).expand(-1, n_v, -1)], dim=-1)).squeeze(-1)
        lv = lv.masked_fill(~o.pair_mask.any(dim=2), NEG)
        noop = self.noop_head(torch.cat([g, st.glob], dim=-1)) + self.cfg.noop_bias
        return torch.cat([lv, noop], dim=1)

    def host_logits(
        self,
        o: TorchObs,
        eh: torch.Tensor,
        ev: torch.Tensor,
        g: torch.Tensor,
        v: torch.Tensor,
        st: PairStats,
    ) -> torch.Tensor:
        """[B, H] logits for moving VNF ``v`` [B] (rows with v == no-op get a dummy uniform row)."""
        n_b, n_h, _ = eh.shape
        is_noop = v >= ev.shape[1]
        vc = torch.where(is_noop, torch.zeros_like(v), v)
        bi = torch.arange(n_b)
        ev_sel = ev[bi, vc]  # [B, d]
        # pair features: target util after move, source util after the VNF leaves, the max of both,
        # and how much worse that is than the VNF's best feasible target
        tgt_after = st.tgt_after[bi, vc]  # [B, H]
        src_after = st.src_after[bi, vc].unsqueeze(1).expand(-1, n_h)
        new_max = torch.maximum(tgt_after, src_after)
        regret = (new_max - st.best[bi, vc].unsqueeze(1)).clamp(max=10.0)
        cols = [
            eh,
            ev_sel.unsqueeze(1).expand(-1, n_h, -1),
            g.unsqueeze(1).expand(-1, n_h, -1),
            tgt_after.clamp(max=10.0).unsqueeze(-1),
            src_after.unsqueeze(-1),
            new_max.clamp(max=10.0).unsqueeze(-1),
            regret.unsqueeze(-1),
        ]
        if self.cfg.trend:  # target utilisation after the move with every rate advanced by its trend
            cap_rel = o.hosts[..., 1].clamp(min=1e-3)
            rise = o.vnf_trend[bi, vc, _RISE_REL].clamp(min=0.0).unsqueeze(1) / cap_rel
            cols.append((tgt_after + o.host_trend[..., 0] + rise).clamp(-10.0, 10.0).unsqueeze(-1))
        x = torch.cat(cols, dim=-1)
        lh = self.host_head(x).squeeze(-1)
        m = o.pair_mask[bi, vc] | is_noop.unsqueeze(1)
        out: torch.Tensor = lh.masked_fill(~m, NEG)
        return out

    def act(
        self, o: TorchObs, action: torch.Tensor | None = None, greedy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or score ``action`` [B,2] in network indexing, no-op = V): action, logp, entropy, value."""
        eh, ev, g, st = self.encode(o)
        n_v = ev.shape[1]
        dv = Categorical(logits=self.vnf_logits(o, ev, g, st))
        sample_v = self._greedy_vnf(dv.probs) if greedy else dv.sample()  # type: ignore[no-untyped-call]
        v = sample_v if action is None else action[:, 0]
        dh = Categorical(logits=self.host_logits(o, eh, ev, g, v, st))
        sample_h = dh.probs.argmax(-1) if greedy else dh.sample()  # type: ignore[no-untyped-call]
        h = sample_h if action is None else action[:, 1]  # stored action: PPO update / behaviour cloning
        is_noop = v >= n_v
        lp_v: torch.Tensor = dv.log_prob(v)  # type: ignore[no-untyped-call]
        lp_h: torch.Tensor = dh.log_prob(h)  # type: ignore[no-untyped-call]
        ent_v: torch.Tensor = dv.entropy()  # type: ignore[no-untyped-call]
        ent_h: torch.Tensor = dh.entropy()  # type: ignore[no-untyped-call]
        logp = lp_v + torch.where(is_noop, torch.zeros_like(lp_h), lp_h)
        ent = ent_v + torch.where(is_noop, torch.zeros_like(ent_h), ent_h)
        return torch.stack([v, h], dim=1), logp, ent, self.value_head(g).squeeze(-1)

    def _greedy_vnf(self, probs: torch.Tensor) -> torch.Tensor:
        """[B] greedy VNF index (V = no-op) from the [B, V + 1] probabilities (``NetConfig.move_first``)."""
        n_v = probs.shape[1] - 1
        if not self.cfg.move_first:
            return probs.argmax(-1)
        p_v = probs[:, :n_v]  # move vs no-op first, then the most likely VNF
        stay = probs[:, n_v] >= p_v.sum(-1)
        return torch.where(stay, torch.full_like(p_v[:, 0], n_v, dtype=torch.long), p_v.argmax(-1))

    def propose(self, o: TorchObs, k: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network's greedy action [B, 2] and its ``k`` most likely VNFs x ``m`` most likely
        target hosts each as candidate moves ``(vnf [B, k*m], host [B, k*m])`` for a search
        (:mod:`placement.policies.lookahead`); infeasible candidates have vnf = V (the no-op index).
        One encoding pass; the host head runs once per proposed VNF."""
        eh, ev, g, st = self.encode(o)
        n_b, n_v = ev.shape[0], ev.shape[1]
        logits = self.vnf_logits(o, ev, g, st)
        gv = self._greedy_vnf(torch.softmax(logits, dim=-1))
        greedy = torch.stack([gv, self.host_logits(o, eh, ev, g, gv, st).argmax(-1)], dim=1)
        k = min(k, n_v)
        top_l, top_v = logits[:, :n_v].topk(k, dim=1)  # [B, k]
        # one host-head pass for all B x k proposed VNFs: repeat every sample k times
        rep = torch.arange(n_b).repeat_interleave(k)
        st_k = PairStats(*(getattr(st, f.name)[rep] for f in fields(PairStats)))
        lh = self.host_logits(o.take(rep), eh[rep], ev[rep], g[rep], top_v.flatten(), st_k)  # [B k, H]
        m = min(m, eh.shape[1])
        hl, hi = lh.topk(m, dim=1)  # [B k, m]
        ok = (hl > NEG / 2) & (top_l.reshape(-1, 1) > NEG / 2)
        vs = torch.where(ok, top_v.reshape(-1, 1).expand(-1, m), torch.full_like(hi, n_v))
        return greedy, vs.reshape(n_b, -1), hi.reshape(n_b, -1)

    def value(self, o: TorchObs) -> torch.Tensor:
        val: torch.Tensor = self.value_head(self.encode(o)[2]).squeeze(-1)
        return val


def to_moves(action: torch.Tensor, n_vnfs: int) -> np.ndarray:
    """Network action [B,2] (no-op = V) -> simulator moves [B,2] (no-op = NOOP)."""
    a = action.numpy().astype(np.int64).copy()
    a[a[:, 0] >= n_vnfs, 0] = NOOP
    return a


def save_checkpoint(net: ScoringNet, path: Path, meta: dict[str, Any]) -> None:
    """Write weights + net config + training metadata (small: ~100 kB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"net": asdict(net.cfg), "state_dict": net.state_dict(), "meta": meta}, path)


def widen_into(net: ScoringNet, src: ScoringNet) -> None:
    """Copy ``src``'s weights into ``net``, which may have the make-room inputs ``src`` lacks.

    ``net.cfg`` must equal ``src.cfg`` except that ``net.cfg.room`` may be on where ``src``'s is off
    (and the greedy rule ``move_first``, which has no weights).
    The weights of the extra input columns (``room_gain`` in the VNF encoder, its cluster maximum in
    the context and no-op heads) start at zero, so ``net`` computes exactly ``src``'s logits and
    value until training moves them: fine-tuning a shipped model with the new inputs
    (``TrainConfig.init_from``). Raises ``ValueError`` for any other difference.
    """
    same = replace(net.cfg, room=src.cfg.room, move_first=src.cfg.move_first) == src.cfg
    if not same or (src.cfg.room and not net.cfg.room):
        raise ValueError(f"cannot widen a {src.cfg} network into a {net.cfg} one")
    d = net.cfg.hidden
    # where the room inputs sit in each widened first layer (see ScoringNet.encode / vnf_logits)
    insert_at = {
        "vnf_enc.0.weight": N_VNF_FEATURES + N_VNF_EXTRA,
        "ctx.0.weight": 4 * d + N_GLOBAL,
        "noop_head.0.weight": d + N_GLOBAL,
    }
    src_sd = src.state_dict()
    out = {}
    for name, p in net.state_dict().items():
        q = src_sd[name]
        if q.shape != p.shape:
            at = insert_at[name]
            q = torch.cat([q[:, :at], torch.zeros(q.shape[0], p.shape[1] - q.shape[1]), q[:, at:]], dim=1)
        out[name] = q.clone()
    net.load_state_dict(out)


def load_checkpoint(path: Path) -> tuple[ScoringNet, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such model file (train one: deftctl placement train)")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net_cfg = dict(ck["net"])
    net_cfg.setdefault("arch", 1)  # checkpoints from before the arch field
    if net_cfg["arch"] != NetConfig().arch:
        raise ValueError(
            f"{path}: network arch {net_cfg['arch']} is not this code's ({NetConfig().arch}); retrain"
        )
    net = ScoringNet(NetConfig(**net_cfg))
    net.load_state_dict(ck["state_dict"])
    net.eval()
    return net, dict(ck.get("meta", {}))


class RlPolicy:
    """Greedy (or sampling) decisions of a trained :class:`ScoringNet`."""

    name = "rl"

    def __init__(
        self,
        net: ScoringNet,
        greedy: bool = True,
        meta: dict[str, Any] | None = None,
        lookahead: LookaheadConfig | None = None,
    ) -> None:
        self.net = net
        self.greedy = greedy
        self.meta = meta or {}
        # decision-time search over the network's proposals (greedy decisions only; None = off)
        self.search = CostModel(lookahead) if lookahead is not None and greedy else None

    @classmethod
    def load(cls, path: Path, lookahead: LookaheadConfig | None = None) -> RlPolicy:
        """Load a checkpoint for inference. Sets torch to one intra-op thread for this process:
        the matrices are tiny, and a thread pool on a busy 2-core host made one decision take
        ~100 ms instead of ~1 ms (measured)."""
        torch.set_num_threads(1)
        net, meta = load_checkpoint(path)
        return cls(net, meta=meta, lookahead=lookahead)

    def reset(self, batch: int) -> None:
        del batch

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        n_v = obs.vnf_host.shape[1]
        if self.search is not None:
            cfg = self.search.cfg
            with torch.no_grad():
                greedy, cv, ch = self.net.propose(TorchObs.from_numpy(obs, mask), cfg.k, cfg.m)
            cand = to_moves(torch.stack([cv.flatten(), ch.flatten()], dim=1), n_v).reshape(obs.batch, -1, 2)
            return choose(self.search, obs, to_moves(greedy, n_v), cand[..., 0], cand[..., 1])
        with torch.no_grad():
            a, _, _, _ = self.net.act(TorchObs.from_numpy(obs, mask), greedy=self.greedy)
        return to_moves(a, n_v)
