"""The sink: receive stamped packets and count, per flow, what a user of the network notices.

Per flow (keyed by the stamp's ``flow_id``, so it survives NAT and NF chains):

- ``received``: every stamped packet; ``unique``: distinct sequence numbers; ``duplicates``:
  packets whose seq was already seen (a per-flow byte map, 1 byte per seq, grown on demand);
- ``reordered``: a new seq lower than the highest seen so far (RFC 4737 "reordered" singleton);
- ``gap_loss``: ``max_seq + 1 - unique`` (exact loss comes from merging with the generator's
  sent counts, see ``results.merge``);
- one-way latency = receive time - stamp ``tx_ns`` (both CLOCK_REALTIME: exact on one machine,
  as good as PTP/NTP across servers; see docs/traffic.md); p50/p99 from ``latency.py``.

A packet on a sink port that is too short or lacks the stamp magic is counted as ``malformed`` and
skipped: the sink never dies on bad input. Sequence numbers more than ``SEQ_WINDOW`` ahead of a
flow's highest are ``out_of_window`` (they would otherwise make the byte map huge).

Modes: ``udp`` (kernel UDP sockets on the ports: cheap) and ``packet`` (AF_PACKET: sees TCP too;
UDP sockets with a tiny buffer are still opened on the ports, so the kernel does not answer the
traffic with ICMP port-unreachable).

The sink stops at the FIRST of: ``idle_timeout_s`` without packets (after the first one),
``duration_s + grace_s`` after the first packet, ``first_packet_timeout_s`` without any packet
since start, ``max_packets`` received, or ``stop`` set (SIGTERM). Counting the traffic bound from the
first packet means a sink started early (orchestration over SSH takes seconds) never cuts a run short.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from traffic import latency, stamp
from traffic.priority import set_priority
from traffic.results import FlowResult, SinkReport

log = logging.getLogger(__name__)

SEQ_WINDOW = 1 << 22  # largest accepted forward jump of a flow's seq (packets)
MAX_FLOWS = 65536
POLL_MS = 100
BUF_BYTES = 65536
PACKET_OUTGOING = 4
ETH_P_IP = 0x0800


@dataclass
class SinkConfig:
    """Runtime settings of one sink (built from a profile's ``sink`` section plus CLI overrides)."""

    ports: list[int]
    mode: str = "udp"
    bind: str = "0.0.0.0"
    interface: str = ""
    duration_s: float = 10.0  # expected traffic duration; the sink runs at most duration_s + grace_s
    grace_s: float = 3.0
    idle_timeout_s: float = 2.0
    first_packet_timeout_s: float = 60.0
    max_packets: int = 0
    rcvbuf_bytes: int = 8 * 1024 * 1024
    nice: int = 0  # process priority (-20..19), applied in open()
    ready_file: Path | None = None  # touched once the sockets are bound (for orchestration)


class FlowState:
    """Counters of one flow; plain attributes with __slots__ for speed in the receive loop."""

    __slots__ = ("bytes", "dups", "first", "hist", "last", "lat_max", "lat_n", "lat_sum", "max_seq",
                 "oow", "received", "reordered", "seen", "src", "unique")

    def __init__(self, src: str) -> None:
        self.src = src
        self.received = self.unique = self.dups = self.reordered = self.oow = self.bytes = 0
        self.max_seq = -1
        self.seen = bytearray(1024)
        self.first = self.last = 0
        self.hist: dict[int, int] = {}
        self.lat_n = self.lat_sum = self.lat_max = 0


@dataclass
class SinkState:
    flows: dict[int, FlowState] = field(default_factory=dict)
    malformed: int = 0
    negative_latency: int = 0


def _account(st: FlowState, seq: int, tx_ns: int, rx_ns: int, nbytes: int, state: SinkState) -> None:
    st.received += 1
    st.bytes += nbytes
    st.last = rx_ns
    seen = st.seen
    if seq >= len(seen):
        if seq > st.max_seq + SEQ_WINDOW:
            st.oow += 1
            return
        seen.extend(bytes(max(len(seen), seq + 1 - len(seen))))
    if seen[seq]:
        st.dups += 1
        return
    seen[seq] = 1
    st.unique += 1
    if seq < st.max_seq:
        st.reordered += 1
    else:
        st.max_seq = seq
    if tx_ns:
        lat_ns = rx_ns - tx_ns
        if lat_ns < 0:
            state.negative_latency += 1
            lat_ns = 0
        us = lat_ns // 1000
        idx = us if us < 64 else (((us.bit_length() - 6) << 6) | (us >> (us.bit_length() - 6)))
        h = st.hist
        h[idx] = h.get(idx, 0) + 1
        st.lat_n += 1
        st.lat_sum += us
        st.lat_max = max(st.lat_max, us)


class Sink:
    """Open the sockets (``open``), then ``run`` until a stop condition; ``report`` summarises."""

    def __init__(self, cfg: SinkConfig) -> None:
        if not cfg.ports:
            raise ValueError("sink: no ports to listen on")
        if cfg.mode not in ("udp", "packet"):
            raise ValueError(f"sink: mode {cfg.mode!r} is not udp or packet")
        self.cfg = cfg
        self.state = SinkState()
        self._socks: list[socket.socket] = []
        self._capture: socket.socket | None = None
        self.started_ns = 0
        self.stopped_ns = 0
        self.stop_reason = ""
        self._buf = bytearray(BUF_BYTES)  # one receive buffer for the whole run (no per-wake-up allocation)

    def open(self) -> None:
        cfg = self.cfg
        if cfg.nice:
            set_priority(cfg.nice)
        try:
            for port in cfg.ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                rcv = cfg.rcvbuf_bytes if cfg.mode == "udp" else 4096
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcv)
                s.bind((cfg.bind, port))
                s.setblocking(False)
            if cfg.mode == "packet":
                c = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
                self._capture = c
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.rcvbuf_bytes)
                if cfg.interface:
                    c.bind((cfg.interface, ETH_P_IP))
                c.setblocking(False)
        except OSError as exc:
            self.close()
            raise OSError(f"sink: cannot listen on ports {cfg.ports} ({cfg.mode}): {exc}") from exc
        if cfg.ready_file:
            cfg.ready_file.write_text(str(cfg.ports) + "\n")

    def close(self) -> None:
        for s in self._socks:
            s.close()
        self._socks.clear()
        if self._capture:
            self._capture.close()
            self._capture = None

    def run(self, stop: threading.Event | None = None) -> SinkReport:
        stop = stop or threading.Event()
        if not self._socks:
            self.open()
        try:
            self._run(stop)
        finally:
            self.close()
        return self.report()

    def _run(self, stop: threading.Event) -> None:
        cfg = self.cfg
        poller = select.poll()
        if cfg.mode == "udp":
            sources = {s.fileno(): s for s in self._socks}
        else:
            assert self._capture is not None
            sources = {self._capture.fileno(): self._capture}
        for fd in sources:
            poller.register(fd, select.POLLIN)
        drain = self._drain_udp if cfg.mode == "udp" else self._drain_packet
        self.started_ns = time.time_ns()
        t0 = time.monotonic()
        hard_deadline = t0 + cfg.first_packet_timeout_s
        last_rx = 0.0
        total = 0
        while True:
            now = time.monotonic()
            if stop.is_set():
                self.stop_reason = "signal"
                break
            if now >= hard_deadline:
                self.stop_reason = "duration" if last_rx else "no-traffic"
                break
            if last_rx and now - last_rx >= cfg.idle_timeout_s:
                self.stop_reason = "idle"
                break
            if cfg.max_packets and total >= cfg.max_packets:
                self.stop_reason = "count"
                break
            events = poller.poll(POLL_MS)
            for fd, _ in events:
                got = drain(sources[fd], cfg.max_packets - total if cfg.max_packets else 0)
                if got:
                    if not last_rx:  # first packet: the traffic's own time bound starts now
                        hard_deadline = time.monotonic() + cfg.duration_s + cfg.grace_s
                    total += got
                    last_rx = time.monotonic()
        self.stopped_ns = time.time_ns()

    def _drain_udp(self, sock: socket.socket, limit: int) -> int:
        """Read until EAGAIN (or ``limit`` packets); returns packets read."""
        state = self.state
        flows = state.flows
        buf = self._buf
        recvfrom_into = sock.recvfrom_into
        unpack_from = stamp.STAMP.unpack_from
        magic = stamp.MAGIC
        now_ns = time.time_ns
        account = _account
        n_read = 0
        while not limit or n_read < limit:
            try:
                n, addr = recvfrom_into(buf)
            except BlockingIOError:
                break
            n_read += 1
            rx = now_ns()
            if n < stamp.STAMP_LEN:
                state.malformed += 1
                continue
            m, fid, seq, tx = unpack_from(buf, 0)
            if m != magic:
                state.malformed += 1
                continue
            st = flows.get(fid)
            if st is None:
                if len(flows) >= MAX_FLOWS:
                    state.malformed += 1
                    continue
                st = flows[fid] = FlowState(f"udp {addr[0]}:{addr[1]}")
                st.first = rx
            account(st, seq, tx, rx, n, state)
        return n_read

    def _drain_packet(self, sock: socket.socket, limit: int) -> int:
        state = self.state
        flows = state.flows
        ports = set(self.cfg.ports)
        buf = self._buf
        recvfrom_into = sock.recvfrom_into
        unpack_from = stamp.STAMP.unpack_from
        magic = stamp.MAGIC
        now_ns = time.time_ns
        n_read = 0
        while not limit or n_read < limit:
            try:
                n, addr = recvfrom_into(buf)
            except BlockingIOError:
                break
            if addr[2] == PACKET_OUTGOING or n < 20 or buf[0] >> 4 != 4:
                continue
            ihl = (buf[0] & 15) * 4
            proto = buf[9]
            if proto == 17:
                l4 = 8
            elif proto == 6:
                if n < ihl + 20:
                    continue
                l4 = (buf[ihl + 12] >> 4) * 4
            else:
                continue
            if n < ihl + 4 or ((buf[ihl + 2] << 8) | buf[ihl + 3]) not in ports:
                continue
            n_read += 1
            rx = now_ns()
            off = ihl + l4
            if n - off < stamp.STAMP_LEN:
                state.malformed += 1
                continue
            m, fid, seq, tx = unpack_from(buf, off)
            if m != magic:
                state.malformed += 1
                continue
            st = flows.get(fid)
            if st is None:
                if len(flows) >= MAX_FLOWS:
                    state.malformed += 1
                    continue
                src = socket.inet_ntoa(bytes(buf[12:16]))
                sport = (buf[ihl] << 8) | buf[ihl + 1]
                st = flows[fid] = FlowState(f"{'udp' if proto == 17 else 'tcp'} {src}:{sport}")
                st.first = rx
            _account(st, seq, tx, rx, n, state)
        return n_read

    def report(self) -> SinkReport:
        """Per-flow results and totals (call after ``run``)."""
        flows: list[FlowResult] = []
        for fid in sorted(self.state.flows):
            st = self.state.flows[fid]
            dur = (st.last - st.first) / 1e9
            flows.append(
                FlowResult(
                    flow_id=fid, src=st.src, received=st.received, unique=st.unique,
                    duplicates=st.dups, reordered=st.reordered, out_of_window=st.oow,
                    max_seq=st.max_seq, gap_loss=st.max_seq + 1 - st.unique, bytes=st.bytes,
                    duration_s=dur,
                    throughput_pps=(st.received - 1) / dur if dur > 0 else 0.0,
                    throughput_Bps=st.bytes / dur if dur > 0 else 0.0,
                    latency_samples=st.lat_n,
                    latency_mean_us=st.lat_sum / st.lat_n if st.lat_n else 0.0,
                    latency_p50_us=latency.percentile(st.hist, 0.50),
                    latency_p99_us=latency.percentile(st.hist, 0.99),
                    latency_max_us=float(st.lat_max),
                )
            )
        states = list(self.state.flows.values())
        first = min((s.first for s in states), default=0)
        last = max((s.last for s in states), default=0)
        dur = (last - first) / 1e9
        received = sum(s.received for s in states)
        allh = latency.merge(s.hist for s in states)
        return SinkReport(
            host=socket.gethostname(), mode=self.cfg.mode, ports=list(self.cfg.ports),
            started_ns=self.started_ns,
            duration_s=(self.stopped_ns - self.started_ns) / 1e9 if self.stopped_ns else 0.0,
            stop_reason=self.stop_reason, received=received,
            unique=sum(s.unique for s in states), duplicates=sum(s.dups for s in states),
            reordered=sum(s.reordered for s in states), malformed=self.state.malformed,
            negative_latency=self.state.negative_latency, bytes=sum(s.bytes for s in states),
            throughput_pps=(received - 1) / dur if dur > 0 else 0.0,
            latency_p50_us=latency.percentile(allh, 0.50), latency_p99_us=latency.percentile(allh, 0.99),
            flows=flows,
        )


def unpack_ports(text: str) -> list[int]:
    """``"9000,9001"`` -> ``[9000, 9001]`` with a clear error (CLI helper)."""
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise ValueError(f"ports: {text!r} is not a comma-separated list of numbers") from exc
    for p in ports:
        if not 1 <= p <= 65535:
            raise ValueError(f"ports: {p} is not a port (1..65535)")
    return ports

