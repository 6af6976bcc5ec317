"""A Sentinel failover of the Redis primary is followed by the store client, and WAITed writes survive it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nf.store import keys as keyspace
from nf.store import open_store
from nf.store.localredis import sentinel_set
from nf.store.redis_store import RedisStore


@pytest.mark.slow
def test_primary_crash_is_followed_and_waited_writes_survive(tmp_path: Path) -> None:
    with sentinel_set(tmp_path, replicas=1, sentinels=3) as ss:
        store = open_store(ss.config(wait_replicas=1))
        assert isinstance(store, RedisStore)
        try:
            old_primary = store.primary_address()
            assert old_primary == (ss.primary.bind, ss.primary.port)
            epoch = store.acquire(keyspace.lease("g1"), "nf-a", ttl_ms=60_000)
            for i in range(100):
                store.put(keyspace.steering("svc", i), f"entry{i}".encode())
            assert store.increment(keyspace.global_key("ctr"), 100) == 100
            assert store.under_replicated_writes == 0

            ss.primary.kill()  # SIGKILL: no clean hand-over

            # the next commands block (retrying) until the sentinels promoted the replica
            assert store.increment(keyspace.global_key("ctr"), 1) == 101
            new_primary = store.primary_address()
            assert new_primary == (ss.replicas[0].bind, ss.replicas[0].port)
            assert store.scan(keyspace.steering_prefix("svc")) == {
                f"steering/svc/{i}": f"entry{i}".encode() for i in range(100)
            }
            info = store.current(keyspace.lease("g1"))
            assert info is not None and info.owner == "nf-a" and info.epoch == epoch
            assert store.takeover(keyspace.lease("g1"), "nf-b", epoch or 0, ttl_ms=1000) == (epoch or 0) + 1
        finally:
            store.close()
