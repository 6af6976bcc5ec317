"""Loss-free, order-preserving migration of flow groups (or a whole instance) from host A to host B.

OpenNF's ``move`` with both guarantees, built on the same mechanism as failover (the replica):

1. **Duplicate + pre-copy**: the steering entries of the groups add B to their secondaries, so
   OVS/the stamper copy every input packet to B (B logs them). Unless B already replicates A (a
   member of A's cluster — the thesis' cluster idea, so only the delta since the last batch moves),
   A ``add_replica(B)`` sends B a snapshot followed by every batch delta, and we wait until B has
   acked all batches A has closed (caught up).
2. **Cooperative handover** at a batch boundary: A freezes the groups (their packets wait in A),
   closes the open batch, waits until B acked it, then sends HANDOVER; B owns the flows and replays
   its logged input after the committed sequence numbers in (epoch, seq) order. From then on A
   forwards any packet of those groups it still receives to B (flagged FORWARDED) — **no loss**;
   B processes strictly by per-flow sequence number — **no reordering**.
3. **Switch steering**: the groups' entries point at B (with B's lease, epoch and secondaries).
4. **Drain**: after the stampers and OVS programmers followed (``settle_ms``), the temporary
   replica channel A -> B is removed; a whole-instance move then drains and stops A (and its
   secondary) and releases its lease.

The *downtime* of a move is step 2 (packets of the moved groups are held, not processed); it is
reported in :class:`MigrationReport` and measured by ``bench/migration_downtime.py``.

:func:`migrate_groups` is what the agent's ``migrate`` command and the placement service call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nf.control import ControlClient, ControlError
from nf.launcher import InstanceLauncher
from nf.steering import Endpoint, SteeringEntry, SteeringTable
from nf.store import keys as keyspace
from nf.store.base import StateStore

log = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    """A migration step failed; the message names the step, the groups and the instances."""


@dataclass
class MigrationReport:
    """What one migration did; times in ms."""

    service: str
    groups: list[str]
    source: str
    target: str
    #: True when B already replicated A (cluster member): no snapshot, only the delta moved
    delta_only: bool
    precopy_ms: float = 0.0
    #: packets of the moved groups were held (not processed) this long: the downtime
    handover_ms: float = 0.0
    steer_ms: float = 0.0
    total_ms: float = 0.0
    flows: int = 0
    replayed: int = 0
    stopped_source: bool = False
    notes: list[str] = field(default_factory=list)


def _replica_entry(status: dict[str, Any], addr: str) -> list[dict[str, Any]]:
    """The per-worker replica channel records of ``status`` for replica ``addr``."""
    return [r for w in status.get("workers", []) for r in w.get("replicas", []) if r.get("addr") == addr]


def _wait_caught_up(src: ControlClient, addr: str, timeout_s: float, max_lag: int = 1) -> None:
    """Until every worker's channel to ``addr`` is connected and at most ``max_lag`` batches behind."""
    deadline = time.monotonic() + timeout_s
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        st = src.status()
        last = _replica_entry(st, addr)
        if last and all(r.get("connected") and int(r.get("lag_batches", 1 << 30)) <= max_lag for r in last):
            return
        time.sleep(0.005)
    raise MigrationError(f"pre-copy to {addr}: replica not caught up after {timeout_s} s: {last}")


def migrate_groups(
    store: StateStore,
    service: str,
    groups: Iterable[str | int],
    target: Endpoint,
    *,
    target_lease: str | None = None,
    target_epoch: int | None = None,
    target_secondaries: tuple[Endpoint, ...] | None = None,
    delta_only: bool | None = None,
    settle_ms: float = 200.0,
    timeout_s: float = 30.0,
    stop_empty_source: bool = False,
    launcher: InstanceLauncher | None = None,
) -> MigrationReport:
    """Move ``groups`` of ``service`` from their current primary to ``target`` (see module docstring).

    ``target_lease``/``target_epoch``: B's lease (default: from B's ``status``); ``target_secondaries``:
    B's replicas for the new steering entries (default: none, or those of B's existing entries);
    ``delta_only``: force/skip the pre-copy (default: skip iff B is already a replica of A);
    ``stop_empty_source``: when A serves no group afterwards, drain and stop it (needs ``launcher``).
    """
    t0 = time.monotonic()
    table = SteeringTable(store)
    gs = [str(g) for g in groups]
    entries = [table.get(service, g) for g in gs]
    missing = [g for g, e in zip(gs, entries, strict=True) if e is None]
    if missing:
        raise MigrationError(f"migrate {service}: no steering entry for group(s) {', '.join(missing)}")
    ents: list[SteeringEntry] = [e for e in entries if e is not None]
    sources = {e.primary.instance for e in ents}
    if len(sources) != 1:
        raise MigrationError(f"migrate {service}: groups {gs} have several primaries {sorted(sources)}; "
                             "move them per source")
    source = ents[0].primary
    if source.instance == target.instance:
        raise MigrationError(f"migrate {service}: {target.instance} already serves groups {gs}")
    int_groups = [int(g) for g in gs]
    rep = MigrationReport(service, gs, source.instance, target.instance, False)
    with ControlClient(source.control, timeout_s=timeout_s) as src, \
            ControlClient(target.control, timeout_s=timeout_s) as dst:
        tst = dst.status()
        lease = target_lease or str(tst.get("lease"))
        epoch = target_epoch if target_epoch is not None else int(str(tst.get("epoch")))
        sst = src.status()
        already = bool(_replica_entry(sst, target.repl_addr))
        rep.delta_only = already if delta_only is None else delta_only
        added_replica = False
        # 1. duplicate input to B (always: B then holds every packet the source has not committed
        #    yet, so nothing queued at the source can be lost), then, unless B already replicates
        #    the source, snapshot + deltas until caught up (pre-copy)
        t = time.monotonic()
        todo: dict[tuple[tuple[Endpoint, ...], int, str], list[str]] = {}
        for e in ents:
            if target not in e.secondaries:
                todo.setdefault((e.secondaries, e.epoch, e.lease), []).append(e.group)
        for (secs0, ep0, lease0), gl in todo.items():
            table.repoint(service, gl, source, (*secs0, target), ep0, lease=lease0)
        if todo:  # let stampers/OVS programmers start duplicating before the snapshot/handover
            time.sleep(settle_ms / 1000.0)
        if not rep.delta_only:
            if not already:
                src.add_replica(target.repl_addr)
                added_replica = True
            _wait_caught_up(src, target.repl_addr, timeout_s)
            rep.precopy_ms = (time.monotonic() - t) * 1000
        # 2. cooperative handover at a batch boundary (the downtime of the moved groups)
        t = time.monotonic()
        try:
            res = src.handover(int_groups, to=target.repl_addr, dup_to=target.dup_addr)
        except ControlError as exc:
            raise MigrationError(f"handover of {gs} {source.instance} -> {target.instance}: {exc}") from exc
        rep.handover_ms = (time.monotonic() - t) * 1000
        rep.flows = int(res.get("flows", 0)) if isinstance(res, dict) else 0
        # 3. switch steering to B (B's lease, epoch and replicas)
        t = time.monotonic()
        secs = target_secondaries
        if secs is None:
            mine = [e for e in table.entries(service) if e.primary.instance == target.instance]
            secs = mine[0].secondaries if mine else ()
        table.repoint(service, gs, target, secs, epoch, lease=lease)
        rep.steer_ms = (time.monotonic() - t) * 1000
        # 4. drain: once stampers/OVS follow, the temporary channel goes away
        time.sleep(settle_ms / 1000.0)
        if added_replica:
            try:
                src.remove_replica(target.repl_addr)
            except ControlError as exc:
                rep.notes.append(f"remove_replica: {exc}")
        remaining = [e for e in table.entries(service) if e.primary.instance == source.instance]
        if not remaining and stop_empty_source:
            rep.stopped_source = _retire(store, src, source, ents[0], launcher, rep)
    rep.total_ms = (time.monotonic() - t0) * 1000
    log.info("migrated %s groups %s %s -> %s: handover %.1f ms (%s), total %.1f ms", service, gs,
             source.instance, target.instance, rep.handover_ms,
             "delta only" if rep.delta_only else f"pre-copy {rep.precopy_ms:.1f} ms", rep.total_ms)
    return rep


def _retire(store: StateStore, src: ControlClient, source: Endpoint, entry: SteeringEntry,
            launcher: InstanceLauncher | None, rep: MigrationReport) -> bool:
    """Drain and stop an instance that serves nothing any more, its secondaries, and its lease."""
    try:
        src.drain()
    except ControlError as exc:
        rep.notes.append(f"drain {source.instance}: {exc}")
    if launcher is None:
        rep.notes.append(f"{source.instance} serves no group; no launcher given to stop it")
        return False
    launcher.stop(source.instance)
    for s in entry.secondaries:
        if s.instance != rep.target:
            launcher.stop(s.instance)
    if entry.lease:
        cur = store.current(keyspace.lease(entry.lease))
        if cur is not None and cur.owner is not None:
            store.release(keyspace.lease(entry.lease), cur.owner, cur.epoch)
    return True
