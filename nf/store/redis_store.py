"""Redis backend of :class:`~nf.store.base.StateStore` (redis-py), Sentinel-aware.

Why Lua for every multi-step update: a script runs atomically on the Redis primary, so
compare-and-set, leases and the version bump of watched namespaces are each one linearizable step
and one round trip (``WATCH``/``MULTI`` would need two and retry under contention).

Leases are hashes ``{owner, epoch, exp}`` where ``exp`` is the *server's* clock (``TIME`` inside the
script), so hosts need no synchronised clocks. A lease key is backend-internal: read it only with
:meth:`RedisStore.current`.

High availability: with ``sentinels`` configured the client asks the sentinels for the current
primary of ``master_name`` and asks again after a connection error or a ``READONLY`` reply (the
old primary was demoted), so a Sentinel failover is followed; commands are retried for up to
``retry_ms``. Redis replication is asynchronous: ``wait_replicas: 1`` makes every write to a control
namespace (steering, leases, instances, clusters, global state, stamper epochs) block on
``WAIT 1 <wait_timeout_ms>`` so it is on a replica before the call returns. A write retried across a
failover may have been applied once already (at-least-once); the CAS/lease scripts are written so a
repeated success is harmless for their callers (they re-read on failure). Redis Cluster is not
supported (scripts touch a key and its namespace's version counter, which may be in other slots).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from nf.store import StoreConfig, split_endpoint
from nf.store import keys as keyspace
from nf.store.base import LeaseInfo, StateStore, StoreError, bump_needed

log = logging.getLogger(__name__)
T = TypeVar("T")

#: namespaces whose writes WAIT for replicas (checkpoints are periodic and re-written: not waited)
DURABLE_NAMESPACES = frozenset(
    {
        keyspace.STEERING,
        keyspace.LEASE,
        keyspace.INSTANCE,
        keyspace.CLUSTER,
        keyspace.GLOBAL,
        keyspace.STAMPER,
    }
)

_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
_BUMP = "if #KEYS > 1 then redis.call('INCR', KEYS[2]) end\n"

# KEYS: key [, version key]; ARGV: has_expected, expected, has_new, new
_CAS = """
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
else
  if (not cur) or cur ~= ARGV[2] then return 0 end
end
if ARGV[3] == '0' then
  if not cur then return 1 end
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[4])
end
""" + _BUMP + "return 1\n"

# KEYS: key [, version key]; ARGV: value, ttl_ms ('0' = none)
_PUT_IF_ABSENT = """
local ok
if ARGV[2] == '0' then ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) end
if not ok then return 0 end
""" + _BUMP + "return 1\n"

_LEASE_READ = (
    _NOW
    + """
local owner = redis.call('HGET', KEYS[1], 'owner')
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
local held = owner and owner ~= '' and exp > now
"""
)

# KEYS: lease [, version key]; ARGV: owner, ttl_ms. Returns {granted, epoch}
_ACQUIRE = (
    _LEASE_READ
    + """
if held and owner ~= ARGV[1] then return {0, epoch} end
if owner ~= ARGV[1] then epoch = epoch + 1 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'epoch', epoch, 'exp', now + tonumber(ARGV[2]))
"""
    + _BUMP
    + "return {1, epoch}\n"
)

# KEYS: lease [, version key]; ARGV: owner, expected epoch, ttl_ms
_TAKEOVER = (
    _LEASE_READ
    + """
if epoch ~= tonumber(ARGV[2]) then return {0, epoch} end
epoch = epoch + 1
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'epoch', epoch, 'exp', now + tonumber(ARGV[3]))
"""
    + _BUMP
    + "return {1, epoch}\n"
)

# KEYS: lease; ARGV: owner, epoch, ttl_ms (no version bump: holder and epoch do not change)
_RENEW = (
    _LEASE_READ
    + """
if not held or owner ~= ARGV[1] or epoch ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'exp', now + tonumber(ARGV[3]))
return 1
"""
)

# KEYS: lease [, version key]; ARGV: owner, epoch
_RELEASE = (
    _LEASE_READ
    + """
if not held or owner ~= ARGV[1] or epoch ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'exp', 0)
"""
    + _BUMP
    + "return 1\n"
)

# KEYS: lease. Returns {exists, owner, epoch, remaining_ms}
_CURRENT = (
    _LEASE_READ
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, '', 0, 0} end
if held then return {1, owner, epoch, exp - now} end
return {1, '', epoch, 0}
"""
)


def _glob_escape(prefix: str) -> str:
    out = []
    for ch in prefix:
        if ch in "*?[]\\":
            out.append("\\")
        out.append(ch)
    return "".join(out) + "*"


class RedisStore(StateStore):
    """:class:`StateStore` on one Redis primary (direct or discovered through Sentinel)."""

    backend = "redis"

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        timeout_s = config.timeout_ms / 1000.0
        retries = max(1, int(config.retry_ms / 200))
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.02), retries)
        common: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "retry": retry,
            "retry_on_error": [redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError],
            "health_check_interval": 0,
        }
        self._sentinel: Sentinel | None = None
        if config.sentinels:
            self._where = f"sentinel {config.master_name}@{','.join(config.sentinels)}"
            sentinel_kwargs: dict[str, Any] = {
                "socket_timeout": timeout_s,
                "socket_connect_timeout": timeout_s,
            }
            if config.sentinel_password:
                sentinel_kwargs["password"] = config.sentinel_password
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
                [split_endpoint(s) for s in config.sentinels], sentinel_kwargs=sentinel_kwargs, **common
            )
            self._r: redis.Redis = self._sentinel.master_for(  # type: ignore[no-untyped-call]
                config.master_name, password=config.password, db=config.db, **common
            )
        else:
            host, port = split_endpoint(config.endpoints[0])
            self._where = f"redis {host}:{port}"
            self._r = redis.Redis(host=host, port=port, password=config.password, db=config.db, **common)
        self._scripts = {
            name: self._r.register_script(src)
            for name, src in {
                "cas": _CAS,
                "pia": _PUT_IF_ABSENT,
                "acquire": _ACQUIRE,
                "takeover": _TAKEOVER,
                "renew": _RENEW,
                "release": _RELEASE,
                "current": _CURRENT,
            }.items()
        }
        self.under_replicated_writes = 0
        self._last_wait_warning = 0.0

    # ---- helpers -------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; retry connection failures for ``retry_ms`` (failover); map errors to StoreError."""
        deadline = time.monotonic() + self.config.retry_ms / 1000.0
        delay = 0.02
        while True:
            try:
                return fn()
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as exc:
                if time.monotonic() >= deadline:
                    raise StoreError(f"{self._where}: {what}: unreachable: {exc}") from exc
                log.debug("%s: %s failed (%s), retrying", self._where, what, exc)
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except redis.RedisError as exc:
                raise StoreError(f"{self._where}: {what}: {exc}") from exc

    def _durable(self, *keys: str) -> None:
        if self.config.wait_replicas <= 0:
            return
        if not any(keyspace.namespace_of(k) in DURABLE_NAMESPACES for k in keys):
            return
        n, timeout = self.config.wait_replicas, self.config.wait_timeout_ms
        acked = int(self._call("WAIT", lambda: self._r.wait(n, timeout)))
        if acked < self.config.wait_replicas:
            self.under_replicated_writes += 1
            now = time.monotonic()
            if now - self._last_wait_warning > 5.0:
                self._last_wait_warning = now
                log.warning(
                    "%s: WAIT %d acknowledged by %d replica(s) only (write kept; %d under-replicated so far)",
                    self._where, self.config.wait_replicas, acked, self.under_replicated_writes,
                )

    @staticmethod
    def _keys(key: str) -> list[str]:
        ver = bump_needed(key)
        return [key] if ver is None else [key, ver]

    def _mutate(self, keys_: list[str], fn: Callable[[Any], None]) -> Any:
        """Apply ``fn(pipeline)`` to ``keys_`` in one MULTI with the version bumps of watched namespaces;
        returns the reply of the first queued command."""
        bumps = sorted({v for k in keys_ if (v := bump_needed(k)) is not None})

        def run() -> Any:
            pipe = self._r.pipeline(transaction=True)
            fn(pipe)
            for b in bumps:
                pipe.incr(b)
            return pipe.execute()[0]

        return self._call("write", run)

    # ---- plain key/value -----------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        return cast("bytes | None", self._call("GET", lambda: self._r.get(key)))

    def put(self, key: str, value: bytes, ttl_ms: int | None = None) -> None:
        self._mutate([key], lambda p: p.set(key, value, px=ttl_ms if ttl_ms else None))
        self._durable(key)

    def delete(self, key: str) -> bool:
        existed = int(self._mutate([key], lambda p: p.delete(key)))
        self._durable(key)
        return existed > 0

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        ks = list(keys)
        out: dict[str, bytes] = {}
        for i in range(0, len(ks), 1000):
            chunk = ks[i : i + 1000]
            vals = self._call("MGET", lambda c=chunk: self._r.mget(c))  # type: ignore[misc]
            out.update({k: cast(bytes, v) for k, v in zip(chunk, vals, strict=True) if v is not None})
        return out

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        ks = list(items)
        for i in range(0, len(ks), 1000):
            chunk = {k: items[k] for k in ks[i : i + 1000]}
            self._mutate(list(chunk), lambda p, c=chunk: p.mset(c))  # type: ignore[misc]
        self._durable(*ks)

    def delete_many(self, keys: Iterable[str]) -> int:
        ks = list(keys)
        n = 0
        for i in range(0, len(ks), 1000):
            chunk = ks[i : i + 1000]
            n += int(self._mutate(chunk, lambda p, c=chunk: p.delete(*c)))  # type: ignore[misc]
        if ks:
            self._durable(*ks)
        return n

    def scan(self, prefix: str) -> dict[str, bytes]:
        pattern = _glob_escape(prefix)
        names: list[str] = []

        def run() -> None:
            names.clear()
            for k in self._r.scan_iter(match=pattern, count=1000):
                names.append(k.decode() if isinstance(k, bytes) else str(k))

        self._call("SCAN", run)
        if prefix.startswith(keyspace.LEASE + "/"):
            return {n: v for n in names if (v := self._lease_bytes(n)) is not None}
        return self.get_many(names)

    def _lease_bytes(self, lease: str) -> bytes | None:
        info = self.current(lease)
        if info is None:
            return None
        return f"{info.owner or ''} {info.epoch} {info.remaining_ms}".encode()

    # ---- atomic single-key updates -------------------------------------------------------------
    @staticmethod
    def _cas_args(expected: bytes | None, new: bytes | None) -> list[str | bytes]:
        return ["0" if expected is None else "1", expected or b"", "0" if new is None else "1", new or b""]

    def compare_and_set(self, key: str, expected: bytes | None, new: bytes | None) -> bool:
        args = self._cas_args(expected, new)
        ok = self._call("CAS", lambda: self._scripts["cas"](keys=self._keys(key), args=args))
        if ok:
            self._durable(key)
        return bool(ok)

    def compare_and_set_many(self, items: Sequence[tuple[str, bytes | None, bytes | None]]) -> list[bool]:
        """Every CAS script in one pipeline (one round trip, each script atomic on its key), then
        one WAIT for the replicas covering all of them."""
        if not items:
            return []

        def run() -> list[Any]:
            pipe = self._r.pipeline(transaction=False)
            for key, expected, new in items:
                self._scripts["cas"](keys=self._keys(key), args=self._cas_args(expected, new), client=pipe)
            return list(pipe.execute())

        oks = [bool(r) for r in self._call(f"CAS x{len(items)}", run)]
        done = [k for (k, _e, _n), ok in zip(items, oks, strict=True) if ok]
        if done:
            self._durable(*done)
        return oks

    def put_if_absent(self, key: str, value: bytes, ttl_ms: int | None = None) -> bool:
        args: list[bytes | int] = [value, ttl_ms or 0]
        ok = self._call("SET NX", lambda: self._scripts["pia"](keys=self._keys(key), args=args))
        if ok:
            self._durable(key)
        return bool(ok)

    def increment(self, key: str, delta: int = 1) -> int:
        ver = bump_needed(key)
        if ver is None:
            val = int(self._call("INCRBY", lambda: self._r.incrby(key, delta)))
        else:

            def run() -> int:
                pipe = self._r.pipeline(transaction=True)
                pipe.incrby(key, delta)
                pipe.incr(ver)
                return int(pipe.execute()[0])

            val = self._call("INCRBY", run)
        self._durable(key)
        return val

    # ---- leases ----------------------------------------------------------------------------------
    def _lease_call(self, name: str, lease: str, args: list[Any], bump: bool = True) -> list[Any]:
        if keyspace.namespace_of(lease) != keyspace.LEASE:
            raise ValueError(f"{lease!r} is not a lease key (build it with nf.store.keys.lease)")
        keys_ = self._keys(lease) if bump else [lease]
        res = self._call(name, lambda: self._scripts[name](keys=keys_, args=args))
        return list(res) if isinstance(res, list) else [res]

    def acquire(self, lease: str, owner: str, ttl_ms: int) -> int | None:
        granted, epoch = self._lease_call("acquire", lease, [owner, ttl_ms])
        if granted:
            self._durable(lease)
            return int(epoch)
        return None

    def takeover(self, lease: str, owner: str, expected_epoch: int, ttl_ms: int) -> int | None:
        granted, epoch = self._lease_call("takeover", lease, [owner, expected_epoch, ttl_ms])
        if granted:
            self._durable(lease)
            return int(epoch)
        return None

    def renew(self, lease: str, owner: str, epoch: int, ttl_ms: int) -> bool:
        (ok,) = self._lease_call("renew", lease, [owner, epoch, ttl_ms], bump=False)
        return bool(ok)

    def release(self, lease: str, owner: str, epoch: int) -> bool:
        (ok,) = self._lease_call("release", lease, [owner, epoch])
        if ok:
            self._durable(lease)
        return bool(ok)

    def current(self, lease: str) -> LeaseInfo | None:
        exists, owner, epoch, remaining = self._lease_call("current", lease, [], bump=False)
        if not exists:
            return None
        o = owner.decode() if isinstance(owner, bytes) else str(owner)
        return LeaseInfo(owner=o or None, epoch=int(epoch), remaining_ms=int(remaining))

    # ---- change notification ---------------------------------------------------------------------
    def version(self, prefix: str) -> int:
        raw = self._call("GET", lambda: self._r.get(keyspace.version_key(keyspace.namespace_of(prefix))))
        return int(raw) if raw is not None else 0

    # ---- lifecycle -------------------------------------------------------------------------------
    def ping(self) -> float:
        t0 = time.perf_counter()
        self._call("PING", self._r.ping)
        return (time.perf_counter() - t0) * 1000.0

    def primary_address(self) -> tuple[str, int]:
        """Address of the primary currently in use (via Sentinel when configured)."""
        if self._sentinel is not None:
            host, port = self._call(
                "SENTINEL get-master-addr", lambda: self._sentinel.discover_master(self.config.master_name)  # type: ignore[union-attr]
            )
            return str(host), int(port)
        return split_endpoint(self.config.endpoints[0])

    def close(self) -> None:
        self._r.close()
        if self._sentinel is not None:
            for s in self._sentinel.sentinels:
                s.close()
