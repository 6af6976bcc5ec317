"""A packet waits at most ``reorder_timeout_ms`` in all for the packets before it, however many
gaps are in front of it: a flow losing packets upstream (the lab's ingress OVS in overload) must
not crawl at one skipped gap per timeout. Drives one worker directly."""

from __future__ import annotations

import time

from datagrams import stamped_udp

from nf import shim
from nf.engine import Worker
from nf.flow import group_of_key, wire_key
from nf.instance_config import EngineConfig, InstanceConfig

GROUPS = 16
MS = 1_000_000
SPORT = 40001  # not test_handover_freeze's flow


def _worker(port: int) -> tuple[Worker, int]:
    cfg = InstanceConfig(name="gt", data_ip="127.0.0.1", data_port=port, dup_port=port + 100,
                         repl_port=port + 200, flow_groups=GROUPS,
                         engine=EngineConfig(batch_size=1, reorder_timeout_ms=50.0))
    key = wire_key(stamped_udp(0, 0, SPORT), shim.SHIM_LEN)
    assert key is not None
    return Worker(cfg, 0, None), group_of_key(key[0], GROUPS)


def test_all_overdue_gaps_go_in_one_timeout() -> None:
    w, group = _worker(47700)
    try:
        t0 = time.time_ns()
        w._on_datagram(stamped_udp(0, group, SPORT), t0, False)
        for seq in (2, 4, 6):  # 1, 3 and 5 lost upstream: three gaps, all behind packets of t0
            w._on_datagram(stamped_udp(seq, group, SPORT), t0, False)
        assert w.c["processed"] == 1
        w._check_gaps(t0 + 10 * MS)  # not yet overdue
        assert w.c["processed"] == 1 and w.c["gaps_skipped"] == 0
        w._check_gaps(t0 + 51 * MS)  # every waiting packet has waited the timeout
        assert w.c["processed"] == 4 and w.c["gaps_skipped"] == 3
    finally:
        w._close()


def test_a_later_packet_still_gets_its_full_wait() -> None:
    w, group = _worker(47800)
    try:
        t0 = time.time_ns()
        w._on_datagram(stamped_udp(0, group, SPORT), t0, False)
        w._on_datagram(stamped_udp(2, group, SPORT), t0, False)  # gap at 1, waiting since t0
        w._on_datagram(stamped_udp(4, group, SPORT), t0 + 40 * MS, False)  # gap at 3, waiting since t0 + 40
        w._check_gaps(t0 + 51 * MS)
        assert w.c["processed"] == 2 and w.c["gaps_skipped"] == 1  # 2 went; 4 waits on
        w._on_datagram(stamped_udp(3, group, SPORT), t0 + 60 * MS, False)  # 3 was only late, not lost
        assert w.c["processed"] == 4 and w.c["gaps_skipped"] == 1
    finally:
        w._close()
