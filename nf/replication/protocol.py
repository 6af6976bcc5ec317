"""THE replication wire format: framed binary messages over one TCP connection per worker pair.

Why TCP with our own framing (not XML-RPC of ``{}`` as in DEFT's seeds): TCP gives a reliable FIFO
channel, so per-batch deltas arrive in batch order (the thesis' FIFO requirement, deft-seeds §5.6)
and an ACK for batch *n* implies every earlier delta was applied. Each message is::

    length u32 (bytes after this field) | type u8 | body

All integers are network byte order. A *flow entry* in DELTA/SNAPSHOT bodies is one of::

    SEQ entry   : key 13B | group u32 | stamper epoch u32 | next seq u64
                  (the replica may discard duplicated input below (epoch, next seq))
    STATE entry : key 13B | group u32 | length u32 | NF state blob   (length 0xFFFFFFFF = deleted)

Messages (``epoch`` is the sender's lease epoch; a replica refuses anything older than the newest
epoch it knows for that lease = fencing):

* ``HELLO``    lease, instance, epoch, workers, worker index, flow_groups — first frame of a channel
* ``DELTA``    epoch, batch seq, released, SEQ entries, STATE entries — the state change of one
  closed batch; ``released`` = highest batch seq whose output the primary has sent (see below)
* ``SNAPSHOT`` epoch, batch seq, flags (FIRST/LAST), entries — full state for a joining replica, in
  chunks: FIRST on the first (the replica drops the lease's held deltas and starts counting what
  it receives), none on the middle ones, LAST on the last (the replica drops the lease's flows the
  snapshot did not re-send); the LAST chunk is acknowledged like a delta with that batch seq
* ``ACK``      epoch, batch seq — the replica applied everything up to and including batch seq
* ``FENCED``   known epoch, batch seq — NACK: your epoch is older than the lease's (you are fenced)
* ``HEARTBEAT`` epoch, send time ns, released — liveness on an idle channel (echoed back by the
  replica) and the primary's latest ``released``
* ``RELEASED`` epoch, batch seq — sent right after the primary released the output of every batch
  up to batch seq (the replica may now apply those deltas); one per batch, before the next
  batch's output, so a crash re-releases at most the batch being sent
* ``HANDOVER`` epoch, batch seq, groups — "you own these flow groups from now on" (migration);
  sent only after every earlier batch of those flows was acknowledged *and released*, so the new
  owner's first output can never overtake the old owner's last (order-preserving move)

Why ``released``: output cannot be sent and recorded atomically. A replica acknowledges a delta as
soon as it holds it, but *applies* it (and discards the input it covers) only once the primary
reports the batch released (RELEASED, written to the channel right after the output's last
``sendto``; data already written survives a ``kill -9`` of the primary). If the primary dies in
between, the promoted replica drops the unapplied deltas and replays their input: every packet
counted in the state has left at least once (only a batch released in the microseconds before the
crash may leave twice; endpoints such as TCP deduplicate), and no state update is lost or applied
twice.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

HELLO = 1
DELTA = 2
SNAPSHOT = 3
ACK = 4
FENCED = 5
HEARTBEAT = 6
HANDOVER = 7
RELEASED = 8

NAMES = {HELLO: "HELLO", DELTA: "DELTA", SNAPSHOT: "SNAPSHOT", ACK: "ACK", FENCED: "FENCED",
         HEARTBEAT: "HEARTBEAT", HANDOVER: "HANDOVER", RELEASED: "RELEASED"}

SNAP_FIRST = 1
SNAP_LAST = 2

DELETED = 0xFFFFFFFF
MAX_FRAME = 64 * 1024 * 1024  # bytes; a larger length means a corrupt or hostile stream

_LEN = struct.Struct("!I")
_HDR = struct.Struct("!IB")
_EPOCH_SEQ = struct.Struct("!IQ")
_SNAP_HDR = struct.Struct("!IQB")
_COUNTS = struct.Struct("!II")
_SEQ_ENTRY = struct.Struct("!13sIIQ")
_STATE_HDR = struct.Struct("!13sII")
_HELLO = struct.Struct("!IHHI")
_HB = struct.Struct("!IQQ")
_DELTA_HDR = struct.Struct("!IQQ")


class ProtocolError(ValueError):
    """A frame cannot be decoded; the message names the message type and the problem."""


@dataclass
class FlowDelta:
    """Entries of one DELTA/SNAPSHOT: ``seqs`` (key, group, epoch, next seq) and ``states``
    (key, group, blob or ``None`` for a deleted flow)."""

    seqs: list[tuple[bytes, int, int, int]] = field(default_factory=list)
    states: list[tuple[bytes, int, bytes | None]] = field(default_factory=list)


def _frame(mtype: int, body: bytes) -> bytes:
    return _HDR.pack(len(body) + 1, mtype) + body


def _encode_entries(d: FlowDelta) -> bytes:
    parts = [_COUNTS.pack(len(d.seqs), len(d.states))]
    parts.extend(itertools.starmap(_SEQ_ENTRY.pack, d.seqs))  # C loop: a 10k-flow snapshot is hot
    pack_st = _STATE_HDR.pack
    for k, g, blob in d.states:
        if blob is None:
            parts.append(pack_st(k, g, DELETED))
        else:
            parts.append(pack_st(k, g, len(blob)))
            parts.append(blob)
    return b"".join(parts)


def _decode_entries(body: bytes, off: int, what: str) -> FlowDelta:
    try:
        nseq, nst = _COUNTS.unpack_from(body, off)
        off += _COUNTS.size
        end = off + nseq * _SEQ_ENTRY.size
        if end > len(body):
            raise ProtocolError(f"{what}: {nseq} sequence entries run past the frame")
        # fixed-size entries: one C loop (iter_unpack) instead of one Python call per flow
        d = FlowDelta(list(_SEQ_ENTRY.iter_unpack(memoryview(body)[off:end])))
        off = end
        hs = _STATE_HDR.size
        for _ in range(nst):
            k, g, ln = _STATE_HDR.unpack_from(body, off)
            off += hs
            if ln == DELETED:
                d.states.append((k, g, None))
            else:
                if off + ln > len(body):
                    raise ProtocolError(f"{what}: state blob of {ln} bytes runs past the frame")
                d.states.append((k, g, body[off:off + ln]))
                off += ln
    except struct.error as exc:
        raise ProtocolError(f"{what}: truncated entries: {exc}") from exc
    if off != len(body):
        raise ProtocolError(f"{what}: {len(body) - off} trailing bytes")
    return d


def _str(s: str) -> bytes:
    b = s.encode()
    if len(b) > 255:
        raise ValueError(f"{s!r}: longer than 255 bytes")
    return bytes((len(b),)) + b


# ---- encoders ------------------------------------------------------------------------------
def hello(lease: str, instance: str, epoch: int, workers: int, worker: int, flow_groups: int) -> bytes:
    return _frame(HELLO, _str(lease) + _str(instance) + _HELLO.pack(epoch, workers, worker, flow_groups))


def delta(epoch: int, batch_seq: int, d: FlowDelta, released: int = 0) -> bytes:
    return _frame(DELTA, _DELTA_HDR.pack(epoch, batch_seq, released) + _encode_entries(d))


def snapshot(epoch: int, batch_seq: int, flags: int, d: FlowDelta) -> bytes:
    return _frame(SNAPSHOT, _SNAP_HDR.pack(epoch, batch_seq, flags) + _encode_entries(d))


def ack(epoch: int, batch_seq: int) -> bytes:
    return _frame(ACK, _EPOCH_SEQ.pack(epoch, batch_seq))


def fenced(known_epoch: int, batch_seq: int) -> bytes:
    return _frame(FENCED, _EPOCH_SEQ.pack(known_epoch, batch_seq))


def released(epoch: int, batch_seq: int) -> bytes:
    return _frame(RELEASED, _EPOCH_SEQ.pack(epoch, batch_seq))


def heartbeat(epoch: int, t_ns: int, released: int = 0) -> bytes:
    return _frame(HEARTBEAT, _HB.pack(epoch, t_ns, released))


def handover(epoch: int, batch_seq: int, groups: Iterable[int]) -> bytes:
    gl = sorted(set(groups))
    return _frame(HANDOVER, _EPOCH_SEQ.pack(epoch, batch_seq) + struct.pack(f"!I{len(gl)}I", len(gl), *gl))


# ---- decoded messages ------------------------------------------------------------------------
@dataclass
class Hello:
    lease: str
    instance: str
    epoch: int
    workers: int
    worker: int
    flow_groups: int


@dataclass
class Delta:
    epoch: int
    batch_seq: int
    entries: FlowDelta
    snapshot_flags: int = 0  # SNAP_* bits of a SNAPSHOT chunk (0: a middle chunk, or a DELTA)
    released: int = 0  # DELTA: highest batch seq whose output the primary sent
    #: a SNAPSHOT chunk (applied at once), not a DELTA (held until released). Its own field because
    #: a middle chunk has no flags: read as FIRST|LAST, it dropped the chunks before it
    snapshot: bool = False


@dataclass
class Ack:
    epoch: int
    batch_seq: int
    fenced: bool = False  # True for a FENCED answer (epoch = the replica's known epoch)


@dataclass
class Heartbeat:
    epoch: int
    t_ns: int
    released: int = 0


@dataclass
class Released:
    epoch: int
    batch_seq: int


@dataclass
class Handover:
    epoch: int
    batch_seq: int
    groups: list[int]


Message = Hello | Delta | Ack | Heartbeat | Handover | Released


def decode(mtype: int, body: bytes) -> Message:
    """Decode one frame body of type ``mtype``; raises :class:`ProtocolError`."""
    name = NAMES.get(mtype, f"type {mtype}")
    try:
        if mtype == DELTA:
            e, s, r = _DELTA_HDR.unpack_from(body)
            return Delta(e, s, _decode_entries(body, _DELTA_HDR.size, name), 0, r)
        if mtype == SNAPSHOT:
            e, s, fl = _SNAP_HDR.unpack_from(body)
            return Delta(e, s, _decode_entries(body, _SNAP_HDR.size, name), fl, snapshot=True)
        if mtype in (ACK, FENCED):
            e, s = _EPOCH_SEQ.unpack_from(body)
            return Ack(e, s, fenced=mtype == FENCED)
        if mtype == RELEASED:
            return Released(*_EPOCH_SEQ.unpack_from(body))
        if mtype == HEARTBEAT:
            return Heartbeat(*_HB.unpack_from(body))
        if mtype == HANDOVER:
            e, s = _EPOCH_SEQ.unpack_from(body)
            (n,) = struct.unpack_from("!I", body, _EPOCH_SEQ.size)
            groups = list(struct.unpack_from(f"!{n}I", body, _EPOCH_SEQ.size + 4))
            return Handover(e, s, groups)
        if mtype == HELLO:
            ln = body[0]
            lease = body[1:1 + ln].decode()
            off = 1 + ln
            ln2 = body[off]
            inst = body[off + 1:off + 1 + ln2].decode()
            off += 1 + ln2
            return Hello(lease, inst, *_HELLO.unpack_from(body, off))
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{name}: malformed body ({len(body)} bytes): {exc}") from exc
    raise ProtocolError(f"unknown message type {mtype}")


class FrameReader:
    """Incremental frame splitter for a non-blocking socket: feed bytes, get (type, body) frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        buf = self._buf
        off = 0
        n = len(buf)
        while n - off >= 4:
            (ln,) = _LEN.unpack_from(buf, off)
            if ln < 1 or ln > MAX_FRAME:
                raise ProtocolError(f"frame length {ln} out of range 1..{MAX_FRAME}")
            if n - off - 4 < ln:
                break
            out.append((buf[off + 4], bytes(buf[off + 5:off + 4 + ln])))
            off += 4 + ln
        if off:
            del buf[:off]
        return out
