"""The StateStore contract, run against every reachable backend.

Redis (standalone and through Sentinel) always runs: the fixtures start real servers. Hazelcast runs
when ``DEFT_HAZELCAST_MEMBERS`` (``host:port[,host:port]``) names a reachable member; otherwise its
cases skip and say so.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from nf.store import PrefixWatcher, StateStore, StoreConfig, open_store
from nf.store import keys as keyspace
from nf.store.localredis import SentinelSet
from nf.store.redis_store import RedisStore

HZ_ENV = "DEFT_HAZELCAST_MEMBERS"


def _hazelcast_members() -> tuple[str, ...]:
    raw = os.environ.get(HZ_ENV, "").strip()
    if not raw:
        pytest.skip(f"Hazelcast: no member configured (set {HZ_ENV}=host:port to run these cases)")
    members = tuple(m.strip() for m in raw.split(",") if m.strip())
    for m in members:
        host, _, port = m.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return members
        except OSError:
            continue
    pytest.skip(f"Hazelcast: no member reachable at {HZ_ENV}={raw}")


@pytest.fixture(params=["redis", "redis-sentinel", "hazelcast"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    kind = request.param
    if kind == "redis":
        cfg: StoreConfig = request.getfixturevalue("redis_config")
        s = open_store(cfg)
    elif kind == "redis-sentinel":
        ss: SentinelSet = request.getfixturevalue("redis_sentinel_set")
        s = open_store(ss.config(wait_replicas=1))
        assert isinstance(s, RedisStore)
        host, port = s.primary_address()
        import redis  # noqa: PLC0415

        with redis.Redis(host=host, port=port) as r:
            r.flushall()
    else:
        members = _hazelcast_members()
        s = open_store(StoreConfig(backend="hazelcast", endpoints=members, map_name=f"t-{uuid.uuid4().hex}"))
    try:
        yield s
    finally:
        if kind == "hazelcast":
            s._map.destroy()  # type: ignore[attr-defined]
        s.close()


def _eventually(pred: Callable[[], object], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def test_get_put_delete_bytes(store: StateStore) -> None:
    key = keyspace.global_key("blob")
    assert store.get(key) is None
    value = bytes(range(256)) + b"\x00\xff"
    store.put(key, value)
    assert store.get(key) == value
    assert store.delete(key) is True
    assert store.delete(key) is False
    assert store.get(key) is None


def test_put_with_ttl_expires(store: StateStore) -> None:
    key = keyspace.global_key("ephemeral")
    store.put(key, b"x", ttl_ms=200)
    assert store.get(key) == b"x"
    assert _eventually(lambda: store.get(key) is None)


def test_batch_operations(store: StateStore) -> None:
    items = {
        keyspace.checkpoint("nf1", keyspace.flow_id(17, "10.0.0.1", p, "10.0.0.2", 80)): str(p).encode()
        for p in range(2500)
    }
    store.put_many(items)
    got = store.get_many([*items, keyspace.checkpoint("nf1", "missing")])
    assert got == items
    assert store.delete_many(list(items)[:1000]) == 1000
    assert len(store.scan(keyspace.checkpoint_prefix("nf1"))) == 1500


def test_scan_prefix_is_exact(store: StateStore) -> None:
    store.put(keyspace.steering("svc", "g[1]"), b"a")
    store.put(keyspace.steering("svc", "g2"), b"b")
    store.put(keyspace.steering("svc2", "g1"), b"c")
    store.put(keyspace.global_key("svc"), b"d")
    assert store.scan(keyspace.steering_prefix("svc")) == {"steering/svc/g[1]": b"a", "steering/svc/g2": b"b"}
    assert set(store.scan(keyspace.steering_prefix())) == {
        "steering/svc/g[1]",
        "steering/svc/g2",
        "steering/svc2/g1",
    }
    assert store.scan("steering/nothing/") == {}


def test_compare_and_set(store: StateStore) -> None:
    key = keyspace.global_key("cas")
    assert store.compare_and_set(key, b"x", b"y") is False  # absent, expected a value
    assert store.compare_and_set(key, None, b"v1") is True
    assert store.compare_and_set(key, None, b"v1") is False  # present now
    assert store.compare_and_set(key, b"wrong", b"v2") is False
    assert store.get(key) == b"v1"
    assert store.compare_and_set(key, b"v1", b"v2") is True
    assert store.compare_and_set(key, b"v2", None) is True  # delete
    assert store.get(key) is None


def test_compare_and_set_many(store: StateStore) -> None:
    a, b, c, d = (keyspace.steering("svc", g) for g in "abcd")
    store.put(a, b"a1")
    store.put(b, b"b1")
    store.put(d, b"d1")
    v0 = store.version(keyspace.steering_prefix("svc"))
    oks = store.compare_and_set_many([
        (a, b"a1", b"a2"),   # replaced
        (b, b"stale", b"b2"),  # lost: another writer changed it
        (c, None, b"c1"),    # created
        (d, b"d1", None),    # deleted
    ])
    assert oks == [True, False, True, True]
    assert store.get_many([a, b, c, d]) == {a: b"a2", b: b"b1", c: b"c1"}
    assert store.version(keyspace.steering_prefix("svc")) > v0  # watchers see the batch
    assert store.compare_and_set_many([]) == []


def test_cas_is_atomic_under_contention(store: StateStore) -> None:
    key = keyspace.global_key("cas-counter")
    per_thread, threads = 100, 4

    def worker() -> None:
        done = 0
        while done < per_thread:
            cur = store.get(key)
            new = str(int(cur or b"0") + 1).encode()
            if store.compare_and_set(key, cur, new):
                done += 1

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert store.get(key) == str(per_thread * threads).encode()


def test_put_if_absent(store: StateStore) -> None:
    key = keyspace.global_key("natpool", "p1", 40000)
    assert store.put_if_absent(key, b"flowA") is True
    assert store.put_if_absent(key, b"flowB") is False
    assert store.get(key) == b"flowA"


def test_increment_exact_under_contention(store: StateStore) -> None:
    key = keyspace.global_key("packets")
    assert store.increment(key) == 1
    assert store.increment(key, 9) == 10
    assert store.increment(key, -3) == 7

    def worker() -> None:
        for _ in range(200):
            store.increment(key)

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert store.get(key) == b"807"


def test_lease_lifecycle_and_fencing(store: StateStore) -> None:
    lease = keyspace.lease("fw-a")
    assert store.current(lease) is None
    e1 = store.acquire(lease, "nf-a", ttl_ms=300)
    assert e1 == 1
    assert store.acquire(lease, "nf-b", ttl_ms=300) is None
    assert store.acquire(lease, "nf-a", ttl_ms=300) == e1  # re-acquire by the holder keeps the epoch
    assert store.renew(lease, "nf-a", e1, ttl_ms=300) is True
    info = store.current(lease)
    assert info is not None and info.owner == "nf-a" and info.epoch == e1 and info.remaining_ms > 0
    # the holder stops renewing: the lease expires; taken back by the same holder: same epoch
    assert _eventually(lambda: not store.current(lease).held)  # type: ignore[union-attr]
    assert store.renew(lease, "nf-a", e1, ttl_ms=300) is False  # expired: renew refused
    assert store.acquire(lease, "nf-a", ttl_ms=300) == e1
    assert _eventually(lambda: not store.current(lease).held)  # type: ignore[union-attr]
    # ... taken by someone else: a new epoch
    e2 = store.acquire(lease, "nf-b", ttl_ms=5000)
    assert e2 == e1 + 1
    # the old holder is fenced: it can neither renew nor release
    assert store.renew(lease, "nf-a", e1, ttl_ms=300) is False
    assert store.release(lease, "nf-a", e1) is False
    assert store.release(lease, "nf-b", e2) is True
    info = store.current(lease)
    assert info is not None and info.owner is None and info.epoch == e2
    assert store.acquire(lease, "nf-a", ttl_ms=300) == e2 + 1


def test_takeover_has_exactly_one_winner(store: StateStore) -> None:
    lease = keyspace.lease("nat-b")
    e1 = store.acquire(lease, "primary", ttl_ms=60_000)
    assert e1 is not None
    results: list[int | None] = []
    lock = threading.Lock()

    def racer(name: str) -> None:
        r = store.takeover(lease, name, e1, ttl_ms=60_000)
        with lock:
            results.append(r)

    ts = [threading.Thread(target=racer, args=(f"sec{i}",)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(results, key=lambda x: x or 0) == [None, None, None, e1 + 1]
    info = store.current(lease)
    assert info is not None and info.owner is not None
    assert info.owner.startswith("sec") and info.epoch == e1 + 1
    assert store.renew(lease, "primary", e1, ttl_ms=1000) is False  # old primary fenced
    assert store.takeover(lease, "late", e1, ttl_ms=1000) is None  # stale expected epoch


def test_version_and_poll(store: StateStore) -> None:
    prefix = keyspace.steering_prefix("svc")
    v0, entries = store.poll(prefix, -1)
    assert entries == {}
    assert store.poll(prefix, v0) == (v0, None)
    store.put(keyspace.steering("svc", "1"), b"e1")
    v1, entries = store.poll(prefix, v0)
    assert v1 > v0 and entries == {"steering/svc/1": b"e1"}
    store.put(keyspace.checkpoint("nf1", "f"), b"c")  # unwatched namespace: no steering version change
    store.increment(keyspace.global_key("n"))
    assert store.poll(prefix, v1) == (v1, None)
    assert store.compare_and_set(keyspace.steering("svc", "1"), b"e1", b"e2")
    assert store.version(prefix) > v1
    store.delete(keyspace.steering("svc", "1"))
    _, entries = store.poll(prefix, v1)
    assert entries == {}


def test_prefix_watcher_delivers_changes(store: StateStore) -> None:
    seen: list[dict[str, bytes]] = []
    with PrefixWatcher(store, keyspace.steering_prefix("w"), seen.append, interval_ms=20):
        assert _eventually(lambda: len(seen) >= 1)
        store.put(keyspace.steering("w", "g"), b"p=nf1")
        assert _eventually(lambda: seen[-1] == {"steering/w/g": b"p=nf1"})
        store.put(keyspace.steering("w", "g"), b"p=nf2")
        assert _eventually(lambda: seen[-1] == {"steering/w/g": b"p=nf2"})


def test_ping(store: StateStore) -> None:
    assert store.ping() >= 0.0
