"""Failure detection (DEFT's FDU) and failover orchestration.

Failure detector (:class:`FailureDetector`): for every instance group (lease) in the steering
table it heartbeats the group's primary — a ``ping`` on the instance's control API every
``interval_ms`` over one kept connection, with a ``timeout_ms`` deadline — and renews the primary's
lease in the store while it answers. ``miss_threshold`` consecutive refused or reset heartbeats
declare the primary failed; heartbeats that only time out do so after ``slow_timeout_ms`` of
silence (a frozen or partitioned host - or a saturated one, which must not be failed over). A
killed process is noticed without waiting for the next interval: its kernel closes the kept
connection at once, the detector probes immediately and confirms the refusal ``miss_threshold - 1``
times ``confirm_interval_ms`` apart. With the defaults (50 ms interval, 3 misses, 10 ms confirms)
a killed primary is detected in about 20-30 ms, a silent host in 1 s.

Failover (:meth:`FailoverOrchestrator.fail_over`), in this order:

1. **Lease CAS**: ``takeover(lease, secondary, expected_epoch, ttl)`` -> ``epoch + 1``. Exactly one
   of several racing detectors wins; the others see the epoch moved and stop.
2. **Promote** the secondary at the new epoch: it owns the group's flows and replays its buffered,
   uncommitted input in (epoch, seq) order — nothing the old primary committed is lost, nothing
   is applied twice (the deltas told the secondary what was committed).
3. **Fence** the old primary (best effort: it is usually dead). Split brain is impossible even if
   it is only partitioned: its replica now knows the new epoch and answers FENCED instead of ACK,
   so it can never release another batch (output commit), and its own store check sees the lease
   epoch moved.
4. **Re-steer**: the steering entries of the group point at the new primary (epoch-guarded CAS);
   stampers and every host's OVS programmer follow within one poll interval.
5. **New secondary** on another host through the pluggable :class:`~nf.launcher.InstanceLauncher`;
   steering duplicates to it, then ``add_replica`` gives it a snapshot and every later delta.

Every step's time is recorded in :class:`FailoverReport` (``bench/failover_time.py`` measures
detect -> first packet released by the new primary).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from nf.control import ControlClient, ControlError
from nf.launcher import InstanceLauncher, LaunchSpec, forget_instance, lookup_instance
from nf.steering import Endpoint, SteeringEntry, SteeringTable
from nf.store import keys as keyspace
from nf.store.base import PrefixWatcher, StateStore, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorConfig:
    """Heartbeat settings: ``interval_ms`` between heartbeats, ``timeout_ms`` per heartbeat,
    ``miss_threshold`` consecutive misses that declare failure, ``lease_ttl_ms`` of the primary's
    lease (renewed on every healthy heartbeat), ``stall_ms``: a heartbeat whose answer says a worker
    has not gone round its loop for this long counts as a miss (a hung worker).

    A heartbeat is the instance's ``ping``, answered by its main process: a primary that is alive
    but saturated (a CPU-starved host, a deep input queue) answers at once, so overload is never
    mistaken for failure. Polling ``status`` instead (answered by the workers, behind their
    packets) made a CPU-capped primary on the lab miss 3 heartbeats under a load shift and fail
    over, then its successors in turn (placement/README.md, "live load shift"). And a ping that
    only times out (rather than being refused) may be a saturated machine that did not schedule the
    instance's main process in time: that takes ``slow_timeout_ms`` without any answer, on time or
    late. The heartbeat connection survives timeouts, so a late answer still arrives and counts: a
    primary capped at 0.05 CPU answered pings 15-36 ms (median) and up to 480 ms late under the
    load shift, and reconnecting after every timeout instead made it stop accepting connections
    and fail over while alive (docs/nf-dataplane.md, Known limits). A primary that is not failed
    over keeps its lease only through answers (a late one renews it too), and
    ``slow_timeout_ms`` < ``lease_ttl_ms`` so the lease never lapses before the detector decides."""

    interval_ms: float = 50.0
    #: the main process answers ``ping`` within a few ms even when its workers are saturated; a
    #: killed process on a live host refuses the connection at once
    timeout_ms: float = 100.0
    miss_threshold: int = 3
    lease_ttl_ms: int = 2000
    #: > 1 s: an idle worker wakes at least once a second
    stall_ms: float = 3000.0
    #: pings that time out (no answer and no refusal: a frozen, partitioned or crashed host, a
    #: killed container whose address vanished - or a host so overloaded that even the idle main
    #: process is not scheduled for timeout_ms) fail the primary only once no answer at all, not
    #: even a late one, came for this long; refused or reset connections (a dead process on a
    #: live host) fail it after miss_threshold misses
    slow_timeout_ms: float = 1000.0
    #: spacing (ms) of the confirming heartbeats after a refused or reset one, instead of
    #: interval_ms: a refusal is a definite answer from a live host that nothing listens any more
    #: (a dead process), so waiting whole intervals between the miss_threshold confirmations only
    #: adds downtime (3 x 50 ms before; 2 x 10 ms now). Timeouts keep interval_ms and the slow path
    confirm_interval_ms: float = 10.0
    #: create a replacement secondary after a failover
    replace_secondary: bool = True

    def __post_init__(self) -> None:
        if self.interval_ms <= 0 or self.timeout_ms <= 0:
            raise ValueError("interval_ms and timeout_ms must be > 0")
        if self.miss_threshold < 1:
            raise ValueError(f"miss_threshold must be >= 1, got {self.miss_threshold}")
        if self.lease_ttl_ms <= max(self.interval_ms * self.miss_threshold, self.slow_timeout_ms):
            raise ValueError("lease_ttl_ms must exceed interval_ms x miss_threshold and slow_timeout_ms")
        if self.slow_timeout_ms < self.interval_ms * self.miss_threshold:
            raise ValueError("slow_timeout_ms must be >= interval_ms x miss_threshold")
        if not 0 < self.confirm_interval_ms <= self.interval_ms:
            raise ValueError(f"confirm_interval_ms must be in (0, interval_ms], "
                             f"got {self.confirm_interval_ms}")
        if self.stall_ms <= 1000.0:
            raise ValueError(f"stall_ms must exceed 1000 (an idle worker's wake-up), got {self.stall_ms}")


@dataclass
class FailoverReport:
    """What one failover did, with monotonic timestamps (ns) of each step."""

    service: str
    lease: str
    old_primary: str
    new_primary: str
    epoch: int
    groups: list[str]
    t_detect_ns: int
    t_lease_ns: int = 0
    t_promote_ns: int = 0
    t_steer_ns: int = 0
    t_secondary_ns: int = 0
    #: first packet released by the new primary after its promotion (polled on its control API)
    t_first_release_ns: int = 0
    replayed: int = 0
    new_secondary: str | None = None
    error: str | None = None

    def ms(self, t_ns: int) -> float:
        return (t_ns - self.t_detect_ns) / 1e6 if t_ns else float("nan")


@dataclass(frozen=True)
class GroupView:
    """The steering entries of one lease, as the detector sees them."""

    service: str
    lease: str
    epoch: int
    primary: Endpoint
    secondaries: tuple[Endpoint, ...]
    groups: tuple[str, ...]


def group_views(entries: list[SteeringEntry]) -> dict[str, GroupView]:
    """Steering entries grouped by lease (entries without a lease use the primary's name)."""
    views: dict[str, GroupView] = {}
    for e in entries:
        lease = e.lease or e.primary.instance
        v = views.get(lease)
        if v is None or e.epoch > v.epoch:
            views[lease] = GroupView(e.service, lease, e.epoch, e.primary, e.secondaries, (e.group,))
        elif e.epoch == v.epoch and e.primary == v.primary:
            views[lease] = replace(v, groups=(*v.groups, e.group))
    return views


class FailoverOrchestrator:
    """Carries out a failover of one lease (see the module docstring for the steps)."""

    def __init__(
        self,
        store: StateStore,
        launcher: InstanceLauncher | None,
        lease_ttl_ms: int = 2000,
        control_timeout_s: float = 10.0,
        namer: Callable[[str, int], str] | None = None,
    ) -> None:
        self.store = store
        self.table = SteeringTable(store)
        self.launcher = launcher
        self.lease_ttl_ms = lease_ttl_ms
        self.control_timeout_s = control_timeout_s
        self.namer = namer or (lambda lease, epoch: f"{lease}-e{epoch}")
        self.reports: list[FailoverReport] = []
        #: how long to poll the new primary for its first released packet (0: do not measure)
        self.watch_release_s = 2.0
        #: stop the old primary through the launcher after fencing it (a frozen or partitioned
        #: process may still be running; it is fenced either way)
        self.stop_old_primary = True

    def _watch_first_release(self, rep: FailoverReport, ep: Endpoint) -> None:
        """Poll the promoted instance's ``released`` counter (1 ms) and stamp its first increase.

        The baseline is read while ``promote`` runs; should the promotion already have released
        replayed packets by then, the next release is stamped (an over-, never an under-estimate).
        """
        deadline = time.monotonic() + self.watch_release_s
        try:
            with ControlClient(ep.control, timeout_s=1.0) as cc:
                released0 = _released(cc)
                while time.monotonic() < deadline:
                    if _released(cc) > released0:
                        rep.t_first_release_ns = time.monotonic_ns()
                        return
                    time.sleep(0.001)
        except ControlError as exc:
            log.debug("first-release watch of %s: %s", ep.instance, exc)

    def fail_over(self, view: GroupView, t_detect_ns: int | None = None, replace_secondary: bool = True
                  ) -> FailoverReport | None:
        """Fail ``view.primary`` over to its first secondary; ``None`` when another detector won."""
        t0 = t_detect_ns or time.monotonic_ns()
        if not view.secondaries:
            log.error("lease %s: primary %s failed and has no secondary: flows of groups %s are lost "
                      "(rebuild from checkpoints with nf.checkpoint)", view.lease, view.primary.instance,
                      ",".join(view.groups))
            return None
        rep = FailoverReport(view.service, view.lease, view.primary.instance, view.secondaries[0].instance,
                             0, list(view.groups), t0)
        # 1. lease CAS: exactly one detector proceeds; 2. promote. A secondary that cannot be
        #    promoted (dead too) is skipped: the next one takes the lease over from it, so a failed
        #    promotion never leaves the lease stuck on a dead instance.
        lease_key = keyspace.lease(view.lease)
        expected = view.epoch
        sec: Endpoint | None = None
        for i, cand in enumerate(view.secondaries):
            epoch = self.store.takeover(lease_key, cand.instance, expected, self.lease_ttl_ms)
            if epoch is None and i == 0:
                epoch, expected = self._retake_stuck(lease_key, cand, expected)
            if epoch is None:
                if i == 0:
                    log.info("lease %s: another detector failed over first", view.lease)
                    return None
                rep.error = f"lease {view.lease} moved while failing over to {cand.instance}"
                break
            rep.epoch, rep.new_primary = epoch, cand.instance
            if not rep.t_lease_ns:
                rep.t_lease_ns = time.monotonic_ns()
            if self.watch_release_s > 0:  # baseline read concurrently, off the critical path
                threading.Thread(target=self._watch_first_release, args=(rep, cand), daemon=True).start()
            try:
                with ControlClient(cand.control, timeout_s=self.control_timeout_s) as cc:
                    res = cc.promote(epoch, lease=view.lease)
                rep.replayed = int(res.get("replayed", 0)) if isinstance(res, dict) else 0
                sec = cand
                break
            except ControlError as exc:
                rep.error = f"promote {cand.instance}: {exc}"
                log.error("lease %s: %s; trying the next secondary", view.lease, rep.error)
                expected = epoch
        if sec is None:
            log.error("lease %s: no secondary could be promoted (%s)", view.lease, rep.error)
            self.reports.append(rep)
            return rep
        rep.error = None
        epoch = rep.epoch
        rep.t_promote_ns = time.monotonic_ns()
        # 4. re-steer at once (the new primary has no replica yet: nothing to duplicate)
        rest = tuple(view.secondaries[view.secondaries.index(sec) + 1:])
        self.table.repoint(view.service, view.groups, sec, rest, epoch, lease=view.lease)
        rep.t_steer_ns = time.monotonic_ns()
        log.info("lease %s: %s -> %s at epoch %d (promote %.1f ms, steering %.1f ms after detection)",
                 view.lease, view.primary.instance, sec.instance, epoch, rep.ms(rep.t_promote_ns),
                 rep.ms(rep.t_steer_ns))
        # 3. fence the old primary (best effort, off the critical path)
        threading.Thread(target=self._fence, args=(view.primary, epoch, view.lease), daemon=True).start()
        # 5. replacement secondary
        if replace_secondary and self.launcher is not None and not rest:
            try:
                rep.new_secondary = self.add_secondary(view, sec, epoch)
                rep.t_secondary_ns = time.monotonic_ns()
            except Exception as exc:  # the service runs; only its redundancy is missing
                rep.error = f"new secondary: {exc}"
                log.error("lease %s: could not create a new secondary: %s", view.lease, exc)
        self.reports.append(rep)
        return rep

    def _retake_stuck(self, lease_key: str, cand: Endpoint, expected: int) -> tuple[int | None, int]:
        """A failover whose promotion failed (the secondary was unreachable then) has bumped the
        lease but never re-steered, so the steering view still shows the old epoch and every later
        CAS from it fails: the lease would stay stuck. Once that lease expired unrenewed (no
        detector is still promoting under it), take it over from its epoch. Returns ``(epoch or
        None, expected epoch used)``."""
        cur = self.store.current(lease_key)
        if cur is None or cur.owner is not None or cur.epoch <= expected:
            return None, expected
        log.warning("lease %s: an earlier failover to epoch %d never completed; retaking it for %s",
                    lease_key, cur.epoch, cand.instance)
        return self.store.takeover(lease_key, cand.instance, cur.epoch, self.lease_ttl_ms), cur.epoch

    def _fence(self, old: Endpoint, epoch: int, lease: str) -> None:
        try:
            with ControlClient(old.control, timeout_s=0.5) as cc:
                cc.fence(epoch, lease=lease)
            log.warning("lease %s: old primary %s was alive and is now fenced at epoch %d",
                        lease, old.instance, epoch)
        except ControlError:
            pass  # dead, as expected
        if self.launcher is not None and self.stop_old_primary:
            try:
                self.launcher.stop(old.instance)
            except Exception as exc:
                log.debug("stop %s: %s", old.instance, exc)
        if self.stop_old_primary:
            try:
                forget_instance(self.store, old.instance)
            except StoreError as exc:  # a stale registry entry only; the failover itself is done
                log.warning("lease %s: could not remove %s from the instance registry: %s",
                            lease, old.instance, exc)

    def add_secondary(self, view: GroupView, primary: Endpoint, epoch: int) -> str:
        """Start a secondary for ``primary`` on another host, duplicate to it, attach it as replica."""
        assert self.launcher is not None
        known = lookup_instance(self.store, primary.instance)
        base = known[0] if known else LaunchSpec(name=primary.instance, lease=view.lease,
                                                 workers=primary.workers)
        name = self.namer(view.lease, epoch)
        spec = replace(base, name=name, lease=view.lease, role="secondary", epoch=epoch, replicas=(),
                       exclude_hosts=(primary.host, view.primary.host))
        ep = self.launcher.launch(spec)
        # duplicate first, then replicate: input the new primary has not processed yet is already
        # being copied when the snapshot is taken
        self.table.repoint(view.service, view.groups, primary, (ep,), epoch, lease=view.lease)
        with ControlClient(primary.control, timeout_s=self.control_timeout_s) as cc:
            cc.add_replica(ep.repl_addr)
        log.info("lease %s: new secondary %s on %s", view.lease, name, ep.host)
        return name


def _released(cc: ControlClient) -> int:
    """Packets released so far by the instance behind ``cc`` (its ``metrics`` raw counter)."""
    m = cc.metrics()
    raw = m.get("raw", {}) if isinstance(m, dict) else {}
    return int(raw.get("released", 0))


class FailureDetector:
    """Heartbeats every lease's primary (from the steering table) and triggers failovers."""

    def __init__(
        self,
        store: StateStore,
        orchestrator: FailoverOrchestrator,
        config: DetectorConfig | None = None,
        service: str | None = None,
    ) -> None:
        self.store = store
        self.orch = orchestrator
        self.cfg = config or DetectorConfig()
        self.service = service
        self._views: dict[str, GroupView] = {}
        self._views_lock = threading.Lock()
        self._monitors: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._watcher: PrefixWatcher | None = None
        self.heartbeats = 0
        self.misses = 0
        self.detections: list[tuple[str, int]] = []

    def _on_steering(self, raw: dict[str, bytes]) -> None:
        from nf.steering import decode_entries  # noqa: PLC0415 - avoid a cycle at import time

        views = group_views(decode_entries(raw))
        with self._views_lock:
            self._views = views
        for lease in views:
            t = self._monitors.get(lease)
            if t is None or not t.is_alive():
                t = threading.Thread(target=self._monitor, args=(lease,), name=f"fdu:{lease}", daemon=True)
                self._monitors[lease] = t
                t.start()

    def view(self, lease: str) -> GroupView | None:
        with self._views_lock:
            return self._views.get(lease)

    def _monitor(self, lease: str) -> None:
        interval = self.cfg.interval_ms / 1000.0
        confirm = self.cfg.confirm_interval_ms / 1000.0
        misses = 0
        slow_since: float | None = None  # monotonic time of the first of consecutive timeouts
        #: the primary closed the kept heartbeat connection (its process exited): later timeouts are
        #: definite misses too. Why: a killed container's address vanishes with it, so the probes
        #: after the close time out instead of being refused; a frozen or saturated host never
        #: closes a connection, so this cannot turn overload into a failover
        closed = False
        client: ControlClient | None = None
        watched: Endpoint | None = None
        while not self._stop.is_set():
            t_next = time.monotonic() + interval
            definite = False  # this miss was a refusal, a reset or a probe after a close
            v = self.view(lease)
            if v is None:
                return
            if watched != v.primary:
                if client is not None:
                    client.close()
                watched, misses, slow_since, closed = v.primary, 0, None, False
                client = ControlClient(v.primary.control, timeout_s=self.cfg.timeout_ms / 1000.0)
            assert client is not None
            try:
                beat = client.ping()
                if float(beat.get("progress_age_ms", 0.0)) > self.cfg.stall_ms:
                    raise ControlError(f"{v.primary.instance}: a worker made no progress for "
                                       f"{beat['progress_age_ms']:.0f} ms")
                self.heartbeats += 1
                misses, slow_since, closed = 0, None, False
                self._renew(v)
            except ControlError as exc:
                log.info("FDU: heartbeat of %s missed: %s", v.primary.instance, exc)
                misses += 1
                self.misses += 1
                now = time.monotonic()
                if isinstance(exc.__cause__, TimeoutError) and not closed:
                    # the connection stays open (ControlClient.call): a late answer to an earlier
                    # ping is a sign of life, so "slow" counts from the latest answer of any kind
                    slow_since = now if slow_since is None else slow_since
                    if client.last_answer_at is not None and client.last_answer_at > slow_since:
                        slow_since = client.last_answer_at
                        self._renew(v)
                else:
                    client.close()
                    slow_since = None
                    definite = True
                slow_ok = slow_since is None or 1000 * (now - slow_since) >= self.cfg.slow_timeout_ms
                if misses >= self.cfg.miss_threshold and slow_ok:
                    misses, slow_since, definite = 0, None, False
                    if self._still_primary(v):
                        t_detect = time.monotonic_ns()
                        self.detections.append((lease, t_detect))
                        log.warning("FDU: primary %s of lease %s missed %d heartbeats: failing over",
                                    v.primary.instance, lease, self.cfg.miss_threshold)
                        try:
                            self.orch.fail_over(v, t_detect, self.cfg.replace_secondary)
                        except (StoreError, ControlError) as exc:
                            log.error("FDU: failover of lease %s failed: %s (will retry)", lease, exc)
                        self._refresh()
            if definite:  # confirm soon: a dead process on a live host refuses at once
                self._stop.wait(confirm)
            elif client.wait_closed(max(0.0, t_next - time.monotonic())):
                # the primary's kernel closed the kept heartbeat connection: its process is gone
                # (or exiting). Probe now instead of at the next interval; the probe and its
                # confirmations decide, so a connection closed for any other reason costs nothing
                log.info("FDU: %s closed the heartbeat connection: probing at once", v.primary.instance)
                closed = True
        if client is not None:
            client.close()

    def _still_primary(self, v: GroupView) -> bool:
        """Re-read the steering table before failing ``v.primary`` over: is it still the lease's
        primary at the same epoch? Why: the view is refreshed every ``interval_ms`` by polling, and
        a primary is detected in ~20 ms once it closes its connection - a migration or a removal
        that re-steered its groups and then stopped it must not be mistaken for a failure."""
        self._refresh()
        cur = self.view(v.lease)
        if cur is None or cur.primary != v.primary or cur.epoch != v.epoch:
            log.info("FDU: %s no longer leads lease %s (moved or removed): no failover",
                     v.primary.instance, v.lease)
            return False
        return True

    def _renew(self, v: GroupView) -> None:
        key = keyspace.lease(v.lease)
        try:
            if not self.store.renew(key, v.primary.instance, v.epoch, self.cfg.lease_ttl_ms):
                cur = self.store.current(key)
                if cur is None or (cur.owner in (None, v.primary.instance) and cur.epoch == v.epoch):
                    self.store.acquire(key, v.primary.instance, self.cfg.lease_ttl_ms)
        except StoreError as exc:
            log.warning("FDU: lease %s renew failed: %s", v.lease, exc)

    def _refresh(self) -> None:
        from nf.steering import SteeringTable  # noqa: PLC0415

        try:
            entries = SteeringTable(self.store).entries(self.service)
        except StoreError:
            return
        with self._views_lock:
            self._views = group_views(entries)

    def start(self) -> FailureDetector:
        self._watcher = PrefixWatcher(
            self.store, keyspace.steering_prefix(self.service), self._on_steering,
            interval_ms=max(10, int(self.cfg.interval_ms)), name="fdu:steering",
        ).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.stop()
        for t in self._monitors.values():
            t.join(2.0)

    def __enter__(self) -> FailureDetector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Deployment:
    """A primary/secondary pair started by :func:`deploy_pair`."""

    service: str
    lease: str
    epoch: int
    primary: Endpoint
    secondary: Endpoint
    groups: list[str] = field(default_factory=list)


def deploy_pair(
    store: StateStore,
    launcher: InstanceLauncher,
    service: str,
    lease: str,
    groups: list[str],
    spec: LaunchSpec,
    lease_ttl_ms: int = 2000,
    primary_host: str | None = None,
) -> Deployment:
    """Start a primary and a secondary of ``lease`` on two hosts, take the lease, write steering.

    ``spec`` is the template (nf section, workers, engine); names are ``<lease>-p`` / ``<lease>-s``.
    The lease's epoch comes from the store (a redeployed lease continues its epochs).
    """
    key = keyspace.lease(lease)
    pname = f"{lease}-p{int(time.time()) % 100000}"
    epoch = store.acquire(key, pname, lease_ttl_ms)
    if epoch is None:
        cur = store.current(key)
        raise RuntimeError(f"lease {lease} is held by {cur.owner if cur else '?'}: not deploying over it")
    sspec = replace(spec, name=f"{lease}-s{epoch}", lease=lease, role="secondary", epoch=epoch, replicas=())
    sec = launcher.launch(replace(sspec, exclude_hosts=(primary_host,) if primary_host else ()))
    pspec = replace(spec, name=pname, lease=lease, role="primary", epoch=epoch, replicas=(sec.repl_addr,),
                    exclude_hosts=(sec.host,))
    prim = launcher.launch(pspec, host=primary_host)
    table = SteeringTable(store)
    for g in groups:
        table.put(SteeringEntry(service=service, group=str(g), primary=prim, secondaries=(sec,), epoch=epoch,
                                lease=lease))
    return Deployment(service, lease, epoch, prim, sec, list(groups))
