"""Primary side of replication: one non-blocking TCP channel per replica worker.

The worker owns its channels and drives them from its poll loop (no threads): ``send`` appends a
frame to an output buffer that is flushed when the socket is writable, ``on_readable`` returns the
decoded ACK/FENCED/HEARTBEAT frames. Output commit is the worker's job: it releases batch *n*
only when ``acked >= n`` on every channel.

A channel that (re)connects first sends HELLO and then a full SNAPSHOT (``needs_snapshot``): a
replica that joins late, or reconnects after a broken connection, converges to the primary's
state, and the snapshot's ack covers every earlier batch. While a channel is down its batches
stay unacknowledged, so output stops rather than being released unreplicated (output commit);
the control plane removes a dead replica (``remove_replica``) to resume.

The snapshot is *streamed* (:class:`SnapshotStream`): the worker dumps ``snapshot_chunk_flows``
flows per loop turn, between packet bursts, so a pre-copy of 10k flows never stops forwarding for
the whole dump. The flows are not frozen meanwhile. Why the replica still converges: every flow
the worker changes or removes after the stream started is remembered (``touched``), and the last
chunk re-sends exactly those, dumped at that moment, after closing the open batch. So each flow's
last word is the state at the last chunk, whose batch seq the replica's ack covers. No DELTA or
RELEASED goes to the channel before that last chunk (``needs_snapshot`` stays set), as before;
heartbeats do, and the ``released`` they carry finds no held delta to apply. The replica keeps what
it held of the lease until the last chunk (a reconnecting secondary), then drops what the snapshot
did not re-send.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import time

from nf.replication import protocol

log = logging.getLogger(__name__)

RECONNECT_NS = 100_000_000  # 100 ms between connection attempts


class SnapshotStream:
    """A snapshot being streamed to one channel: the flows to dump, how far, what changed since.

    ``seq_keys``/``state_keys`` are the wire-flow and NF-state keys present when the stream
    started (dumped in order from ``pos``; a key gone by then is skipped); ``touched_seq``/
    ``touched_state`` collect the keys of every batch closed (changed or removed flows) while the
    stream runs, re-sent by the last chunk."""

    __slots__ = ("pos", "seq_keys", "state_keys", "touched_seq", "touched_state")

    def __init__(self, seq_keys: list[bytes], state_keys: list[bytes]) -> None:
        self.seq_keys = seq_keys
        self.state_keys = state_keys
        self.pos = 0
        self.touched_seq: set[bytes] = set()
        self.touched_state: set[bytes] = set()

    @property
    def remaining(self) -> int:
        """Flows (of the longer key list) not dumped yet."""
        return max(len(self.seq_keys), len(self.state_keys)) - self.pos


class ReplicaChannel:
    """Outbound channel to ``addr`` = (ip, port of *this* worker's peer)."""

    def __init__(self, addr: tuple[str, int], name: str, temporary: bool = False,
                 joining: bool = False) -> None:
        self.addr = addr
        self.name = name  # "ip:base_port" as given to add_replica (for status / remove)
        self.temporary = temporary  # opened for a handover only
        self.sock: socket.socket | None = None
        self.connecting = False
        self.connected = False
        self.needs_snapshot = True
        self.acked = 0
        #: does this channel hold back output (output commit)? A replica from the instance config
        #: does from the start; one added at run time (add_replica: migration target, new
        #: secondary) only once it acknowledged its first snapshot — before that it has no state
        #: to fail over to, and holding output for its snapshot would stall (and tail-drop) input
        self.gating = not joining
        #: batch seq of the snapshot sent on this connection (-1: not sent yet)
        self.snap_seq = -1
        #: the snapshot being streamed on this connection (None: none, or sent)
        self.stream: SnapshotStream | None = None
        self.reader = protocol.FrameReader()
        self.out = bytearray()
        self.last_tx_ns = 0
        self.last_rx_ns = 0
        self.next_attempt_ns = 0
        self.bytes_sent = 0
        self.last_error = ""

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def start_connect(self, now_ns: int) -> None:
        """Begin a non-blocking connect (called by the worker when down and the backoff expired)."""
        self.close()
        self.next_attempt_ns = now_ns + RECONNECT_NS
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = s.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            self.last_error = f"connect: {errno.errorcode.get(err, err)}"
            s.close()
            return
        self.sock = s
        self.connecting = True

    def finish_connect(self) -> bool:
        """Called when the socket became writable while connecting; True when connected."""
        assert self.sock is not None
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.connecting = False
        if err:
            self.last_error = f"connect: {errno.errorcode.get(err, err)}"
            self.close()
            return False
        self.connected = True
        self.needs_snapshot = True
        self.last_rx_ns = time.time_ns()
        self.last_error = ""
        log.info("replication channel to %s:%d up", *self.addr)
        return True

    def send(self, frame: bytes) -> None:
        self.out += frame
        self.bytes_sent += len(frame)
        self.flush()

    def flush(self) -> None:
        if not self.connected or not self.out or self.sock is None:
            return
        try:
            n = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.fail(f"send: {exc}")
            return
        del self.out[:n]
        self.last_tx_ns = time.time_ns()

    def on_readable(self) -> list[protocol.Message]:
        assert self.sock is not None
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as exc:
            self.fail(f"recv: {exc}")
            return []
        if not data:
            self.fail("closed by replica")
            return []
        self.last_rx_ns = time.time_ns()
        try:
            return [protocol.decode(t, b) for t, b in self.reader.feed(data)]
        except protocol.ProtocolError as exc:
            self.fail(f"protocol: {exc}")
            return []

    def fail(self, why: str) -> None:
        if self.connected:
            log.warning("replication channel to %s:%d down: %s", self.addr[0], self.addr[1], why)
        self.last_error = why
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.connected = False
        self.connecting = False
        self.snap_seq = -1
        self.stream = None
        self.out.clear()
        self.reader = protocol.FrameReader()
