"""The NF engine: one worker process of an NF instance (DEFT's primary/secondary NF, multithreaded).

Packet path inside a worker (one thread, one ``poll`` loop, no locks)::

    data socket (stamped input) ──┐                        ┌─> DELTA to every replica ─┐
    dup socket (replica input) ───┼─> shim + 5-tuple ─> per-flow order ─> NF logic ─> batch
                                  │   (malformed: count)   (next expected (epoch, seq),   │
                                  │                         reorder buffer + timeout,     │
                                  │                         duplicates dropped once)      │
                                  └─ not owned: replica log (discarded up to committed) ─ ┘
                 output buffer (closed batches) ── released (raw IP socket) when every replica ACKed

* Sharding: the stamper sends flow group ``g`` to ``data_port + g % workers``; each worker is a
  process with its own sockets, flows and replication channels (to the same-index worker of each
  replica), so throughput grows with cores and no state is shared between workers.
* Input buffer: while ``max_inflight`` batches wait for acks, processing pauses and input queues up
  to ``buffer_size x batch_size`` packets; beyond that it is tail-dropped and counted (DEFT).
* Batching: a batch closes after ``batch_size`` processed packets or ``batch_timeout_ms`` after its
  first packet. Its DELTA (changed flow states + per-flow next sequence) goes to every replica;
  the batch's output packets leave only when every replica acknowledged it (output commit).
  Batches are pipelined: processing continues while earlier batches await their ack.
* Replica role: input of flows this worker does not own is logged per flow; deltas install the
  primary's state and discard input the primary committed. ``promote`` makes the logged flows
  owned and replays their uncommitted input in order; ``handover`` (migration) does the same for a
  set of flow groups at a batch boundary, cooperatively with the source.
* Fencing: every replication message carries the sender's lease epoch; a replica answers FENCED to
  an epoch older than the newest it knows, and a primary that receives FENCED stops releasing.

The instance process (:mod:`nf.instance`) starts the workers and relays control commands to them
over a pipe; :mod:`nf.control` documents the commands.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from nf import burst as burst_io
from nf import flow as flowmod
from nf import shim
from nf.instance_config import InstanceConfig, parse_addr
from nf.metrics import Metrics, bucket_of
from nf.neigh import NeighbourWarmer
from nf.replication import protocol
from nf.replication.primary import ReplicaChannel, SnapshotStream
from nf.replication.replica import InboundChannel
from nf.types import NFContext, NFLogic, create

log = logging.getLogger(__name__)

SEQ_REMOVED = 0xFFFFFFFF  # epoch value of a SEQ entry meaning "flow removed"
HANDOVER_TIMEOUT_NS = 20_000_000_000  # a target that does not take over within 20 s: abort
_SHIM = shim.SHIM
_TS = struct.Struct("!Q")  # the shim's ingress timestamp at offset 24
_wire_key = flowmod.wire_key
_recv_burst = burst_io.recv_burst
_send_burst = burst_io.send_burst
_time_ns = time.time_ns
_SHIM_LEN = shim.SHIM_LEN
_MAGIC = shim.MAGIC
_MIN_DGRAM = shim.SHIM_LEN + 20
_WCACHE_MAX = 1 << 18  # entries per protocol in the flow-key cache (cleared when full)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
#: getsockopt(SOL_SOCKET, SO_MEMINFO): the socket's memory counters (linux/sock_diag.h); the 9th
#: (SK_MEMINFO_DROPS) counts datagrams dropped on a full receive buffer
SO_MEMINFO = 55
SK_MEMINFO_DROPS = 8
_MEMINFO = struct.Struct("9I")


class FlowSeq:
    """Ordering state of one wire flow: next expected (epoch, seq), reorder buffer, ownership."""

    __slots__ = ("epoch", "gap_since", "group", "hold_until", "last", "lease", "next", "owned", "pending")

    def __init__(self, epoch: int, group: int, owned: bool, lease: str = "") -> None:
        self.epoch = epoch
        self.next = 0
        self.group = group
        self.owned = owned
        self.lease = lease
        #: (epoch, seq) -> (datagram, rx_ns, forward)
        self.pending: dict[tuple[int, int], tuple[bytes, int, bool]] = {}
        self.gap_since = 0
        #: no gap of this flow is given up before this time (ns): handover stragglers may be late
        self.hold_until = 0
        self.last = 0  # rx time (ns) of the flow's latest packet (idle expiry)


@dataclass
class Batch:
    """A closed batch waiting in the output buffer for its acks."""

    seq: int
    outs: list[bytes]
    ts: list[int]
    n: int
    sum_tob: int
    close_ns: int


@dataclass
class PendingOp:
    """A control command that completes later (handover, drain)."""

    kind: str
    args: dict[str, Any]
    req: int = 0
    batch_seq: int = 0
    channel: ReplicaChannel | None = None
    sent: bool = False
    done: bool = False
    deadline_ns: int = 0
    result: dict[str, Any] = field(default_factory=dict)


class Worker:
    """One worker process; see the module docstring."""

    def __init__(self, cfg: InstanceConfig, idx: int, ctl: Connection | None, store: Any = None,
                 progress: Any = None) -> None:
        self.cfg = cfg
        self.ecfg = cfg.engine
        self.idx = idx
        self.ctl = ctl
        self.store = store
        #: shared array (``multiprocessing.RawArray('d')``, one slot per worker) where the loop stamps
        #: ``time.monotonic()`` each iteration: the instance's ``ping`` tells a busy worker (recent
        #: stamp, answers slowly) from a hung one (old stamp) without queuing behind its packets
        self.progress = progress
        self.m = Metrics()
        self.c = self.m.c
        self.role = cfg.role
        self.lease = cfg.lease_name
        self.epoch = cfg.epoch
        self.known_epoch: dict[str, int] = {self.lease: cfg.epoch}
        self.fenced = False
        #: no output leaves before this time (ns; 0 = none): set when a handover hands us flows
        self.release_hold_until = 0
        self.draining = False
        self.running = True
        self.nf: NFLogic = create(cfg.nf.type, NFContext(cfg.nf.section(), store, cfg.flow_groups,
                                                         cfg.name, idx))
        self.seqs: dict[bytes, FlowSeq] = {}
        self.waiting: set[bytes] = set()  # owned flows with a non-empty reorder buffer
        self.dirty_seq: set[bytes] = set()
        self.removed_seq: set[bytes] = set()
        self.removed_state: set[bytes] = set()
        self.replica_of: dict[bytes, str] = {}  # state key -> lease it is a replica of
        self.log_len = 0  # replica-logged packets
        self.moved: dict[int, tuple[str, int]] = {}  # group -> new owner's dup address
        self.frozen: set[int] = set()  # groups being handed over
        self.frozen_q: list[bytes] = []
        # batch under construction
        self.batch_outs: list[bytes] = []
        self.batch_ts: list[int] = []
        self.batch_n = 0
        self.batch_sum_tob = 0
        self.batch_open_ns = 0
        self.batch_size = self.ecfg.batch_size
        self.b_in = self.b_path = self.b_proc = 0  # ns sums of the open batch
        self.batch_seq = 0
        self.inflight: deque[Batch] = deque()
        self.released_seq = 0  # highest batch whose output was sent
        self.sent_released = 0  # highest released_seq told to the replicas
        #: replica side: per lease, deltas acknowledged but not applied until the primary
        #: reports them released (see nf.replication.protocol, "Why released")
        self.unapplied: dict[str, deque[tuple[int, protocol.FlowDelta]]] = {}
        #: replica side: per lease, the state keys a snapshot being received has installed so far;
        #: what the lease held before and the snapshot does not re-send is dropped at its LAST chunk
        self.snap_seen: dict[str, set[bytes]] = {}
        self.out_len = 0
        self.input_q: deque[tuple[bytes, int, bool]] = deque()
        self.input_cap = self.ecfg.buffer_size * self.ecfg.batch_size
        self.channels: list[ReplicaChannel] = []
        self.inbound: dict[int, InboundChannel] = {}
        self.ops: list[PendingOp] = []
        self._req = 0
        #: IP protocol -> (src ip, dst ip, sport, dport bytes) -> (canonical key, forward)
        self._wcache: dict[int, dict[bytes, tuple[bytes, bool]]] = {6: {}, 17: {}}
        self._last_gap_check = 0
        self._last_store_check = 0
        self._idle_ns = int(self.ecfg.flow_idle_timeout_s * 1e9)
        self._last_sweep = 0
        #: wire keys expired in the last two sweeps (a returning flow continues at its seq)
        self.expired: dict[bytes, int] = {}
        #: replica side: keep the neighbour entries of the addresses this instance will send to once
        #: promoted or handed flows (nf.neigh; a cold ARP entry drops all but ~100 packets)
        self.neigh = NeighbourWarmer()
        for hop in self.nf.next_hops():
            self.neigh.want(socket.inet_ntoa(hop))
        self._last_second = 0  # once-a-second chores: socket drop counts, neighbour probes
        self._open_sockets()
        for r in cfg.replicas:
            self._add_channel(r)

    # ---- sockets ---------------------------------------------------------------------------
    def _udp(self, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:  # FORCE needs CAP_NET_ADMIN, which a container usually lacks: then up to rmem_max
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.ecfg.rcvbuf_bytes)
        except OSError:
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.ecfg.rcvbuf_bytes)
        s.bind((self.cfg.data_ip, port + self.idx))
        s.setblocking(False)
        return s

    def _open_sockets(self) -> None:
        self.data_sock = self._udp(self.cfg.data_port)
        self.dup_sock = self._udp(self.cfg.dup_port)
        self.egress = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        with contextlib.suppress(OSError):
            self.egress.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, self.ecfg.rcvbuf_bytes)
        self.fwd_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((self.cfg.repl_bind, self.cfg.repl_port + self.idx))
        self.listener.listen(64)
        self.listener.setblocking(False)

    def _socket_drops(self) -> int:
        """Datagrams the kernel dropped because a socket's receive buffer was full (packets)."""
        n = 0
        for s in (self.data_sock, self.dup_sock):
            with contextlib.suppress(OSError):
                n += _MEMINFO.unpack(s.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size))[
                    SK_MEMINFO_DROPS]
        return n

    def _add_channel(self, base: str, temporary: bool = False, joining: bool = False) -> ReplicaChannel:
        """Channel to replica ``base`` (idempotent). ``joining``: added at run time, so it holds
        back output only after its first snapshot is acknowledged (see ReplicaChannel.gating)."""
        for ch in self.channels:
            if ch.name == base:
                return ch
        ip, port = parse_addr(base, "replica")
        ch = ReplicaChannel((ip, port + self.idx), base, temporary, joining)
        self.channels.append(ch)
        return ch

    # ---- main loop -------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until ``shutdown``; the only loop of the worker process."""
        poller = select.poll()
        data_fd, dup_fd = self.data_sock.fileno(), self.dup_sock.fileno()
        lst_fd = self.listener.fileno()
        ctl_fd = self.ctl.fileno() if self.ctl is not None else -1
        registered: dict[int, int] = {}
        inbound = self.inbound
        progress, idx = self.progress, self.idx
        while self.running:
            if progress is not None:
                progress[idx] = time.monotonic()
            want: dict[int, int] = {data_fd: select.POLLIN, dup_fd: select.POLLIN, lst_fd: select.POLLIN}
            if ctl_fd >= 0:
                want[ctl_fd] = select.POLLIN
            for ch in self.channels:
                fd = ch.fileno()
                if fd >= 0:
                    want[fd] = select.POLLIN | (select.POLLOUT if ch.connecting or ch.out else 0)
            for fd, ic in inbound.items():
                want[fd] = select.POLLIN | (select.POLLOUT if ic.out else 0)
            for fd in [f for f in registered if f not in want]:
                with contextlib.suppress(KeyError, ValueError):
                    poller.unregister(fd)
                del registered[fd]
            for fd, ev in want.items():
                if registered.get(fd) != ev:
                    poller.register(fd, ev)
                    registered[fd] = ev
            timeout = self._timeout_ms()
            try:
                events = poller.poll(timeout)
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == data_fd:
                    self._drain_socket(self.data_sock, False)
                elif fd == dup_fd:
                    self._drain_socket(self.dup_sock, True)
                elif fd == ctl_fd:
                    self._on_control()
                elif fd == lst_fd:
                    self._accept()
                elif fd in inbound:
                    self._on_inbound(inbound[fd], ev)
                else:
                    for ch in self.channels:
                        if ch.fileno() == fd:
                            self._on_channel(ch, ev)
                            break
            self._timers()
        self._close()

    def _timeout_ms(self) -> int:
        now = time.time_ns()
        t = 1000.0
        if self.batch_n:
            t = min(t, (self.batch_open_ns - now) / 1e6 + self.ecfg.batch_timeout_ms)
        if self.waiting:
            t = min(t, self.ecfg.reorder_timeout_ms / 4)
        if self.channels:
            t = min(t, self.ecfg.heartbeat_ms)
            if self.released_seq > self.sent_released:
                t = min(t, 1.0)
        if self.ops or self.frozen:
            t = min(t, 5.0)
        if any(ch.stream is not None for ch in self.channels):
            t = 0.0  # a snapshot is being streamed: its next chunk right after this poll
        if self.release_hold_until:
            t = min(t, (self.release_hold_until - now) / 1e6)
        return max(0, int(t + 0.999))

    def _timers(self) -> None:
        now = time.time_ns()
        if self.batch_n and now - self.batch_open_ns >= self.ecfg.batch_timeout_ms * 1e6:
            self._close_batch(now)
        if self.waiting and now - self._last_gap_check >= self.ecfg.reorder_timeout_ms * 2.5e5:
            self._last_gap_check = now
            self._check_gaps(now)
        hb_ns = self.ecfg.heartbeat_ms * 1e6
        for ch in self.channels:
            if ch.stream is not None and ch.connected:
                self._stream_snapshot(ch, ch.stream)
            if not ch.connected and not ch.connecting and now >= ch.next_attempt_ns:
                ch.start_connect(now)
            elif ch.connected and (now - ch.last_tx_ns >= hb_ns or (
                    self.released_seq > self.sent_released and now - ch.last_tx_ns >= 1_000_000)):
                ch.send(protocol.heartbeat(self.epoch, now, self.released_seq))
        if self.channels and self.released_seq > self.sent_released \
                and all(ch.last_tx_ns >= now for ch in self.channels if ch.connected):
            self.sent_released = self.released_seq
        if self.store is not None and now - self._last_store_check > 500_000_000:
            self._last_store_check = now
            self._refresh_epochs()
        if self.ops:
            self._progress_ops()
        if self.release_hold_until and now >= self.release_hold_until:
            self._release_ready()
        if self._idle_ns and now - self._last_sweep >= self._idle_ns // 4:
            self._last_sweep = now
            self._expire_idle(now)
        if now - self._last_second >= 1_000_000_000:
            self._last_second = now
            self.c["socket_dropped"] = self._socket_drops()
            if self.neigh.addrs:
                self.neigh.tick()

    def _expire_idle(self, now: int) -> None:
        """Forget owned flows idle for ``flow_idle_timeout_s`` (deletions replicate like updates).

        The stamper must keep its counters longer (its ``flow_idle_timeout_s`` larger) so a flow it
        still numbers is never restarted at seq 0 while the instance remembers it.
        """
        limit = now - self._idle_ns
        self.expired = {k: t for k, t in self.expired.items() if t >= now - 2 * self._idle_ns}
        gone = [k for k, fs in self.seqs.items() if fs.owned and fs.last < limit and not fs.pending
                and fs.group not in self.frozen]
        if not gone:
            return
        for k in gone:
            del self.seqs[k]
            self.dirty_seq.discard(k)
            self.removed_seq.add(k)
            self.expired[k] = now
        alive = self.seqs.__contains__
        for sk in self.nf.expire(gone, alive):
            if sk not in self.replica_of:
                self.removed_state.add(sk)
                self.nf.dirty.discard(sk)
        self.c["flows_expired"] += len(gone)
        self._close_batch(now)  # ship the deletions

    # ---- data input ----------------------------------------------------------------------------
    def _drain_socket(self, sock: socket.socket, dup: bool) -> None:
        """Read up to ``recv_burst`` datagrams; the common case is handled inline (the hot path).

        Fast path = an IPv4 TCP/UDP packet (no options, not a fragment) of an owned flow that is
        exactly the next expected (epoch, seq), with the input buffer empty, room in the output
        pipeline and the group not frozen: it goes straight through the NF logic into the open
        batch. Everything else takes the general path (:meth:`_on_datagram`), which makes the
        same decisions. One clock read per burst for the receive time; the canonical flow key of
        a packet's addresses/ports is cached per protocol (a pure function of those 12 bytes).
        """
        slow = self._on_datagram
        now = _time_ns()
        if not self.m.first_rx_ns:
            self.m.first_rx_ns = now
        seqs = self.seqs
        unpack = _SHIM.unpack_from
        wcache = self._wcache
        inflight = self.inflight
        maxin = self.ecfg.max_inflight
        bsize = self.batch_size
        nfproc = self.nf.process
        dirty_add = self.dirty_seq.add
        input_q = self.input_q
        c = self.c
        try:
            burst = _recv_burst(sock, self.ecfg.recv_burst)
        except OSError as exc:
            c["recv_errors"] += 1
            log.debug("worker %d: receive error: %s", self.idx, exc)
            return
        for d in burst:
            ln = len(d)
            if ln < _MIN_DGRAM + 4 or d[32] != 0x45 or d[38] & 0x1F or d[39] or input_q or self.fenced \
                    or len(inflight) >= maxin:
                slow(d, now, dup)
                continue
            wc = wcache.get(d[41])
            tot = (d[34] << 8) | d[35]
            if wc is None or tot < 24 or tot > ln - _SHIM_LEN:
                slow(d, now, dup)
                continue
            addrs = d[44:56]
            kf = wc.get(addrs)
            if kf is None:
                kf = _wire_key(d, _SHIM_LEN)
                if kf is None:
                    slow(d, now, dup)
                    continue
                if len(wc) >= _WCACHE_MAX:
                    wc.clear()
                wc[addrs] = kf
            key, fwd = kf
            fs = seqs.get(key)
            if fs is None or not fs.owned or fs.pending or (self.frozen and fs.group in self.frozen):
                slow(d, now, dup)
                continue
            magic, ver, _fl, _sid, _r, _g, ep, seq, ts = unpack(d)
            if seq != fs.next or ep != fs.epoch or magic != _MAGIC or ver != 1:
                slow(d, now, dup)
                continue
            # == _sequence (in order) + _process, inlined
            fs.last = now
            fs.next = seq + 1
            t0 = _time_ns()
            out = nfproc(d[_SHIM_LEN:], key, fwd, fs.group)
            t1 = _time_ns()
            self.b_in += t0 - now
            self.b_path += now - ts
            self.b_proc += t1 - t0
            if out is None:
                c["nf_dropped"] += 1
            else:
                self.batch_outs.append(out)
                self.batch_ts.append(ts)
                self.batch_sum_tob += t1
            dirty_add(key)
            if not self.batch_n:
                self.batch_open_ns = t1
            self.batch_n += 1
            if self.batch_n >= bsize:
                self._close_batch(t1)
        c["received"] += len(burst)

    def _on_datagram(self, d: bytes, rx: int, dup: bool) -> None:
        c = self.c
        if len(d) < _MIN_DGRAM:
            c["malformed"] += 1
            return
        magic, ver, _fl, _sid, _r, group, ep, seq, _ts = _SHIM.unpack_from(d)
        if magic != _MAGIC or ver != 1:
            c["malformed"] += 1
            return
        kf = _wire_key(d, _SHIM_LEN)
        if kf is None:
            c["malformed"] += 1
            return
        key, fwd = kf
        fs = self.seqs.get(key)
        if group in self.moved and (fs is None or not (dup or fs.owned)):
            # steered here (a stale rule) after its group was handed over: to the new owner. Also
            # when this instance still knows the flow as a replica of the new owner (an
            # intra-cluster move): logging it here, as the replica it now is, lost it (CI, 1 run in
            # 5-8: the target skipped the gap)
            self._forward(d, group)
            return
        if fs is None:
            if group % self.cfg.workers != self.idx or group >= self.cfg.flow_groups:
                c["malformed"] += 1
                return
            fs = FlowSeq(ep, group, (not dup) and self.role == "primary" and group not in self.frozen)
            if not fs.owned:
                self._warm_ends(key)
            if self.expired and self.expired.pop(key, None) is not None:
                fs.epoch, fs.next = ep, seq  # an expired flow resumes: no gap to wait for
            self.seqs[key] = fs
        fs.last = rx
        if fs.owned:
            if fs.group in self.frozen:
                self._hold_frozen(d)
                return
            if self.input_q or len(self.inflight) >= self.ecfg.max_inflight or self.fenced:
                if self.fenced or len(self.input_q) >= self.input_cap:
                    c["dropped"] += 1
                else:
                    self.input_q.append((d, rx, fwd))
                    ln = len(self.input_q)
                    self.m.in_buffer_max = max(self.m.in_buffer_max, ln)
                return
            self._sequence(fs, key, fwd, d, ep, seq, rx)
        else:
            self._log_replica_input(fs, d, ep, seq, rx, fwd)

    def _log_replica_input(self, fs: FlowSeq, d: bytes, ep: int, seq: int, rx: int, fwd: bool) -> None:
        c = self.c
        if (ep, seq) < (fs.epoch, fs.next):
            c["replica_discarded"] += 1
            return
        if (ep, seq) in fs.pending:
            c["duplicates"] += 1
            return
        if self.log_len >= self.ecfg.replica_log_max:
            c["replica_log_overflow"] += 1
            return
        fs.pending[(ep, seq)] = (d, rx, fwd)
        self.log_len += 1
        c["replica_logged"] += 1

    def _sequence(self, fs: FlowSeq, key: bytes, fwd: bool, d: bytes, ep: int, seq: int, rx: int) -> None:
        """In-order gate of an owned flow: process, buffer, or drop as duplicate/stale."""
        if ep == fs.epoch and seq == fs.next and not fs.pending:
            fs.next = seq + 1  # before processing: a batch closing inside must ship the new next
            self._process(fs, key, fwd, d, rx)
            return
        c = self.c
        if ep < fs.epoch:
            c["stale_epoch"] += 1
            return
        if ep == fs.epoch and seq < fs.next:
            c["duplicates"] += 1
            return
        if (ep, seq) in fs.pending:
            c["duplicates"] += 1
            return
        full = len(fs.pending) >= self.ecfg.reorder_max
        if full:
            self._skip_gap(fs)  # buffer full: give up the oldest gap now
        if not fs.pending:
            fs.gap_since = rx
        fs.pending[(ep, seq)] = (d, rx, fwd)
        c["reordered"] += 1
        # Only a present next-expected packet (this one filling the gap, or one a full output
        # pipeline paused), the first of a newer stamper epoch, or a skipped gap lets the flow
        # progress. Draining on every other arrival rescanned the whole buffer (up to
        # reorder_max) per packet while a gap lasted: quadratic, exactly under overload, when
        # the kernel drops input and every flow has gaps
        if full or (fs.epoch, fs.next) in fs.pending or (seq == 0 and ep > fs.epoch):
            self._drain_flow(fs, key)
        if fs.pending:
            self.waiting.add(key)

    def _drain_flow(self, fs: FlowSeq, key: bytes) -> None:
        """Process buffered packets of ``fs`` while the next expected one is there.

        Never for a group being handed over: its last batch is already fixed (the target's state
        starts there and the target replays the rest), so a packet processed here now would be
        released by both instances. Its buffered packets go to the target with the handover."""
        if self.frozen and fs.owned and fs.group in self.frozen:
            return
        pend = fs.pending
        progressed = False
        while pend:
            item = pend.pop((fs.epoch, fs.next), None)
            if item is None:
                # a newer stamper epoch starts at seq 0 once nothing of the old epoch is left
                newer = [e for (e, s) in pend if e > fs.epoch and s == 0]
                if newer and not any(e == fs.epoch for (e, _s) in pend):
                    fs.epoch, fs.next = min(newer), 0
                    continue
                break
            d, rx, fwd = item
            fs.next += 1
            self._process(fs, key, fwd, d, rx)
            progressed = True
            if len(self.inflight) >= self.ecfg.max_inflight:
                break
        if not pend:
            self.waiting.discard(key)
        elif progressed:
            # The next gap's clock starts when its oldest waiting packet arrived (the first one
            # still in the insertion-ordered dict), not now: a packet waits at most
            # ``reorder_timeout_ms`` in all for the ones before it. Restarting the clock per gap
            # made a flow that lost packets upstream crawl at one gap per timeout (lab overload:
            # seconds of latency). Never earlier than the clock already running (an adoption
            # starts every gap's clock afresh).
            fs.gap_since = max(fs.gap_since, next(iter(pend.values()))[1])

    def _hold_frozen(self, d: bytes) -> None:
        """Hold an accepted packet of a group being handed over (forwarded to the new owner or
        re-admitted here when the handover ends). Not bounded by the input buffer: the packet was
        already accepted, and a migration must not lose it; only ``replica_log_max`` (memory)
        bounds the hold, counted as ``migration_dropped``."""
        if len(self.frozen_q) < self.ecfg.replica_log_max:
            self.frozen_q.append(d)
        else:
            self.c["migration_dropped"] += 1

    def _skip_gap(self, fs: FlowSeq) -> None:
        if fs.pending:
            fs.epoch, fs.next = min(fs.pending)
            self.c["gaps_skipped"] += 1

    def _check_gaps(self, now: int) -> None:
        limit = self.ecfg.reorder_timeout_ms * 1e6
        for key in list(self.waiting):
            fs = self.seqs.get(key)
            if fs is None or not fs.pending:
                self.waiting.discard(key)
                continue
            if len(self.inflight) >= self.ecfg.max_inflight:
                return
            if self.frozen and fs.group in self.frozen:
                continue  # the target decides about this gap once it owns the flow
            while fs.pending and now - fs.gap_since >= limit and now >= fs.hold_until:
                # every gap whose waiting packets are overdue goes in one pass
                waiting = len(fs.pending)
                self._skip_gap(fs)
                self._drain_flow(fs, key)
                if len(fs.pending) >= waiting or len(self.inflight) >= self.ecfg.max_inflight:
                    break

    def _process(self, fs: FlowSeq, key: bytes, fwd: bool, d: bytes, rx: int) -> None:
        t0 = _time_ns()
        ts = _TS.unpack_from(d, 24)[0]
        out = self.nf.process(d[_SHIM_LEN:], key, fwd, fs.group)
        t1 = _time_ns()
        # per-batch sums (added to the counters when the batch closes: fewer dict updates)
        self.b_in += t0 - rx
        self.b_path += rx - ts
        self.b_proc += t1 - t0
        if out is None:
            self.c["nf_dropped"] += 1
        else:
            self.batch_outs.append(out)
            self.batch_ts.append(ts)
            self.batch_sum_tob += t1
        self.dirty_seq.add(key)
        if not self.batch_n:
            self.batch_open_ns = t1
        self.batch_n += 1
        if self.batch_n >= self.batch_size:
            self._close_batch(t1)

    # ---- batches, output commit ------------------------------------------------------------
    def _build_delta(self) -> protocol.FlowDelta:
        """The batch's DELTA: every flow changed or removed in it, as it is now (one entry per
        flow: a flow removed and seen again in the same batch is an update, not both)."""
        seq_keys = self.dirty_seq | self.removed_seq if self.removed_seq else self.dirty_seq
        nf = self.nf
        state_keys = nf.dirty | self.removed_state if self.removed_state else nf.dirty
        return self._snapshot_entries(seq_keys, state_keys, removed=True)

    def _close_batch(self, now: int) -> None:
        if not self.batch_n and not self.removed_seq:
            return
        self.batch_seq += 1
        c = self.c
        c["processed"] += self.batch_n
        c["sum_in_buffer_ns"] += self.b_in
        c["sum_path_ns"] += self.b_path
        c["sum_processing_ns"] += self.b_proc
        self.b_in = self.b_path = self.b_proc = 0
        live = self.channels
        if live:
            frame = protocol.delta(self.epoch, self.batch_seq, self._build_delta(), self.released_seq)
            self.sent_released = self.released_seq
            for ch in live:
                if ch.connected and not ch.needs_snapshot:
                    ch.send(frame)
                    c["deltas_sent"] += 1
                    c["replicated_bytes"] += len(frame)
                elif ch.stream is not None:  # streaming a snapshot: its last chunk re-sends these
                    ch.stream.touched_seq.update(self.dirty_seq, self.removed_seq)
                    ch.stream.touched_state.update(self.nf.dirty, self.removed_state)
        self.dirty_seq.clear()
        self.nf.dirty.clear()
        self.removed_seq.clear()
        self.removed_state.clear()
        b = Batch(self.batch_seq, self.batch_outs, self.batch_ts, self.batch_n, self.batch_sum_tob, now)
        self.inflight.append(b)
        self.out_len += len(b.outs)
        self.m.out_buffer_max = max(self.m.out_buffer_max, self.out_len)
        c["batches"] += 1
        self.m.hist["batch_size"][bucket_of(b.n)] += 1
        if self.nf.global_updates:
            c["global_updates"] = self.nf.global_updates
        self.batch_outs, self.batch_ts, self.batch_n, self.batch_sum_tob = [], [], 0, 0
        if not live or self._committed() >= b.seq:  # no replica (yet) holds back output
            self._release_ready()

    def _committed(self) -> int:
        """Highest batch seq acknowledged by every replica that holds back output (a joining
        replica starts to once its snapshot is acknowledged: a migration target's snapshot
        transfer must not stall output and tail-drop input)."""
        upto = self.batch_seq
        for ch in self.channels:
            if ch.gating and ch.acked < upto:
                upto = ch.acked
        return upto

    def _release_ready(self) -> None:
        if self.fenced:
            return
        if self.release_hold_until:
            if time.time_ns() < self.release_hold_until:
                return  # _timers releases when the hold ends
            self.release_hold_until = 0
        upto = self._committed()
        released = False
        chans = self.channels
        while self.inflight and self.inflight[0].seq <= upto:
            b = self.inflight.popleft()
            self._release(b)
            self.released_seq = b.seq
            released = True
            if chans:
                # RELEASED after *each* batch, before the next batch's first sendto: a kill -9
                # can then re-release (duplicate) at most the one batch being sent, not every
                # batch released in this call (at-least-once output, bounded by one batch)
                frame = protocol.released(self.epoch, b.seq)
                for ch in chans:
                    if ch.connected and not ch.needs_snapshot:
                        ch.send(frame)
                self.sent_released = b.seq
        if released and self.input_q:
            self._drain_input_q()

    def _release(self, b: Batch) -> None:
        errors, nbytes = _send_burst(self.egress, b.outs)
        now = time.time_ns()
        c = self.c
        if errors:
            c["egress_errors"] += errors
        n = len(b.outs)
        self.out_len -= n
        c["released"] += n
        c["released_bytes"] += nbytes
        hist = self.m.hist["latency"]
        top = len(hist) - 1
        for ts in b.ts:  # bucket_of() inlined: this runs for every released packet
            lat = now - ts
            if lat < 8:
                hist[max(lat, 0)] += 1
                continue
            bl = lat.bit_length()
            idx = bl * 4 + ((lat >> (bl - 3)) & 3)
            hist[idx if idx < top else top] += 1
        c["sum_latency_ns"] += n * now - sum(b.ts)
        c["sum_out_buffer_ns"] += n * now - b.sum_tob
        if self.channels:
            cl = now - b.close_ns
            c["sum_commit_ns"] += cl
            self.m.hist["commit"][bucket_of(cl)] += 1
        self.m.last_release_ns = now

    def _drain_input_q(self) -> None:
        q = self.input_q
        maxin = self.ecfg.max_inflight
        while q and len(self.inflight) < maxin and not self.fenced:
            d, rx, fwd = q.popleft()
            kf = _wire_key(d, _SHIM_LEN)
            if kf is None:
                continue
            key = kf[0]
            fs = self.seqs.get(key)
            if fs is None:
                group = _SHIM.unpack_from(d)[5]
                if group in self.moved:  # accepted before its group was handed over: to the new owner
                    self._forward(d, group)
                continue
            if not fs.owned:
                continue
            if fs.group in self.frozen:
                self._hold_frozen(d)
                continue
            _m, _v, _f, _s, _r, _g, ep, seq, _ts = _SHIM.unpack_from(d)
            self._sequence(fs, key, fwd, d, ep, seq, rx)
        if len(self.inflight) < maxin:
            for key in list(self.waiting):
                fs = self.seqs.get(key)
                if fs is not None:
                    self._drain_flow(fs, key)

    # ---- replication: primary side ----------------------------------------------------------
    def _on_channel(self, ch: ReplicaChannel, ev: int) -> None:
        if ch.connecting and ev & (select.POLLOUT | select.POLLERR | select.POLLHUP):
            if ch.finish_connect():
                self._send_snapshot(ch)
            return
        if ev & select.POLLOUT:
            ch.flush()
        if ev & (select.POLLIN | select.POLLERR | select.POLLHUP):
            for msg in ch.on_readable():
                if isinstance(msg, protocol.Ack):
                    if msg.fenced:
                        self._fence_self(msg.epoch, f"replica {ch.name} knows epoch {msg.epoch}")
                    elif msg.batch_seq > ch.acked:
                        ch.acked = msg.batch_seq
                        if not ch.gating and 0 <= ch.snap_seq <= msg.batch_seq:
                            ch.gating = True  # caught up: from now on output waits for it
                        self._release_ready()
                        if self.ops:
                            self._progress_ops()
                    else:  # a repeated seq acknowledges a HANDOVER
                        for op in list(self.ops):
                            if op.kind == "handover" and op.sent and op.channel is ch \
                                    and op.batch_seq == msg.batch_seq and not op.done:
                                self._finish_handover(op)
                        self._progress_ops()

    def _send_snapshot(self, ch: ReplicaChannel) -> None:
        """Start streaming HELLO + full state to ``ch`` (see :class:`SnapshotStream`); the first
        chunk leaves now, the rest one per loop turn (:meth:`_stream_snapshot` from the timers)."""
        self._close_batch(time.time_ns())
        ch.send(protocol.hello(self.lease, self.cfg.name, self.epoch, self.cfg.workers, self.idx,
                               self.cfg.flow_groups))
        ch.snap_seq = -1
        ch.stream = SnapshotStream(list(self.seqs), list(self.nf.state))
        self._stream_snapshot(ch, ch.stream)

    def _stream_snapshot(self, ch: ReplicaChannel, st: SnapshotStream) -> None:
        """Send the next ``snapshot_chunk_flows`` flows of ``st``; when none are left, the last
        chunk: the batch closed, then every flow touched since the stream began, as it is now (or
        its removal). Its ack covers every batch closed so far (``snap_seq``)."""
        n = self.ecfg.snapshot_chunk_flows
        first = st.pos == 0
        lo, hi = st.pos, st.pos + n
        st.pos = hi
        part = self._snapshot_entries(st.seq_keys[lo:hi], st.state_keys[lo:hi], removed=False)
        if st.remaining > 0:
            self._send_snapshot_frame(ch, part, protocol.SNAP_FIRST if first else 0)
            return
        if part.seqs or part.states or first:
            self._send_snapshot_frame(ch, part, protocol.SNAP_FIRST if first else 0)
        self._close_batch(time.time_ns())  # after it, ``touched`` holds every change so far
        last = self._snapshot_entries(list(st.touched_seq), list(st.touched_state), removed=True)
        for i in range(0, max(len(last.seqs), len(last.states), 1), n):
            part = protocol.FlowDelta(last.seqs[i:i + n], last.states[i:i + n])
            end = i + n >= max(len(last.seqs), len(last.states))
            self._send_snapshot_frame(ch, part, protocol.SNAP_LAST if end else 0)
        if ch.stream is st:  # not failed (closed) while sending: the reconnect starts over
            ch.stream = None
            ch.needs_snapshot = False
            ch.snap_seq = self.batch_seq

    def _snapshot_entries(self, seq_keys: Iterable[bytes], state_keys: Iterable[bytes],
                          removed: bool) -> protocol.FlowDelta:
        """Entries of the owned flows among the keys, as they are now (DELTAs and snapshot
        chunks). ``removed``: a flow this worker no longer owns (expired, moved away; possibly
        known again as a replica of the new owner) or a state that is gone becomes a removal entry
        instead of being skipped; the replica applies it only to what it holds for this lease."""
        fd = protocol.FlowDelta()
        seqs = self.seqs
        for k in seq_keys:
            fs = seqs.get(k)
            if fs is not None and fs.owned:
                fd.seqs.append((k, fs.group, fs.epoch, fs.next))
            elif removed:
                fd.seqs.append((k, 0, SEQ_REMOVED, 0))
        nf = self.nf
        state, replica_of = nf.state, self.replica_of
        for sk in state_keys:
            if sk in state:
                if sk not in replica_of:  # (a state this worker only replicates is not its to send)
                    fd.states.append((sk, nf.groups.get(sk, 0), nf.dump(sk)))
            elif removed:
                fd.states.append((sk, 0, None))
        return fd

    def _send_snapshot_frame(self, ch: ReplicaChannel, part: protocol.FlowDelta, flags: int) -> None:
        frame = protocol.snapshot(self.epoch, self.batch_seq, flags, part)
        ch.send(frame)
        self.c["replicated_bytes"] += len(frame)

    def _fence_self(self, epoch: int, why: str) -> None:
        if not self.fenced:
            log.warning("worker %d of %s fenced (%s): dropping %d unreleased batches", self.idx,
                        self.cfg.name, why, len(self.inflight))
        self.fenced = True
        self.c["fenced_nacks"] += 1
        self.known_epoch[self.lease] = max(self.known_epoch.get(self.lease, 0), epoch)
        self.inflight.clear()
        self.out_len = 0
        self.input_q.clear()

    # ---- replication: replica side ----------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                s, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            ic = InboundChannel(s, peer)
            self.inbound[ic.fileno()] = ic

    def _on_inbound(self, ic: InboundChannel, ev: int) -> None:
        if ev & select.POLLOUT:
            ic.flush()
        if ev & (select.POLLIN | select.POLLERR | select.POLLHUP):
            try:
                msgs = ic.read()
            except protocol.ProtocolError as exc:
                log.warning("replication from %s: %s; closing", ic.peer, exc)
                msgs = []
            for msg in msgs:
                self._on_replication(ic, msg)
        if ic.closed:
            for fd in [f for f, x in self.inbound.items() if x is ic]:
                del self.inbound[fd]  # in place: the poll loop holds a reference to this dict

    def _lease_epoch(self, lease: str) -> int:
        return self.known_epoch.get(lease, 0)

    def _on_replication(self, ic: InboundChannel, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.Hello):
            cfg = self.cfg
            if msg.workers != cfg.workers or msg.worker != self.idx or msg.flow_groups != cfg.flow_groups:
                log.error("replication HELLO from %s (%s): workers=%d worker=%d flow_groups=%d do not match "
                          "this instance (workers=%d worker=%d flow_groups=%d); closing", ic.peer,
                          msg.instance, msg.workers, msg.worker, msg.flow_groups, self.cfg.workers,
                          self.idx, self.cfg.flow_groups)
                ic.close()
                return
            ic.hello = msg
            if self.store is not None:
                self._refresh_epochs([msg.lease])
            return
        if ic.hello is None:
            log.warning("replication from %s: %s before HELLO; closing", ic.peer, type(msg).__name__)
            ic.close()
            return
        lease = ic.hello.lease
        if isinstance(msg, protocol.Heartbeat):
            ic.send(protocol.heartbeat(self._lease_epoch(lease), msg.t_ns))
            if msg.epoch >= self._lease_epoch(lease):
                self._apply_released(lease, msg.released)
            return
        if isinstance(msg, protocol.Ack):
            return
        if isinstance(msg, protocol.Released):
            if msg.epoch >= self._lease_epoch(lease):
                self._apply_released(lease, msg.batch_seq)
            return
        known = self._lease_epoch(lease)
        if msg.epoch < known:
            self.c["fenced_nacks"] += 1
            ic.send(protocol.fenced(known, msg.batch_seq))
            return
        self.known_epoch[lease] = msg.epoch
        if isinstance(msg, protocol.Delta):
            if msg.snapshot:
                # Until the LAST chunk, flows the snapshot has not reached keep what this replica
                # held (a reconnecting secondary): should the primary die mid-stream, the promoted
                # replica replays their logged input onto that state instead of starting them fresh
                if msg.snapshot_flags & protocol.SNAP_FIRST:
                    self.unapplied.pop(lease, None)  # acked, never released: their input replays
                    self.snap_seen[lease] = set()
                self._apply(lease, msg.entries)
                seen = self.snap_seen.get(lease)
                if seen is not None:
                    seen.update(sk for sk, _g, _blob in msg.entries.states)
                if msg.snapshot_flags & protocol.SNAP_LAST:
                    self._drop_replica_lease(lease, keep=self.snap_seen.pop(lease, set()))
                    ic.send(protocol.ack(msg.epoch, msg.batch_seq))
            else:
                # held (acknowledged) now, applied once the primary reports it released
                self.unapplied.setdefault(lease, deque()).append((msg.batch_seq, msg.entries))
                ic.send(protocol.ack(msg.epoch, msg.batch_seq))
                self._apply_released(lease, msg.released)
            self.c["deltas_applied"] += 1
        elif isinstance(msg, protocol.Handover):
            self._apply_released(lease, msg.batch_seq)  # sent only after those were released
            self.hold_release(self.ecfg.handover_release_hold_ms)
            n = self._adopt(set(msg.groups), None, self.ecfg.handover_grace_ms)
            self.c["migrations_in"] += len(msg.groups)
            log.info("worker %d took over %d flows of groups %s from %s", self.idx, n, msg.groups,
                     ic.hello.instance)
            ic.send(protocol.ack(msg.epoch, msg.batch_seq))

    def hold_release(self, ms: float) -> None:
        """Release no output for ``ms`` from now (handover target). The source released the moved
        flows' last batch just before HANDOVER, but those packets may still sit in its host's
        switch queue (a descheduled userspace OVS on a busy host); ours leave from another host on
        an idle path and could reach the sink first, i.e. reordered there. Holding our first
        output gives the source's packets that head start. Adds up to ``ms`` to the latency of
        packets processed meanwhile; input and processing go on, so nothing is dropped."""
        if ms > 0:
            self.release_hold_until = max(self.release_hold_until, time.time_ns() + int(ms * 1e6))

    def _apply_released(self, lease: str, upto: int) -> None:
        q = self.unapplied.get(lease)
        while q and q[0][0] <= upto:
            self._apply(lease, q.popleft()[1])

    def _drop_replica_lease(self, lease: str, keep: set[bytes] | frozenset[bytes] = frozenset()) -> None:
        """Forget what this replica holds of ``lease`` (its unapplied deltas and flow states),
        except the state keys in ``keep``."""
        self.unapplied.pop(lease, None)
        for sk in [k for k, ls in self.replica_of.items() if ls == lease and k not in keep]:
            self.nf.remove(sk)
            del self.replica_of[sk]

    def _warm_ends(self, key: bytes) -> None:
        """Resolve the neighbour entries of both ends of a replica flow (canonical ``key``), once,
        when this instance first learns the flow - from duplicated input or from its primary's
        deltas (a cluster member learns flows only from deltas). Why: should the flow move here,
        its first output burst must not wait in the kernel's ARP queue. Cold, that burst waited
        while later packets went out directly on another CPU: 1-3 packets per flow reordered at
        the sink in 1 of 6 intra-cluster moves (all in order when pinned to one CPU). Both ends,
        because a reply goes to the source."""
        self.neigh.want_packed(key[1:5])
        self.neigh.want_packed(key[7:11])

    def _apply(self, lease: str, entries: protocol.FlowDelta) -> None:
        c = self.c
        seqs = self.seqs
        for k, g, ep, nxt in entries.seqs:
            fs = seqs.get(k)
            if ep == SEQ_REMOVED:
                # only what this replica holds for the sender's lease (or learnt from duplicated
                # input alone): a cluster member that already follows the flow's new owner keeps it
                if fs is not None and not fs.owned and fs.lease in ("", lease):
                    self.log_len -= len(fs.pending)
                    del seqs[k]
                continue
            if fs is None:
                fs = seqs[k] = FlowSeq(ep, g, False, lease)
                self._warm_ends(k)
            elif fs.owned:
                continue
            fs.lease = lease
            fs.epoch, fs.next = ep, nxt
            if fs.pending:
                old = [p for p in fs.pending if p < (ep, nxt)]
                for p in old:
                    del fs.pending[p]
                self.log_len -= len(old)
                c["replica_discarded"] += len(old)
        nf = self.nf
        for sk, g, blob in entries.states:
            if sk in nf.state and sk not in self.replica_of:
                continue  # we own it (a stale delta from a fenced or former owner)
            if blob is None:
                if self.replica_of.get(sk) == lease:
                    nf.remove(sk)
                    del self.replica_of[sk]
            else:
                nf.load(sk, g, blob)
                self.replica_of[sk] = lease

    def _adopt(self, groups: set[int] | None, lease: str | None, grace_ms: float = 0.0) -> int:
        """Own the replica flows of ``groups`` (or of ``lease``, or all) and replay their input.

        ``grace_ms`` (handover): the source forwards packets it still receives for these groups,
        and on a loaded host they can arrive after the reorder timeout; a gap of an adopted flow is
        kept that long before it is given up as lost (a promotion has no source to wait for).

        On the critical path of a handover/promotion (the moved flows wait), so one pass per
        table with local lookups; replay happens after every flow is owned."""
        replica_of = self.replica_of
        ngroups = self.nf.groups
        leases = (lease, "")
        for g in groups or ():  # moved back here: no longer forwarded to the previous owner
            self.moved.pop(g, None)
        drop = [sk for sk, ls in replica_of.items()
                if (groups is None or ngroups.get(sk) in groups) and (lease is None or ls in leases)]
        for sk in drop:
            del replica_of[sk]
        adopted: list[tuple[bytes, FlowSeq]] = []
        n = 0
        hold = time.time_ns() + int(grace_ms * 1e6) if grace_ms > 0 else 0
        for key, fs in self.seqs.items():
            if fs.owned or (groups is not None and fs.group not in groups) \
                    or (lease is not None and fs.lease not in leases):
                continue
            fs.owned = True
            fs.hold_until = hold
            n += 1
            if fs.pending:
                adopted.append((key, fs))
        n_pending = sum(len(fs.pending) for _k, fs in adopted)
        self.log_len -= n_pending
        self.c["replayed"] += n_pending
        now = time.time_ns()
        for key, fs in adopted:
            fs.gap_since = now
            self._drain_flow(fs, key)
            if fs.pending:
                self.waiting.add(key)
        return n

    def _refresh_epochs(self, leases: list[str] | None = None) -> None:
        """Raise known epochs to the store's lease epochs (fencing even without a FENCED message)."""
        from nf.store import keys  # noqa: PLC0415 - only with a store
        names = leases if leases is not None else list(self.known_epoch)
        for lease in names:
            try:
                info = self.store.current(keys.lease(lease))
            except Exception as exc:  # store down: keep the known epochs
                log.debug("lease %s: store check failed: %s", lease, exc)
                continue
            if info is None:
                continue
            if info.epoch > self.known_epoch.get(lease, 0):
                self.known_epoch[lease] = info.epoch
            if lease == self.lease and self.role == "primary" and info.epoch > self.epoch:
                self._fence_self(info.epoch, f"store lease {lease} is at epoch {info.epoch}")

    # ---- migration -----------------------------------------------------------------------------
    def _forward(self, d: bytes, group: int) -> None:
        addr = self.moved[group]
        try:
            self.fwd_sock.sendto(shim.set_flags(d, shim.FLAG_FORWARDED), addr)
            self.c["forwarded"] += 1
        except OSError:
            self.c["egress_errors"] += 1

    def _progress_ops(self) -> None:
        for op in list(self.ops):
            if op.kind == "handover":
                self._progress_handover(op)
            elif op.kind == "drain" and not self.inflight and not self.batch_n:
                op.done = True
                op.result = {"drained": True}
            if not op.done and op.kind == "handover" and not op.sent and time.time_ns() > op.deadline_ns:
                self._abort_handover(op)
            if op.done:
                self._reply(op)

    def _reply(self, op: PendingOp) -> None:
        """Answer a completed pending command (once) and forget it."""
        if op in self.ops:
            self.ops.remove(op)
        if self.ctl is not None:
            ok = "error" not in op.result
            self.ctl.send((op.req, ok, op.result if ok else op.result["error"]))

    def _abort_handover(self, op: PendingOp) -> None:
        """The target never acknowledged: keep serving the groups here, report the failure."""
        groups: set[int] = op.args["groups"]
        self.frozen -= groups
        held, self.frozen_q = self.frozen_q, []
        ch = op.channel
        if ch is not None and ch.temporary:
            ch.close()
            self.channels.remove(ch)
        self._release_ready()
        for d in held:  # back through the normal path, in arrival order
            self._on_datagram(d, time.time_ns(), False)
        op.done = True
        op.result = {"error": f"handover of groups {sorted(groups)} to {op.args['to']} timed out: "
                              f"{ch.last_error if ch is not None else 'no channel'}; groups kept here"}

    def _progress_handover(self, op: PendingOp) -> None:
        ch = op.channel
        assert ch is not None
        if not op.sent:
            # every batch with these flows must be acked by the target AND released here first
            unreleased = bool(self.inflight) and self.inflight[0].seq <= op.batch_seq
            if ch.needs_snapshot or ch.acked < op.batch_seq or unreleased:
                return
            groups: set[int] = op.args["groups"]
            ch.send(protocol.handover(self.epoch, op.batch_seq, groups))
            op.sent = True

    def start_handover(self, groups: set[int], to: str, dup_to: str,
                       timeout_ns: int = HANDOVER_TIMEOUT_NS) -> PendingOp:
        """Begin moving ``groups`` to instance ``to`` (its repl base address); completes async."""
        mine = {g for g in groups if g % self.cfg.workers == self.idx}
        existing = any(ch.name == to for ch in self.channels)
        ch = self._add_channel(to, temporary=not existing, joining=True)
        self.frozen |= mine
        self._close_batch(time.time_ns())
        op = PendingOp("handover", {"groups": mine, "to": to, "dup_to": dup_to}, self._req,
                       self.batch_seq, ch, deadline_ns=time.time_ns() + timeout_ns)
        self.ops.append(op)
        return op

    def _finish_handover(self, op: PendingOp) -> None:
        """The target acknowledged HANDOVER: it owns the groups. Answer the controller first (the
        move's downtime ends here; the controller re-steers meanwhile), then forget the groups'
        flows and forward everything held for them. No packet is read in between (same loop
        turn), so nothing of a moved group can be processed here after the answer."""
        groups: set[int] = op.args["groups"]
        dip, dport = parse_addr(op.args["dup_to"], "dup_to")
        addr = (dip, dport + self.idx)
        seqs = self.seqs
        moving = [(k, fs) for k, fs in seqs.items() if fs.group in groups]
        op.done = True
        op.result = {"groups": sorted(groups), "flows": sum(1 for _k, fs in moving if fs.owned),
                     "batch_seq": op.batch_seq}
        self._reply(op)
        for g in groups:
            self.moved[g] = addr
        leftovers: list[bytes] = []
        waiting = self.waiting
        removed_seq = self.removed_seq
        for key, fs in moving:
            del seqs[key]
            if fs.pending:
                waiting.discard(key)
                leftovers.extend(d for d, _rx, _f in fs.pending.values())
            if fs.owned:
                removed_seq.add(key)
        nf = self.nf
        replica_of = self.replica_of
        for sk in nf.keys_in_groups(groups):
            nf.remove(sk)
            if replica_of.pop(sk, None) is None:
                self.removed_state.add(sk)
        self.frozen -= groups
        keep: list[bytes] = []
        for d in leftovers + self.frozen_q:
            g = _SHIM.unpack_from(d)[5]
            if g in groups:
                self._forward(d, g)
            else:  # held for another handover still in progress
                keep.append(d)
        self.frozen_q = keep
        self.c["migrations_out"] += len(groups)
        ch = op.channel
        if ch is not None and ch.temporary:
            ch.close()
            self.channels.remove(ch)
            self._release_ready()

    # ---- control -------------------------------------------------------------------------------
    def _on_control(self) -> None:
        assert self.ctl is not None
        try:
            req, cmd, args = self.ctl.recv()
        except (EOFError, OSError):
            self.running = False
            return
        self._req = req
        try:
            res = self.command(cmd, args)
        except Exception as exc:  # a bad command must never kill the worker
            log.exception("command %s failed", cmd)
            self.ctl.send((req, False, f"{type(exc).__name__}: {exc}"))
            return
        if res is not None:
            self.ctl.send((req, True, res))

    def command(self, cmd: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Execute a control command; ``None`` means the reply is sent later (handover, drain)."""
        if cmd == "status":
            return self.status()
        if cmd == "metrics":
            return self.m.snapshot()
        if cmd == "promote":
            return self.promote(int(args["epoch"]), args.get("lease") or self.lease)
        if cmd == "fence":
            lease = args.get("lease") or self.lease
            ep = int(args["epoch"])
            self.known_epoch[lease] = max(self.known_epoch.get(lease, 0), ep)
            if lease == self.lease and self.role == "primary" and ep > self.epoch:
                self._fence_self(ep, "fence command")
            return {"lease": lease, "known_epoch": self.known_epoch[lease], "fenced": self.fenced}
        if cmd == "add_replica":
            self._add_channel(str(args["addr"]), joining=True)
            return {"replicas": [ch.name for ch in self.channels]}
        if cmd == "remove_replica":
            keep = []
            for ch in self.channels:
                if ch.name == args["addr"]:
                    ch.close()
                else:
                    keep.append(ch)
            self.channels = keep
            self._release_ready()
            return {"replicas": [ch.name for ch in self.channels]}
        if cmd == "export_state":
            return self.export_state(_groups(args.get("groups")))
        if cmd == "import_state":
            return {"imported": self.import_state(args["flows"])}
        if cmd == "handover":
            groups = _groups(args["groups"]) or set()
            timeout_ns = int(float(args.get("timeout_s", HANDOVER_TIMEOUT_NS / 1e9)) * 1e9)
            op = self.start_handover(groups, str(args["to"]), str(args["dup_to"]), timeout_ns)
            if not op.args["groups"]:
                self.ops.remove(op)
                return {"groups": [], "flows": 0, "batch_seq": op.batch_seq}
            self._progress_ops()
            return None
        if cmd == "drain":
            self._close_batch(time.time_ns())
            op = PendingOp("drain", {}, self._req)
            self.ops.append(op)
            self._progress_ops()
            return None
        if cmd == "shutdown":
            self.running = False
            return {"stopping": True}
        raise ValueError(f"unknown command {cmd!r}")

    def promote(self, epoch: int, lease: str) -> dict[str, Any]:
        """Secondary -> primary for ``lease`` at ``epoch``: own the replica flows, replay their
        uncommitted input in order, then serve (new flows on the data port are owned)."""
        if epoch < self._lease_epoch(lease):
            raise ValueError(f"promote: epoch {epoch} is not newer than the known epoch "
                             f"{self._lease_epoch(lease)} of lease {lease!r}")
        self.known_epoch[lease] = epoch
        self.lease = lease
        self.epoch = epoch
        self.role = "primary"
        self.fenced = False
        for ic in list(self.inbound.values()):
            if ic.hello is not None and ic.hello.lease == lease:
                ic.close()
        for fd in [f for f, x in self.inbound.items() if x.closed]:
            del self.inbound[fd]  # in place: the poll loop holds a reference to this dict
        replay_before = self.c["replayed"]
        dropped = self.unapplied.pop(lease, deque())  # maybe unreleased: replay their input instead
        self.snap_seen.pop(lease, None)  # a snapshot cut short by the primary's death: keep all
        n = self._adopt(None, lease)
        self.c["failovers"] += 1
        for ch in self.channels:
            ch.needs_snapshot = True  # new epoch: replicas get a fresh snapshot
            if ch.connected:
                self._send_snapshot(ch)
        return {"role": self.role, "epoch": epoch, "flows": n, "replayed": self.c["replayed"] - replay_before,
                "unreleased_batches": len(dropped)}

    def export_state(self, groups: set[int] | None) -> dict[str, Any]:
        nf = self.nf
        flows = []
        for sk in nf.keys_in_groups(groups):
            flows.append({"key": flowmod.key_to_str(sk), "group": nf.groups.get(sk, 0),
                          "state": nf.dump(sk).hex(), "view": nf.describe(sk),
                          "replica_of": self.replica_of.get(sk)})
        seqs = [{"key": flowmod.key_to_str(k), "group": fs.group, "epoch": fs.epoch, "next": fs.next,
                 "owned": fs.owned}
                for k, fs in self.seqs.items() if groups is None or fs.group in groups]
        return {"flows": flows, "seqs": seqs}

    def import_state(self, data: dict[str, Any]) -> int:
        """Install exported flows as *owned* (cold migration / rebuild from a checkpoint)."""
        n = 0
        for f in data.get("flows", []):
            sk = flowmod.key_from_str(f["key"])
            if int(f["group"]) % self.cfg.workers != self.idx:
                continue
            self.nf.load(sk, int(f["group"]), bytes.fromhex(f["state"]))
            self.replica_of.pop(sk, None)
            self.nf.dirty.add(sk)
            n += 1
        for s in data.get("seqs", []):
            k = flowmod.key_from_str(s["key"])
            if int(s["group"]) % self.cfg.workers != self.idx:
                continue
            fs = self.seqs.get(k) or FlowSeq(int(s["epoch"]), int(s["group"]), True)
            fs.owned = True
            fs.epoch, fs.next = int(s["epoch"]), int(s["next"])
            self.seqs[k] = fs
            self.dirty_seq.add(k)
        return n

    def status(self) -> dict[str, Any]:
        now = time.time_ns()
        owned = sum(1 for fs in self.seqs.values() if fs.owned)
        return {
            "worker": self.idx, "role": self.role, "lease": self.lease, "epoch": self.epoch,
            "fenced": self.fenced, "known_epochs": dict(self.known_epoch),
            "io": "mmsg" if burst_io.ACCELERATED else "python",
            "flows_owned": owned, "flows_replica": len(self.seqs) - owned,
            "states": len(self.nf.state), "states_replica": len(self.replica_of),
            "batch_seq": self.batch_seq, "inflight_batches": len(self.inflight),
            "input_queue": len(self.input_q), "replica_log": self.log_len,
            "released_seq": self.released_seq,
            "unapplied_deltas": sum(len(q) for q in self.unapplied.values()),
            "moved_groups": sorted(self.moved), "frozen_groups": sorted(self.frozen),
            "replicas": [{"addr": ch.name, "connected": ch.connected, "acked": ch.acked, "gating": ch.gating,
                          "lag_batches": self.batch_seq - ch.acked,
                          "last_rx_ms": (now - ch.last_rx_ns) / 1e6 if ch.last_rx_ns else None,
                          "error": ch.last_error, "bytes_sent": ch.bytes_sent,
                          "unsent_bytes": len(ch.out)} for ch in self.channels],
            "primaries": [{"peer": f"{ic.peer[0]}:{ic.peer[1]}",
                           "instance": ic.hello.instance if ic.hello else None,
                           "lease": ic.hello.lease if ic.hello else None}
                          for ic in self.inbound.values()],
        }

    def _close(self) -> None:
        for ch in self.channels:
            ch.close()
        for ic in self.inbound.values():
            ic.close()
        for s in (self.data_sock, self.dup_sock, self.egress, self.fwd_sock, self.listener):
            with contextlib.suppress(OSError):
                s.close()
        self.neigh.close()
        self.nf.close()


def _groups(value: Any) -> set[int] | None:
    if value is None or value == "all":
        return None
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}

