"""A flow group being handed over is processed nowhere until the target owns it.

Found on the lab (a CPU-starved source under a load shift): the source's socket overflowed, its
flows had sequence gaps, and while a handover was in progress the reorder timeout skipped those
gaps and processed the buffered packets into a batch *after* the handover's last one. The source
released them, and the target, whose state starts at the handover's batch, replayed the same
packets from its log: 888 duplicates and 398 reordered packets at the sink. This test drives one
worker directly: a flow with a gap, then a handover, then the reorder timeout."""

from __future__ import annotations

import time

from datagrams import stamped_udp

from nf import shim
from nf.engine import Worker
from nf.flow import group_of_key, wire_key
from nf.instance_config import EngineConfig, InstanceConfig

GROUPS = 16


def _replica_worker(name: str, port: int, engine: EngineConfig) -> tuple[Worker, int]:
    """A secondary's worker 0 (data/dup/repl ports ``port``, +100, +200) and the flow group of the
    test flow, which it logs as a replica until it adopts the group."""
    cfg = InstanceConfig(name=name, role="secondary", data_ip="127.0.0.1", data_port=port,
                         dup_port=port + 100, repl_port=port + 200, flow_groups=GROUPS, engine=engine)
    key = wire_key(stamped_udp(0, 0), shim.SHIM_LEN)
    assert key is not None
    return Worker(cfg, 0, None), group_of_key(key[0], GROUPS)


def test_reorder_timeout_does_not_process_a_frozen_group() -> None:
    cfg = InstanceConfig(name="hf", data_ip="127.0.0.1", data_port=47100, dup_port=47200,
                         repl_port=47300, flow_groups=GROUPS,
                         engine=EngineConfig(batch_size=1, reorder_timeout_ms=5.0))
    probe = stamped_udp(0, 0)
    key = wire_key(probe, shim.SHIM_LEN)
    assert key is not None
    group = group_of_key(key[0], GROUPS)
    w = Worker(cfg, 0, None)
    try:
        w._on_datagram(stamped_udp(0, group), time.time_ns(), False)
        w._on_datagram(stamped_udp(2, group), time.time_ns(), False)  # seq 1 lost upstream: a gap
        assert w.c["processed"] == 1 and w.waiting
        w.start_handover({group}, to="127.0.0.1:47400", dup_to="127.0.0.1:47500")
        w._check_gaps(time.time_ns() + 10**9)  # the gap is long overdue
        w._drain_input_q()
        assert w.c["processed"] == 1, "a frozen group's buffered packet was processed at the source"
        fs = w.seqs[key[0]]
        assert (1, 2) in fs.pending  # still here, to be forwarded to the new owner
    finally:
        w._close()


def test_target_waits_for_the_sources_stragglers() -> None:
    """After a handover the source forwards packets it still receives; on a loaded host one can
    arrive after the reorder timeout. The target keeps an adopted flow's gap for
    ``handover_grace_ms`` instead of giving the packet up (CI lost one this way under load)."""
    engine = EngineConfig(batch_size=1, reorder_timeout_ms=5.0, handover_grace_ms=500.0)
    w, group = _replica_worker("hg", 47600, engine)
    try:
        w._on_datagram(stamped_udp(0, group), time.time_ns(), True)  # logged as a replica
        w._adopt({group}, None, w.ecfg.handover_grace_ms)  # what HANDOVER does
        assert w.c["processed"] == 1
        w._on_datagram(stamped_udp(2, group), time.time_ns(), True)  # forwarded: 1 is still on its way
        w._check_gaps(time.time_ns() + 100_000_000)  # 100 ms: past the reorder timeout
        assert w.c["gaps_skipped"] == 0
        w._on_datagram(stamped_udp(1, group), time.time_ns(), True)  # the straggler
        assert w.c["processed"] == 3 and w.c["gaps_skipped"] == 0
    finally:
        w._close()


def test_target_holds_its_first_output_after_a_handover() -> None:
    """The source's last released packets may still be queued in its host's switch when the target
    takes over; the target's output waits ``handover_release_hold_ms`` so they reach the sink first
    (the lab's migration test saw 5 reordered packets at the sink without it)."""
    w, group = _replica_worker("hh", 47610, EngineConfig(batch_size=1, handover_release_hold_ms=50.0))
    try:
        w._on_datagram(stamped_udp(0, group), time.time_ns(), True)  # logged as a replica
        w.hold_release(w.ecfg.handover_release_hold_ms)  # what HANDOVER does, then adopt
        w._adopt({group}, None, w.ecfg.handover_grace_ms)
        w._on_datagram(stamped_udp(1, group), time.time_ns(), False)
        assert w.c["processed"] == 2 and w.c["released"] == 0  # processed, output held
        assert 0 < w._timeout_ms() <= 50  # the loop wakes up when the hold ends
        time.sleep(0.06)
        w._timers()
        assert w.c["released"] == 2 and w.release_hold_until == 0
    finally:
        w._close()
