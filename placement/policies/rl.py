"""The learned policy: a size-independent scoring network (torch) and its :class:`Policy` adapter.

Architecture (why it works across cluster sizes): hosts and VNFs are *sets*. A shared MLP embeds
every host from its feature vector, another embeds every VNF from its features plus its own host's
embedding; a global context is the mean/max pooling of those embeddings. The action is chosen in two
pointer steps, both with shared weights, so the same parameters score 4 hosts or 50:

1. which VNF to move: one logit per VNF (``[vnf, context]``) plus a no-op logit (``context``);
2. where to: one logit per host (``[host, chosen vnf, pair features, context]``), where the pair
   features are the target's utilisation after the move and the source's after it leaves.

Infeasible choices are masked to ``-inf`` before the softmax (VNFs with no feasible target, hosts
that are down/full/its own). A value head on the context serves PPO. Decision cost is a few small
matrix products: ~1 ms for 50 hosts x 500 VNFs on one core.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from placement.observation import N_HOST_FEATURES, N_VNF_FEATURES, Observation
from placement.policies.base import NOOP

log = logging.getLogger(__name__)
NEG = -1e9


@dataclass(frozen=True)
class NetConfig:
    """Network sizes (kept in the checkpoint)."""

    hidden: int = 64


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, n_out))


@dataclass
class TorchObs:
    """An observation batch as tensors (what the network consumes)."""

    hosts: torch.Tensor  # [B, H, FH]
    vnfs: torch.Tensor  # [B, V, FV]
    vnf_host: torch.Tensor  # [B, V] long
    pair_mask: torch.Tensor  # [B, V, H] bool

    @classmethod
    def from_numpy(cls, obs: Observation, mask: np.ndarray) -> TorchObs:
        return cls(
            torch.from_numpy(obs.hosts),
            torch.from_numpy(obs.vnfs),
            torch.from_numpy(obs.vnf_host.astype(np.int64)),
            torch.from_numpy(np.ascontiguousarray(mask)),
        )


class ScoringNet(nn.Module):
    """Two-step pointer policy + value head over host/VNF sets (see module docstring)."""

    def __init__(self, cfg: NetConfig = NetConfig()) -> None:
        super().__init__()
        d = cfg.hidden
        self.cfg = cfg
        self.host_enc = _mlp(N_HOST_FEATURES, d, d)
        self.vnf_enc = _mlp(N_VNF_FEATURES + d, d, d)
        self.ctx = _mlp(3 * d, d, d)
        self.vnf_head = _mlp(2 * d, d, 1)
        self.noop_head = _mlp(d, d, 1)
        self.host_head = _mlp(3 * d + 2, d, 1)
        self.value_head = _mlp(d, d, 1)

    def encode(self, o: TorchObs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Host embeddings [B,H,d], VNF embeddings [B,V,d], context [B,d]."""
        eh = self.host_enc(o.hosts)
        own = torch.gather(eh, 1, o.vnf_host.unsqueeze(-1).expand(-1, -1, eh.shape[-1]))
        ev = self.vnf_enc(torch.cat([o.vnfs, own], dim=-1))
        up = o.hosts[..., 0:1]
        act = o.vnfs[..., 0:1]
        mean_h = (eh * up).sum(1) / up.sum(1).clamp(min=1.0)
        max_h = (eh + (up - 1.0) * 1e4).max(1).values
        mean_v = (ev * act).sum(1) / act.sum(1).clamp(min=1.0)
        return eh, ev, self.ctx(torch.cat([mean_h, max_h, mean_v], dim=-1))

    def vnf_logits(self, o: TorchObs, ev: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """[B, V + 1] logits; index V = no-op."""
        n_v = ev.shape[1]
        lv = self.vnf_head(torch.cat([ev, g.unsqueeze(1).expand(-1, n_v, -1)], dim=-1)).squeeze(-1)
        lv = lv.masked_fill(~o.pair_mask.any(dim=2), NEG)
        return torch.cat([lv, self.noop_head(g)], dim=1)

    def host_logits(
        self, o: TorchObs, eh: torch.Tensor, ev: torch.Tensor, g: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """[B, H] logits for moving VNF ``v`` [B] (rows with v == no-op get a dummy uniform row)."""
        n_b, n_h, _ = eh.shape
        is_noop = v >= ev.shape[1]
        vc = torch.where(is_noop, torch.zeros_like(v), v)
        bi = torch.arange(n_b)
        ev_sel = ev[bi, vc]  # [B, d]
        fv = o.vnfs[bi, vc]  # [B, FV]
        # pair features: target util after move, source util after the VNF leaves
        tgt_after = o.hosts[..., 2] + fv[:, 1:2] / o.hosts[..., 1].clamp(min=1e-3)
        src_after = (fv[:, 3] - fv[:, 2]).unsqueeze(1).expand(-1, n_h)
        x = torch.cat(
            [
                eh,
                ev_sel.unsqueeze(1).expand(-1, n_h, -1),
                g.unsqueeze(1).expand(-1, n_h, -1),
                tgt_after.unsqueeze(-1),
                src_after.unsqueeze(-1),
            ],
            dim=-1,
        )
        lh = self.host_head(x).squeeze(-1)
        m = o.pair_mask[bi, vc] | is_noop.unsqueeze(1)
        out: torch.Tensor = lh.masked_fill(~m, NEG)
        return out

    def act(
        self, o: TorchObs, action: torch.Tensor | None = None, greedy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or score ``action`` [B,2] in network indexing, no-op = V): action, logp, entropy, value."""
        eh, ev, g = self.encode(o)
        n_v = ev.shape[1]
        dv = Categorical(logits=self.vnf_logits(o, ev, g))
        sample_v = dv.probs.argmax(-1) if greedy else dv.sample()  # type: ignore[no-untyped-call]
        v = sample_v if action is None else action[:, 0]
        dh = Categorical(logits=self.host_logits(o, eh, ev, g, v))
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


def load_checkpoint(path: Path) -> tuple[ScoringNet, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such model file (train one: deftctl placement train)")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = ScoringNet(NetConfig(**ck["net"]))
    net.load_state_dict(ck["state_dict"])
    net.eval()
    return net, dict(ck.get("meta", {}))


class RlPolicy:
    """Greedy (or sampling) decisions of a trained :class:`ScoringNet`."""

    name = "rl"

    def __init__(self, net: ScoringNet, greedy: bool = True, meta: dict[str, Any] | None = None) -> None:
        self.net = net
        self.greedy = greedy
        self.meta = meta or {}

    @classmethod
    def load(cls, path: Path) -> RlPolicy:
        """Load a checkpoint for inference. Sets torch to one intra-op thread for this process:
        the matrices are tiny, and a thread pool on a busy 2-core host made one decision take
        ~100 ms instead of ~1 ms (measured)."""
        torch.set_num_threads(1)
        net, meta = load_checkpoint(path)
        return cls(net, meta=meta)

    def reset(self, batch: int) -> None:
        del batch

    def decide(self, obs: Observation, mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            a, _, _, _ = self.net.act(TorchObs.from_numpy(obs, mask), greedy=self.greedy)
        return to_moves(a, obs.vnf_host.shape[1])
