"""Steering: which instance owns a flow group, and the OVS rules that duplicate its packets.

The steering table lives in the state store (``steering/<service>/<flow group>``, see
:mod:`nf.store.keys`). An entry names the *primary* instance of the group, its *secondaries*
(replicas that receive a copy of every input packet), their overlay IP/MAC/UDP port, and the
ownership *epoch* (the lease epoch of the instance group, :mod:`nf.failover`). The stamper reads
the table to address each stamped packet to the group's primary; failover and migration rewrite
entries with an epoch-guarded compare-and-set (:meth:`SteeringTable.update`), so a stale controller
can never point a group back at a fenced primary.

Every host's agent runs a :class:`SteeringProgrammer`: it watches the table (version counter poll,
:class:`nf.store.base.PrefixWatcher`) and programs the host's own ``br-int`` — no central SDN
controller, as in DEFT. For each primary with secondaries it installs one duplication rule::

    udp, tun_id=0, nw_dst=<primary ip>, tp_dst=<primary data_port + i>          (per worker i)
      -> output:<port towards primary>,
         mod_dl_dst:<secondary mac>, mod_nw_dst:<secondary ip>, mod_tp_dst:<secondary dup_port + i>,
         output:<port towards secondary>  (repeated per secondary)

``tun_id=0`` means "entered this bridge from a local port, not from a VXLAN tunnel", so the copy is
made once, on the ingress host, and never again on the hosts the packets traverse. The copy gets
the secondary's MAC *and* IP (the DEFT seed rewrote only ``nw_dst``, so its copy was L2-delivered to
the primary again). "Port towards X" is X's own ``ovs_port`` when X runs on this host, else the
tunnel port ``vx-<X's host_index>`` (the overlay role's naming), else ``NORMAL`` (correct too,
because the destination MAC is rewritten first). OVS cannot see the flow group inside the stamp,
so the rule for a primary duplicates to the *union* of the secondaries of all its groups; a replica
ignores copies of groups it does not replicate.

Rules carry cookies ``0xDEF7 01 <crc32 of the rule>``: :meth:`SteeringProgrammer.sync` adds the
missing ones (an add with the same match replaces the old rule atomically), deletes cookies that
are no longer wanted, and is idempotent.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType

from deftctl.config import ConfigError, from_dict, to_dict
from nf.ovsctl import OvsSwitch, flow_cookie
from nf.store import keys as keyspace
from nf.store.base import PrefixWatcher, StateStore

log = logging.getLogger(__name__)

#: cookie "kind" byte of steering rules
COOKIE_KIND_STEERING = 0x01
#: OpenFlow priority of duplication rules (above the NORMAL default at 0)
DUPLICATION_PRIORITY = 200


@dataclass(frozen=True)
class Endpoint:
    """Where an NF instance receives its packets (and how to reach its control API).

    Worker ``i`` of the instance receives stamped input on ``data_port + i``, duplicated (replica)
    input on ``dup_port + i`` and replication channels on ``repl_port + i`` (nf.instance_config);
    every instance of a pair/cluster runs the same number of ``workers``.
    """

    instance: str
    #: inventory hostname of the host running it
    host: str
    #: the host's ``host_index`` (tunnel ports are ``vx-<host_index>``)
    host_index: int
    #: overlay IPv4 address of the instance
    ip: str
    #: MAC address of the instance's overlay interface
    mac: str
    data_port: int = 9000
    dup_port: int = 9100
    repl_port: int = 9200
    workers: int = 1
    #: interface name of the instance's port on its host's br-int
    ovs_port: str = ""
    #: ``host:port`` or Unix socket path of the instance's JSON control API (nf.control)
    control: str = ""

    def __post_init__(self) -> None:
        keyspace.segment(self.instance, "endpoint.instance")
        for name in ("data_port", "dup_port", "repl_port"):
            p = getattr(self, name)
            if p <= 0 or p + self.workers >= 65536:
                raise ValueError(f"endpoint {self.instance}: {name} {p} out of range")
        if self.workers < 1:
            raise ValueError(f"endpoint {self.instance}: workers must be >= 1")
        if len(self.mac.split(":")) != 6:
            raise ValueError(f"endpoint {self.instance}: mac {self.mac!r} is not aa:bb:cc:dd:ee:ff")

    @property
    def repl_addr(self) -> str:
        """Base replication address ``ip:repl_port`` (add_replica, handover ``to``)."""
        return f"{self.ip}:{self.repl_port}"

    @property
    def dup_addr(self) -> str:
        """Base duplicated-input address ``ip:dup_port`` (handover ``dup_to``)."""
        return f"{self.ip}:{self.dup_port}"


@dataclass(frozen=True)
class SteeringEntry:
    """Owner of one flow group of one service."""

    service: str
    group: str
    primary: Endpoint
    secondaries: tuple[Endpoint, ...] = ()
    #: lease epoch of the owning instance group when this entry was written
    epoch: int = 0
    #: lease name (``nf.store.keys.lease(<lease>)``) of the instance group owning the flow group
    lease: str = ""

    @property
    def key(self) -> str:
        return keyspace.steering(self.service, self.group)

    def encode(self) -> bytes:
        return json.dumps(to_dict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes, source: str = "steering entry") -> SteeringEntry:
        """Parse an entry. Fast path: plain construction (the stamper and every host decode the
        whole table on each change); anything unexpected goes through the strict loader, whose
        error names the bad key."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: not JSON: {exc}") from exc
        try:
            return cls(
                service=str(data["service"]), group=str(data["group"]), primary=Endpoint(**data["primary"]),
                secondaries=tuple(Endpoint(**s) for s in data.get("secondaries", ())),
                epoch=int(data.get("epoch", 0)), lease=str(data.get("lease", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return from_dict(cls, data, source=source)


class SteeringTable:
    """The steering entries of the store, with epoch-guarded updates."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def get(self, service: str, group: str | int) -> SteeringEntry | None:
        key = keyspace.steering(service, group)
        raw = self.store.get(key)
        return None if raw is None else SteeringEntry.decode(raw, key)

    def put(self, entry: SteeringEntry) -> None:
        """Unconditional write (initial placement); use :meth:`update` for changes."""
        self.store.put(entry.key, entry.encode())

    def delete(self, service: str, group: str | int) -> bool:
        return self.store.delete(keyspace.steering(service, group))

    def entries(self, service: str | None = None) -> list[SteeringEntry]:
        """All entries (of ``service``); undecodable ones are logged and skipped."""
        return decode_entries(self.store.scan(keyspace.steering_prefix(service)))

    def update(
        self,
        service: str,
        group: str | int,
        change: Callable[[SteeringEntry | None], SteeringEntry | None],
        attempts: int = 100,
    ) -> SteeringEntry | None:
        """Read-modify-CAS loop: ``change(current)`` returns the new entry, or ``None`` to leave it.

        An entry of the same lease with a *lower* epoch than the stored one is refused (returns the
        stored entry unchanged): steering never moves back to a fenced owner. (A migration moves a
        group to another lease, whose epochs are unrelated.)
        """
        key = keyspace.steering(service, group)
        for _ in range(attempts):
            raw = self.store.get(key)
            cur = None if raw is None else SteeringEntry.decode(raw, key)
            new = change(cur)
            if new is None or new == cur:
                return cur
            if cur is not None and new.lease == cur.lease and new.epoch < cur.epoch:
                log.warning("steering %s: refusing epoch %d < stored %d", key, new.epoch, cur.epoch)
                return cur
            if self.store.compare_and_set(key, raw, new.encode()):
                return new
        raise RuntimeError(f"steering {key}: compare-and-set kept failing after {attempts} attempts")

    def repoint(
        self,
        service: str,
        groups: Iterable[str | int],
        primary: Endpoint,
        secondaries: Iterable[Endpoint],
        epoch: int,
        lease: str | None = None,
    ) -> list[SteeringEntry]:
        """Point ``groups`` at ``primary`` with ``secondaries`` at ``epoch`` (failover/migration).

        Every flow group is its own linearizable key: the entries are read in one batch and
        compare-and-set in one batch (:meth:`StateStore.compare_and_set_many`: on Redis one round
        trip and one WAIT for the replicas, not one per group - on the lab a failover's 16 groups
        took 97-297 ms one by one); a group whose CAS lost a race is retried through :meth:`update`.
        """
        secs = tuple(secondaries)
        gs = [str(g) for g in groups]
        keys = [keyspace.steering(service, g) for g in gs]
        current = self.store.get_many(keys)

        def change(cur: SteeringEntry | None, g: str) -> SteeringEntry:
            base = cur or SteeringEntry(service=service, group=g, primary=primary)
            return replace(base, primary=primary, secondaries=secs, epoch=epoch,
                           lease=lease if lease is not None else base.lease)

        results: list[SteeringEntry | None] = [None] * len(gs)
        plans: list[tuple[int, bytes | None, SteeringEntry]] = []  # (index, expected raw, new)
        for i, (g, key) in enumerate(zip(gs, keys, strict=True)):
            raw = current.get(key)
            cur = None if raw is None else SteeringEntry.decode(raw, key)
            new = change(cur, g)
            if cur is not None and new.lease == cur.lease and new.epoch < cur.epoch:
                log.warning("steering %s: refusing epoch %d < stored %d", key, new.epoch, cur.epoch)
                results[i] = cur
            elif new == cur:
                results[i] = new
            else:
                plans.append((i, raw, new))
        oks = self.store.compare_and_set_many([(keys[i], raw, new.encode()) for i, raw, new in plans])
        for (i, _raw, new), ok in zip(plans, oks, strict=True):
            # a group whose CAS lost a race is retried on its own
            results[i] = new if ok else self.update(service, gs[i], functools.partial(change, g=gs[i]))
        return [r for r in results if r is not None]

    def groups_of(self, instance: str, service: str | None = None) -> list[SteeringEntry]:
        """Entries whose primary is ``instance``."""
        return [e for e in self.entries(service) if e.primary.instance == instance]


def decode_entries(raw: Mapping[str, bytes]) -> list[SteeringEntry]:
    out = []
    for key, val in sorted(raw.items()):
        try:
            out.append(SteeringEntry.decode(val, key))
        except ConfigError as exc:
            log.error("skipping bad steering entry: %s", exc)
    return out


@dataclass
class SyncResult:
    """What one :meth:`SteeringProgrammer.sync` changed on the bridge."""

    added: int = 0
    removed: int = 0
    rules: dict[int, str] = field(default_factory=dict)


class SteeringProgrammer:
    """Keeps one host's br-int duplication rules equal to the steering table."""

    def __init__(
        self,
        store: StateStore,
        switch: OvsSwitch,
        host_index: int,
        service: str | None = None,
        tunnel_port_format: str = "vx-{index}",
        interval_ms: int = 50,
    ) -> None:
        self.store = store
        self.switch = switch
        self.host_index = host_index
        self.service = service
        self.tunnel_port_format = tunnel_port_format
        self.interval_ms = interval_ms
        self._lock = threading.Lock()
        self._watcher: PrefixWatcher | None = None
        self.syncs = 0
        self.last: SyncResult | None = None

    # ---- rule computation (pure apart from ofport lookups) -----------------------------------
    def _out(self, ep: Endpoint, ofports: dict[str, int | None]) -> str:
        name = ep.ovs_port if ep.host_index == self.host_index else self.tunnel_port_format.format(
            index=ep.host_index
        )
        if name and name not in ofports:
            ofports[name] = self.switch.ofport(name)
        port = ofports.get(name) if name else None
        return f"output:{port}" if port else "NORMAL"

    def desired_rules(self, entries: Iterable[SteeringEntry]) -> dict[int, str]:
        """cookie -> ``ovs-ofctl add-flow`` text: per primary with secondaries, one rule per worker
        port (``data_port + i`` -> copies to each secondary's ``dup_port + i``)."""
        by_primary: dict[tuple[str, int], tuple[Endpoint, dict[str, Endpoint]]] = {}
        for e in entries:
            if self.service is not None and e.service != self.service:
                continue
            k = (e.primary.ip, e.primary.data_port)
            prim, secs = by_primary.setdefault(k, (e.primary, {}))
            for s in e.secondaries:
                if s.ip != prim.ip:
                    secs.setdefault(s.instance, s)
        ofports: dict[str, int | None] = {}
        rules: dict[int, str] = {}
        for (ip, port), (prim, secs) in sorted(by_primary.items()):
            if not secs:
                continue
            for w in range(prim.workers):
                actions = [self._out(prim, ofports)]
                for s in sorted(secs.values(), key=lambda x: x.instance):
                    actions += [f"mod_dl_dst:{s.mac}", f"mod_nw_dst:{s.ip}", f"mod_tp_dst:{s.dup_port + w}"]
                    actions.append(self._out(s, ofports))
                match = f"table=0,priority={DUPLICATION_PRIORITY},udp,tun_id=0,nw_dst={ip},tp_dst={port + w}"
                body = f"{match},actions={','.join(actions)}"
                cookie = flow_cookie(COOKIE_KIND_STEERING, body)
                rules[cookie] = f"cookie={cookie:#x},{body}"
        return rules

    # ---- programming ---------------------------------------------------------------------------
    def sync(self, raw_entries: Mapping[str, bytes] | None = None) -> SyncResult:
        """Make the bridge's steering rules equal to the table (``raw_entries`` or a fresh scan)."""
        with self._lock:
            if raw_entries is None:
                raw_entries = self.store.scan(keyspace.steering_prefix(self.service))
            want = self.desired_rules(decode_entries(raw_entries))
            have = {f.cookie for f in self.switch.dump_flows(COOKIE_KIND_STEERING)}
            missing = [text for c, text in want.items() if c not in have]
            stale = [c for c in have if c not in want]
            self.switch.add_flows(missing)  # same match + priority: replaces the old rule atomically
            for c in stale:
                self.switch.del_cookie(c)
            res = SyncResult(added=len(missing), removed=len(stale), rules=want)
            self.syncs += 1
            self.last = res
            if missing or stale:
                log.info(
                    "steering on %s: +%d -%d rule(s), %d installed",
                    self.switch.bridge, len(missing), len(stale), len(want),
                )
            return res

    def start(self) -> SteeringProgrammer:
        """Watch the table and sync on every change (and once now)."""
        prefix = keyspace.steering_prefix(self.service)
        self._watcher = PrefixWatcher(
            self.store, prefix, self._on_change,
            interval_ms=self.interval_ms, name=f"steering:{self.switch.bridge}",
        ).start()
        return self

    def _on_change(self, entries: dict[str, bytes]) -> None:
        self.sync(entries)

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def remove_all(self) -> None:
        """Delete every steering rule this programmer kind owns on the bridge."""
        with self._lock:
            for f in self.switch.dump_flows(COOKIE_KIND_STEERING):
                self.switch.del_cookie(f.cookie)

    def __enter__(self) -> SteeringProgrammer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
