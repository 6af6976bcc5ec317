"""The thesis' cluster-based 80 % overload balancer: a pure decision function plus an executor.

Algorithm ("Algorithm for Cluster Overload", deft-seeds §5.5), per overloaded instance ``y``
(usage >= ``threshold``, most loaded first):

1. ``f`` = the flow group of ``y`` with the highest packet rate.
2. ``t`` = the least-loaded *other* member of ``y``'s cluster. If ``t``'s usage after taking ``f``
   stays below the threshold, move ``f`` to ``t`` — an **intra-cluster** move, which ships only the
   delta since the last batch because every cluster member already replicates the cluster's state.
3. Otherwise, if the cluster may grow (``max_per_cluster``), start a new instance in the cluster
   and move ``f`` there (the new member joins the cluster, receives the snapshot, then the move is
   a delta move).
4. Otherwise the cluster is overloaded: move ``f`` to the least-loaded instance of *another*
   cluster that stays below the threshold — an **inter-cluster** move shipping the full flow state;
   if there is none, start a new instance (in a new cluster when every cluster is full).

Usage is a fraction (0..1) of an instance's capacity (CPU utilisation, or packet rate over the
measured per-instance capacity); a flow group's rate (pps) adds ``rate / capacity_pps`` to the
usage of the instance that serves it. Decisions are applied to a copy of the loads as they are
made, so one round never overloads a target twice. The placement service uses :func:`decide` as a
baseline policy; the agent/placement executor runs the result with :func:`execute`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.8


@dataclass(frozen=True)
class InstanceLoad:
    """Observed load of one NF instance."""

    instance: str
    cluster: str
    #: fraction of capacity in use (0..1; may exceed 1 when overloaded)
    usage: float
    #: packets per second at 100 % usage (converts a flow's rate into usage)
    capacity_pps: float
    #: flow group -> packet rate (pps) of the groups this instance is primary for
    flows: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.capacity_pps <= 0:
            raise ValueError(f"instance {self.instance}: capacity_pps must be > 0, got {self.capacity_pps}")
        if self.usage < 0:
            raise ValueError(f"instance {self.instance}: usage must be >= 0, got {self.usage}")


@dataclass(frozen=True)
class NewInstance:
    """An instance to start before the moves that target it."""

    name: str
    cluster: str


@dataclass(frozen=True)
class Move:
    """Move flow group ``group`` from instance ``src`` to instance ``dst``."""

    group: str
    src: str
    dst: str
    rate_pps: float
    #: True: ``dst`` is in ``src``'s cluster (ship only the delta); False: ship the full state
    intra_cluster: bool
    #: ``dst`` is a :class:`NewInstance` of the same decision
    to_new_instance: bool = False


@dataclass(frozen=True)
class Decision:
    """Result of one balancing round (empty when nothing is overloaded)."""

    new_instances: tuple[NewInstance, ...] = ()
    moves: tuple[Move, ...] = ()
    #: clusters found overloaded (at ``max_per_cluster`` and no member could take the flow)
    overloaded_clusters: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.moves and not self.new_instances


@dataclass
class _Live:
    instance: str
    cluster: str
    usage: float
    capacity: float
    flows: dict[str, float]


def _default_namer(cluster: str, taken: set[str]) -> str:
    i = 1
    while f"{cluster}-n{i}" in taken:
        i += 1
    return f"{cluster}-n{i}"


def decide(
    loads: Sequence[InstanceLoad],
    threshold: float = DEFAULT_THRESHOLD,
    max_per_cluster: int | None = None,
    moves_per_instance: int = 1,
    new_capacity_pps: float | None = None,
    namer: Callable[[str, set[str]], str] = _default_namer,
) -> Decision:
    """One round of the 80 % balancer over ``loads`` (see the module docstring).

    ``max_per_cluster``: cluster size limit (``None`` = unlimited: step 3 always applies);
    ``moves_per_instance``: flows moved off one overloaded instance per round;
    ``new_capacity_pps``: capacity assumed for new instances (default: that of the overloaded one);
    ``namer(cluster, taken)``: name of a new instance.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    live = {
        ld.instance: _Live(ld.instance, ld.cluster, ld.usage, ld.capacity_pps, dict(ld.flows)) for ld in loads
    }
    if len(live) != len(loads):
        raise ValueError("instance names must be unique")
    taken = set(live)
    new: list[NewInstance] = []
    moves: list[Move] = []
    overloaded_clusters: list[str] = []

    def members(cluster: str) -> list[_Live]:
        return [x for x in live.values() if x.cluster == cluster]

    def apply(src: _Live, dst: _Live, group: str, rate: float, intra: bool, fresh: bool) -> None:
        src.flows.pop(group)
        src.usage -= rate / src.capacity
        dst.flows[group] = rate
        dst.usage += rate / dst.capacity
        moves.append(Move(group, src.instance, dst.instance, rate, intra, fresh))

    def spawn(cluster: str, capacity: float) -> _Live:
        name = namer(cluster, taken)
        taken.add(name)
        inst = _Live(name, cluster, 0.0, capacity, {})
        live[name] = inst
        new.append(NewInstance(name, cluster))
        return inst

    for y in sorted(live.values(), key=lambda x: (-x.usage, x.instance)):
        for _ in range(moves_per_instance):
            if y.usage < threshold or not y.flows:
                break
            group, rate = max(y.flows.items(), key=lambda kv: (kv[1], kv[0]))
            cap_new = new_capacity_pps or y.capacity
            peers = sorted((m for m in members(y.cluster) if m is not y), key=lambda m: (m.usage, m.instance))
            if peers and peers[0].usage + rate / peers[0].capacity < threshold:
                apply(y, peers[0], group, rate, intra=True, fresh=False)
                continue
            if max_per_cluster is None or len(members(y.cluster)) < max_per_cluster:
                apply(y, spawn(y.cluster, cap_new), group, rate, intra=True, fresh=True)
                continue
            if y.cluster not in overloaded_clusters:
                overloaded_clusters.append(y.cluster)
            others = sorted(
                (
                    m for m in live.values()
                    if m.cluster != y.cluster and m.usage + rate / m.capacity < threshold
                ),
                key=lambda m: (m.usage, m.instance),
            )
            if others:
                apply(y, others[0], group, rate, intra=False, fresh=False)
                continue
            # every cluster is full or too loaded: scale out where there is room, else a new cluster
            roomy = sorted(
                {m.cluster for m in live.values()} - {y.cluster},
                key=lambda c: (len(members(c)), c),
            )
            target_cluster = next(
                (c for c in roomy if max_per_cluster is None or len(members(c)) < max_per_cluster),
                _new_cluster_name({m.cluster for m in live.values()}),
            )
            apply(y, spawn(target_cluster, cap_new), group, rate, intra=False, fresh=True)
    return Decision(tuple(new), tuple(moves), tuple(overloaded_clusters))


def _new_cluster_name(existing: Iterable[str]) -> str:
    ex = set(existing)
    i = 1
    while f"c{i}" in ex:
        i += 1
    return f"c{i}"


def execute(
    decision: Decision,
    launch: Callable[[NewInstance], None],
    migrate: Callable[[Move], None],
) -> None:
    """Start the decision's new instances, then run its moves in order.

    ``launch`` starts an instance and joins it to its cluster (``nf.cluster``); ``migrate`` moves
    one flow group (``nf.migration.migrate_groups``, delta-only when ``move.intra_cluster``).
    A failing step raises and leaves the remaining steps undone (the next round re-decides from
    fresh telemetry).
    """
    for n in decision.new_instances:
        log.info("balancer: starting %s in cluster %s", n.name, n.cluster)
        launch(n)
    for m in decision.moves:
        log.info(
            "balancer: moving group %s (%.0f pps) %s -> %s (%s)",
            m.group, m.rate_pps, m.src, m.dst, "delta, intra-cluster" if m.intra_cluster else "full state",
        )
        migrate(m)
