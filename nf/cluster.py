"""Cluster-based replication bookkeeping (the thesis' mechanism 2).

A *cluster* is a set of NF instances that replicate their per-flow state to every other member
after each batch, so any member already holds the committed state of every flow of the cluster.
A flow moved inside the cluster then ships only the delta since the last batch
(:func:`nf.migration.migrate_groups` detects that the target already replicates the source), while
a move to another cluster ships the full flow state. The balancer (:mod:`nf.balancer`) decides
intra- vs inter-cluster moves from the same membership.

Membership lives in the store as ``cluster/<name>`` = JSON list of instance names (updated with
compare-and-set, so concurrent joins never lose a member). :func:`join` records a member and wires
replication both ways with every existing member over the instances' control API
(``add_replica``); :func:`leave` unwires and removes it. Costs grow with the cluster: every batch
goes to n-1 peers (the thesis measured 3 vs 11 peers), so keep clusters small.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from nf.control import ControlClient, ControlError
from nf.globalstate import cas_update
from nf.steering import Endpoint
from nf.store import keys as keyspace
from nf.store.base import StateStore

log = logging.getLogger(__name__)


def members(store: StateStore, cluster: str) -> list[str]:
    """Instance names of ``cluster`` (empty when it does not exist)."""
    raw = store.get(keyspace.cluster(cluster))
    return list(json.loads(raw)) if raw else []


def clusters(store: StateStore) -> dict[str, list[str]]:
    """Every cluster and its members."""
    return {k.split("/", 1)[1]: list(json.loads(v)) for k, v in store.scan(keyspace.CLUSTER + "/").items()}


def cluster_of(store: StateStore, instance: str) -> str | None:
    return next((c for c, ms in clusters(store).items() if instance in ms), None)


def _set_members(
    store: StateStore, cluster: str, add: str | None = None, remove: str | None = None
) -> list[str]:
    def change(cur: bytes | None) -> bytes | None:
        ms = list(json.loads(cur)) if cur else []
        if add is not None and add not in ms:
            ms.append(add)
        if remove is not None and remove in ms:
            ms.remove(remove)
        return json.dumps(sorted(ms)).encode() if ms else None

    new = cas_update(store, keyspace.cluster(cluster), change)
    return list(json.loads(new)) if new else []


def join(store: StateStore, cluster: str, new: Endpoint, endpoints: Mapping[str, Endpoint],
         timeout_s: float = 10.0) -> list[str]:
    """Add ``new`` to ``cluster`` and make it and every existing member replicate to each other.

    ``endpoints`` maps member names to their endpoints (e.g. from the instance registry). A member
    missing from ``endpoints`` or unreachable is logged and skipped (its FDU handles it).
    """
    existing = [m for m in members(store, cluster) if m != new.instance]
    for name in existing:
        ep = endpoints.get(name)
        if ep is None:
            log.warning("cluster %s: no endpoint for member %s; not wired to %s", cluster, name, new.instance)
            continue
        try:
            with ControlClient(ep.control, timeout_s=timeout_s) as cc:
                cc.add_replica(new.repl_addr)
            with ControlClient(new.control, timeout_s=timeout_s) as cc:
                cc.add_replica(ep.repl_addr)
        except ControlError as exc:
            log.warning("cluster %s: wiring %s <-> %s failed: %s", cluster, name, new.instance, exc)
    ms = _set_members(store, cluster, add=new.instance)
    log.info("cluster %s: %s joined (%d members)", cluster, new.instance, len(ms))
    return ms


def leave(store: StateStore, cluster: str, gone: Endpoint, endpoints: Mapping[str, Endpoint],
          timeout_s: float = 10.0) -> list[str]:
    """Remove ``gone`` from ``cluster``; the remaining members stop replicating to it."""
    for name in members(store, cluster):
        ep = endpoints.get(name)
        if name == gone.instance or ep is None:
            continue
        try:
            with ControlClient(ep.control, timeout_s=timeout_s) as cc:
                cc.remove_replica(gone.repl_addr)
        except ControlError as exc:
            log.warning("cluster %s: unwiring %s from %s failed: %s", cluster, gone.instance, name, exc)
    return _set_members(store, cluster, remove=gone.instance)
