"""The one state-store interface of the DEFT data plane.

Why one interface: the control-plane state of the data plane (steering table, ownership leases with
epochs, per-flow checkpoints, global NF state such as the NAT port pool) must be reachable from every
host and updated with per-key atomicity. Production sites run Hazelcast (IMap with a synchronous
backup) or Redis (optionally with Sentinel); the lab and CI run Redis. Every caller (NF engine, host
agent, failover detector, migration, balancer) codes against :class:`StateStore` only and gets a
backend from :func:`nf.store.open_store`.

Semantics every backend must provide (checked by ``tests/nf/test_store_contract.py``):

* Keys are ``str`` built by :mod:`nf.store.keys`; values are ``bytes`` (callers choose the codec).
* ``get``/``put``/``delete`` and the batch forms ``get_many``/``put_many``/``delete_many``.
* ``compare_and_set(key, expected, new)``: atomic per key (linearizable on Redis; on Hazelcast as
  linearizable as the IMap partition owner, see ``hazelcast_store``). ``expected=None`` means "key
  absent", ``new=None`` means "delete". ``compare_and_set_many`` does a batch of them, each key on
  its own (no transaction across keys), in one round trip where the backend can.
* ``put_if_absent`` and ``increment`` (atomic add on a counter key; the counter is stored as the
  decimal ASCII of an int so every backend can read it with ``get``).
* ``scan(prefix)``: every key under ``prefix`` with its value (not a snapshot across keys).
* Leases with **epochs**: ``acquire(lease, owner, ttl_ms)`` grants the lease when it is free
  (never held, expired or released) or already held by ``owner``. The epoch increments whenever
  ownership changes hands (a grant to anyone but the last holder, or after a ``release``) and never
  goes back; a holder whose lease merely expired and that nobody took meanwhile gets it back at the
  same epoch (no one else can have acted under a newer epoch, so nothing needs fencing).
  ``takeover(lease, owner, expected_epoch, ttl_ms)`` is the failover path: it succeeds only when
  the epoch is still ``expected_epoch`` (whoever holds it), so of two racing secondaries exactly one
  wins, and a partitioned old primary whose lease moved is *fenced*: its ``renew`` fails and any
  replica compares its epoch against :meth:`current`.
* ``version(prefix)`` + ``poll(prefix, since)``: a counter that grows on every mutation of a key in
  a *watched* namespace (:data:`nf.store.keys.WATCHED_NAMESPACES`); pollers read the whole prefix
  only when the counter moved. :class:`PrefixWatcher` turns that into a callback thread.

Time: TTLs and lease durations are in milliseconds (``ttl_ms``).
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from nf.store import keys as keyspace

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The store is unreachable or answered with an error; the message names backend and endpoint."""


class LeaseError(StoreError):
    """A lease operation was refused (wrong owner, stale epoch); carries the current holder."""

    def __init__(self, message: str, current: LeaseInfo | None) -> None:
        super().__init__(message)
        self.current = current


@dataclass(frozen=True)
class LeaseInfo:
    """The holder of a lease as the store sees it.

    ``owner`` is ``None`` when the lease is free (expired or released) but has been held before:
    its ``epoch`` still tells the last epoch so the next grant gets ``epoch + 1``.
    ``remaining_ms`` is the time left before expiry (0 when free).
    """

    owner: str | None
    epoch: int
    remaining_ms: int

    @property
    def held(self) -> bool:
        return self.owner is not None


class StateStore(abc.ABC):
    """Abstract state store; see the module docstring for the semantics each method guarantees."""

    #: short backend name for logs and metrics ("redis", "hazelcast")
    backend: str = "abstract"

    # ---- plain key/value -------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """Value of ``key`` or ``None`` when absent."""

    @abc.abstractmethod
    def put(self, key: str, value: bytes, ttl_ms: int | None = None) -> None:
        """Set ``key`` (optionally expiring after ``ttl_ms``)."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when it existed."""

    @abc.abstractmethod
    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """Values of the given keys that exist (absent keys are left out)."""

    @abc.abstractmethod
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Set many keys in one round trip where the backend allows it (checkpoints of many flows)."""

    @abc.abstractmethod
    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the given keys; returns how many existed."""

    @abc.abstractmethod
    def scan(self, prefix: str) -> dict[str, bytes]:
        """Every key starting with ``prefix`` and its value.

        Lease records are backend-internal: read them with :meth:`current`, not by scanning
        ``lease/`` (a scan returns a backend-specific rendering of them)."""

    # ---- atomic single-key updates ---------------------------------------------------------
    @abc.abstractmethod
    def compare_and_set(self, key: str, expected: bytes | None, new: bytes | None) -> bool:
        """Atomically replace ``expected`` by ``new``; ``None`` = absent / delete. ``True`` on success."""

    def compare_and_set_many(self, items: Sequence[tuple[str, bytes | None, bytes | None]]) -> list[bool]:
        """:meth:`compare_and_set` of every ``(key, expected, new)``, one result per item.

        Each key is its own linearizable CAS; there is no transaction across keys (a caller retries
        the keys that lost). Why a batch: a failover or a move re-steers all of a lease's flow
        groups at once, and a backend that can do them in one round trip (Redis: one pipeline and
        one WAIT for the replicas instead of one per key) makes that much faster; this default does
        them one by one."""
        return [self.compare_and_set(k, e, n) for k, e, n in items]

    @abc.abstractmethod
    def put_if_absent(self, key: str, value: bytes, ttl_ms: int | None = None) -> bool:
        """Set ``key`` only if absent; ``True`` when this call created it."""

    @abc.abstractmethod
    def increment(self, key: str, delta: int = 1) -> int:
        """Atomically add ``delta`` to the integer counter at ``key`` (absent = 0); returns the new value."""

    # ---- leases with epochs ----------------------------------------------------------------
    @abc.abstractmethod
    def acquire(self, lease: str, owner: str, ttl_ms: int) -> int | None:
        """Grant ``lease`` to ``owner`` for ``ttl_ms`` if free or already ``owner``'s; returns the epoch,
        or ``None`` when someone else holds it."""

    @abc.abstractmethod
    def takeover(self, lease: str, owner: str, expected_epoch: int, ttl_ms: int) -> int | None:
        """Grant ``lease`` to ``owner`` with epoch ``expected_epoch + 1`` iff the epoch is still
        ``expected_epoch`` (held or not). The failure detector's CAS; ``None`` when the epoch moved."""

    @abc.abstractmethod
    def renew(self, lease: str, owner: str, epoch: int, ttl_ms: int) -> bool:
        """Extend the lease iff ``owner`` still holds it at ``epoch`` (not expired)."""

    @abc.abstractmethod
    def release(self, lease: str, owner: str, epoch: int) -> bool:
        """Free the lease iff ``owner`` holds it at ``epoch``; the epoch is kept for the next grant."""

    @abc.abstractmethod
    def current(self, lease: str) -> LeaseInfo | None:
        """Holder and epoch of ``lease``; ``None`` when it was never granted."""

    # ---- change notification ---------------------------------------------------------------
    @abc.abstractmethod
    def version(self, prefix: str) -> int:
        """Change counter of the watched namespace that ``prefix`` belongs to (0 before any change)."""

    def poll(self, prefix: str, since: int) -> tuple[int, dict[str, bytes] | None]:
        """``(version, entries)``; ``entries`` is ``None`` when the version is still ``since``.

        The version is read *before* the scan, so a change racing the scan is seen again next poll.
        """
        ver = self.version(prefix)
        if ver == since:
            return ver, None
        return ver, self.scan(prefix)

    # ---- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def ping(self) -> float:
        """Round-trip time to the store in ms (raises :class:`StoreError` when unreachable)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the object is unusable afterwards."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def bump_needed(key: str) -> str | None:
    """Version-counter key that a mutation of ``key`` must bump, or ``None`` (unwatched namespace)."""
    ns = keyspace.namespace_of(key)
    return keyspace.version_key(ns) if ns in keyspace.WATCHED_NAMESPACES else None


class PrefixWatcher:
    """Calls ``callback(entries)`` whenever something under ``prefix`` changed, from a daemon thread.

    Why polling a version counter instead of pub/sub: it works identically on Redis and Hazelcast,
    survives a reconnect (a missed notification is impossible: the counter only grows) and costs one
    tiny read per ``interval_ms`` per host. The callback also runs once at start with the full prefix.
    Exceptions from the store are logged and retried; exceptions from the callback are logged and
    the entries are delivered again next round (the callback must be idempotent — the steering
    programmer is).
    """

    def __init__(
        self,
        store: StateStore,
        prefix: str,
        callback: Callable[[dict[str, bytes]], None],
        interval_ms: int = 50,
        name: str | None = None,
    ) -> None:
        self._store = store
        self._prefix = prefix
        self._callback = callback
        self._interval_s = interval_ms / 1000.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name or f"watch:{prefix}", daemon=True)
        self._since = -1

    def start(self) -> PrefixWatcher:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ver, entries = self._store.poll(self._prefix, self._since)
            except StoreError as exc:
                log.warning("watch %s: store error, retrying: %s", self._prefix, exc)
                self._stop.wait(self._interval_s * 4)
                continue
            if entries is not None:
                try:
                    self._callback(entries)
                    self._since = ver
                except Exception:
                    log.exception("watch %s: callback failed; will retry", self._prefix)
            self._stop.wait(self._interval_s)

    def __enter__(self) -> PrefixWatcher:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
