"""Global state on a real Redis: batched global counters are exact; NAT pool claims never overlap."""

from __future__ import annotations

import threading

import pytest

from nf.globalstate import GlobalCounter, PortPoolAdmin, cas_update
from nf.store import StoreConfig, open_store
from nf.store import keys as keyspace


def test_global_counter_pushes_every_n_and_is_exact_across_workers(redis_config: StoreConfig) -> None:
    def worker() -> None:
        with open_store(redis_config) as s:
            c = GlobalCounter(s, "pkts", update_every=10)
            for _ in range(1005):
                c.add()
            assert c.updates == 100  # 1000 packets -> 100 global updates, 5 pending
            c.flush()
            assert c.updates == 101

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open_store(redis_config) as s:
        assert GlobalCounter(s, "pkts").value() == 4 * 1005


def test_update_every_zero_pushes_only_on_flush(redis_config: StoreConfig) -> None:
    with open_store(redis_config) as s:
        c = GlobalCounter(s, "lazy", update_every=0)
        c.add(7)
        assert c.value() == 0
        assert c.flush() == 7 and c.updates == 1
    with pytest.raises(ValueError, match="update_every"):
        GlobalCounter(s, "bad", update_every=-1)


def test_pool_claims_are_disjoint_and_bounded(redis_config: StoreConfig) -> None:
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer() -> None:
        with open_store(redis_config) as s:
            admin = PortPoolAdmin(s, "p1", 40000, 40999, flow_groups=8)
            while True:
                ports = admin.claim(3, block=4)
                if not ports:
                    return
                with lock:
                    claimed.extend(ports)

    ts = [threading.Thread(target=claimer) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open_store(redis_config) as s:
        admin = PortPoolAdmin(s, "p1", 40000, 40999, flow_groups=8)
        cap = admin.capacity(3)
        assert cap == 125
        assert sorted(claimed) == [40000 + 3 + 8 * i for i in range(cap)]  # every port once, all in group 3
        usage = {u.group: u for u in admin.usage()}
        assert usage[3].claimed == cap and usage[0].claimed == 0
        assert admin.reset() == 1
        assert admin.usage()[3].claimed == 0


def test_cas_update_writes_only_changes(redis_config: StoreConfig) -> None:
    with open_store(redis_config) as s:
        key = keyspace.global_key("cfg")
        assert cas_update(s, key, lambda cur: b"1" if cur is None else cur) == b"1"
        v = s.version(key)
        assert cas_update(s, key, lambda cur: cur) == b"1"
        assert s.version(key) == v
        assert cas_update(s, key, lambda cur: None) is None
        assert s.get(key) is None
