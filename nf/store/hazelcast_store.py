"""Hazelcast backend of :class:`~nf.store.base.StateStore` (hazelcast-python-client, one IMap).

Semantics, honestly: every key lives in one IMap (``map_name``), configured on the members with
``backup-count: 1`` (synchronous backup: a ``put`` returns after the backup acknowledged). Per-key
atomic operations (``replace_if_same``, ``put_if_absent``, ``remove_if_same``) run on the key's
partition owner, so compare-and-set is linearizable per key *while the partition owner is alive and
the cluster is not split*. IMap is an AP structure: on a network split both halves keep accepting
writes and merge afterwards (split-brain merge policy), so two sides could each win a lease
``takeover``. Strong fencing on Hazelcast therefore needs the deployment to avoid splits (members on
one LAN segment, ``hazelcast.merge.first.run.delay`` and a quorum/split-brain protection rule on
the map). The CP Subsystem (Raft FencedLock/IAtomicLong) is Enterprise-only since Hazelcast 5.5 and
is deliberately not used.

Without server-side scripts, multi-step operations are client-side CAS loops:

* ``increment``: ``get`` then ``replace_if_same``/``put_if_absent`` until it sticks (no IAtomicLong).
* leases: the value is ``{"owner", "epoch", "exp"}`` (JSON) replaced with ``replace_if_same``; ``exp``
  is the *writer's wall clock* in ms, so hosts need NTP-synchronised clocks and the TTL must be much
  larger than the clock skew (Redis uses the server clock instead).
* version counters of watched namespaces are bumped *after* the mutation (not atomically with it);
  pollers read the version before scanning, so a change is never missed, only seen one poll later.

Values are ``bytes`` (the client's byte-array serializer), so ``replace_if_same`` compares bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from hazelcast.client import HazelcastClient
from hazelcast.errors import HazelcastError
from hazelcast.predicate import regex

from nf.store import StoreConfig
from nf.store import keys as keyspace
from nf.store.base import LeaseInfo, StateStore, StoreError, bump_needed

T = TypeVar("T")


def _now_ms() -> int:
    return int(time.time() * 1000)


class HazelcastStore(StateStore):
    """:class:`StateStore` on a Hazelcast cluster (members in ``config.endpoints``)."""

    backend = "hazelcast"

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self._where = f"hazelcast {config.cluster_name}@{','.join(config.endpoints)}"
        kwargs: dict[str, Any] = {
            "cluster_members": list(config.endpoints),
            "cluster_name": config.cluster_name,
            "connection_timeout": config.timeout_ms / 1000.0,
            "cluster_connect_timeout": config.retry_ms / 1000.0,
            "invocation_timeout": config.retry_ms / 1000.0,
        }
        if config.password:
            kwargs["creds_username"] = "deft"
            kwargs["creds_password"] = config.password
        try:
            self._client = HazelcastClient(**kwargs)
        except (HazelcastError, OSError) as exc:
            raise StoreError(f"{self._where}: cannot connect: {exc}") from exc
        #: the non-blocking proxy (methods return futures) for batches issued together
        self._amap: Any = self._client.get_map(config.map_name)
        self._map: Any = self._amap.blocking()

    # ---- helpers -------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (HazelcastError, OSError) as exc:
            raise StoreError(f"{self._where}: {what}: {exc}") from exc

    def _bump(self, *keys: str) -> None:
        for ver in sorted({v for k in keys if (v := bump_needed(k)) is not None}):
            self._incr(ver, 1)

    def _incr(self, key: str, delta: int) -> int:
        while True:
            cur = self.get(key)
            if cur is None:
                if self.put_if_absent_raw(key, str(delta).encode()):
                    return delta
                continue
            new = int(cur) + delta
            if self._replace(key, cur, str(new).encode()):
                return new

    def put_if_absent_raw(self, key: str, value: bytes, ttl_ms: int | None = None) -> bool:
        """``put_if_absent`` without the version bump; ``True`` when this call created ``key``."""
        if ttl_ms:
            ttl_s = ttl_ms / 1000.0
            old = self._call("put_if_absent", lambda: self._map.put_if_absent(key, value, ttl=ttl_s))
        else:
            old = self._call("put_if_absent", lambda: self._map.put_if_absent(key, value))
        return old is None

    def _replace(self, key: str, expected: bytes, new: bytes) -> bool:
        return bool(self._call("replace_if_same", lambda: self._map.replace_if_same(key, expected, new)))

    # ---- plain key/value -----------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        v = self._call("get", lambda: self._map.get(key))
        return None if v is None else bytes(v)

    def put(self, key: str, value: bytes, ttl_ms: int | None = None) -> None:
        if ttl_ms:
            self._call("set", lambda: self._map.set(key, value, ttl=ttl_ms / 1000.0))
        else:
            self._call("set", lambda: self._map.set(key, value))
        self._bump(key)

    def delete(self, key: str) -> bool:
        old = self._call("remove", lambda: self._map.remove(key))
        self._bump(key)
        return old is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        ks = list(keys)
        if not ks:
            return {}
        res = self._call("get_all", lambda: self._map.get_all(ks))
        return {str(k): bytes(v) for k, v in res.items() if v is not None}

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        self._call("put_all", lambda: self._map.put_all(dict(items)))
        self._bump(*items)

    def delete_many(self, keys: Iterable[str]) -> int:
        ks = list(keys)
        n = 0
        for k in ks:
            if self._call("remove", lambda k=k: self._map.remove(k)) is not None:  # type: ignore[misc]
                n += 1
        self._bump(*ks)
        return n

    def scan(self, prefix: str) -> dict[str, bytes]:
        if "\\E" in prefix:
            raise ValueError(f"scan prefix {prefix!r} must not contain \\E")
        pred = regex("__key", "\\Q" + prefix + "\\E.*")
        entries = self._call("entry_set", lambda: self._map.entry_set(pred))
        return {str(k): bytes(v) for k, v in entries}

    # ---- atomic single-key updates -------------------------------------------------------------
    def compare_and_set(self, key: str, expected: bytes | None, new: bytes | None) -> bool:
        return self.compare_and_set_many([(key, expected, new)])[0]

    def compare_and_set_many(self, items: Sequence[tuple[str, bytes | None, bytes | None]]) -> list[bool]:
        """Every CAS issued at once on the non-blocking proxy (each an atomic operation of its key's
        partition owner, with the synchronous backup), then awaited: ~one round trip instead of
        one per key; one version bump for all that changed."""
        def issue() -> list[tuple[Any, Callable[[Any], bool]]]:
            pending: list[tuple[Any, Callable[[Any], bool]]] = []
            for key, expected, new in items:
                if expected is None and new is None:
                    pending.append((self._amap.contains_key(key), lambda r: not r))
                elif expected is None:
                    pending.append((self._amap.put_if_absent(key, new), lambda r: r is None))
                elif new is None:
                    pending.append((self._amap.remove_if_same(key, expected), bool))
                else:
                    pending.append((self._amap.replace_if_same(key, expected, new), bool))
            return pending

        what = f"CAS x{len(items)}"
        oks = [ok(self._call(what, fut.result)) for fut, ok in self._call(what, issue)]
        self._bump(*(k for (k, e, n), ok in zip(items, oks, strict=True) if ok and (e, n) != (None, None)))
        return oks

    def put_if_absent(self, key: str, value: bytes, ttl_ms: int | None = None) -> bool:
        created = self.put_if_absent_raw(key, value, ttl_ms)
        if created:
            self._bump(key)
        return created

    def increment(self, key: str, delta: int = 1) -> int:
        val = self._incr(key, delta)
        self._bump(key)
        return val

    # ---- leases ----------------------------------------------------------------------------------
    @staticmethod
    def _check_lease(lease: str) -> None:
        if keyspace.namespace_of(lease) != keyspace.LEASE:
            raise ValueError(f"{lease!r} is not a lease key (build it with nf.store.keys.lease)")

    def _lease_read(self, lease: str) -> tuple[bytes | None, dict[str, Any]]:
        raw = self.get(lease)
        if raw is None:
            return None, {"owner": "", "epoch": 0, "exp": 0}
        return raw, json.loads(raw)

    def _lease_cas(self, lease: str, raw: bytes | None, rec: dict[str, Any]) -> bool:
        new = json.dumps(rec, sort_keys=True).encode()
        return self.compare_and_set(lease, raw, new)

    def _update_lease(
        self, lease: str, decide: Callable[[dict[str, Any], bool, int], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """CAS loop: ``decide(record, held, now_ms)`` returns the new record or ``None`` (refused)."""
        self._check_lease(lease)
        while True:
            raw, rec = self._lease_read(lease)
            now = _now_ms()
            held = bool(rec["owner"]) and int(rec["exp"]) > now
            new = decide(rec, held, now)
            if new is None:
                return None
            if self._lease_cas(lease, raw, new):
                return new

    def acquire(self, lease: str, owner: str, ttl_ms: int) -> int | None:
        def decide(rec: dict[str, Any], held: bool, now: int) -> dict[str, Any] | None:
            if held and rec["owner"] != owner:
                return None
            epoch = int(rec["epoch"]) if rec["owner"] == owner else int(rec["epoch"]) + 1
            return {"owner": owner, "epoch": epoch, "exp": now + ttl_ms}

        new = self._update_lease(lease, decide)
        return None if new is None else int(new["epoch"])

    def takeover(self, lease: str, owner: str, expected_epoch: int, ttl_ms: int) -> int | None:
        def decide(rec: dict[str, Any], held: bool, now: int) -> dict[str, Any] | None:
            if int(rec["epoch"]) != expected_epoch:
                return None
            return {"owner": owner, "epoch": expected_epoch + 1, "exp": now + ttl_ms}

        new = self._update_lease(lease, decide)
        return None if new is None else int(new["epoch"])

    def renew(self, lease: str, owner: str, epoch: int, ttl_ms: int) -> bool:
        def decide(rec: dict[str, Any], held: bool, now: int) -> dict[str, Any] | None:
            if not held or rec["owner"] != owner or int(rec["epoch"]) != epoch:
                return None
            return {"owner": owner, "epoch": epoch, "exp": now + ttl_ms}

        return self._update_lease(lease, decide) is not None

    def release(self, lease: str, owner: str, epoch: int) -> bool:
        def decide(rec: dict[str, Any], held: bool, now: int) -> dict[str, Any] | None:
            if not held or rec["owner"] != owner or int(rec["epoch"]) != epoch:
                return None
            return {"owner": "", "epoch": epoch, "exp": 0}

        return self._update_lease(lease, decide) is not None

    def current(self, lease: str) -> LeaseInfo | None:
        self._check_lease(lease)
        raw, rec = self._lease_read(lease)
        if raw is None:
            return None
        remaining = int(rec["exp"]) - _now_ms()
        if not rec["owner"] or remaining <= 0:
            return LeaseInfo(owner=None, epoch=int(rec["epoch"]), remaining_ms=0)
        return LeaseInfo(owner=str(rec["owner"]), epoch=int(rec["epoch"]), remaining_ms=remaining)

    # ---- change notification ---------------------------------------------------------------------
    def version(self, prefix: str) -> int:
        raw = self.get(keyspace.version_key(keyspace.namespace_of(prefix)))
        return int(raw) if raw is not None else 0

    # ---- lifecycle -------------------------------------------------------------------------------
    def ping(self) -> float:
        t0 = time.perf_counter()
        self._call("contains_key", lambda: self._map.contains_key(keyspace.version_key("ping")))
        return (time.perf_counter() - t0) * 1000.0

    def close(self) -> None:
        self._client.shutdown()
