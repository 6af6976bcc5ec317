"""Replica side of replication: accepted channels from primaries' workers.

The worker's poll loop reads frames from each :class:`InboundChannel` and applies them
(``nf.engine.Worker._on_replication``): DELTA/SNAPSHOT entries are installed as replica state and
discard the duplicated input the primary has committed past; the replica answers ACK only when the
message's epoch is not older than the newest epoch it knows for that lease (its own promotions,
``fence`` commands, and the lease record in the store) — otherwise FENCED, so a partitioned old
primary can never complete an output commit after a promotion.
"""

from __future__ import annotations

import contextlib
import socket

from nf.replication import protocol


class InboundChannel:
    """One accepted replication connection (from one primary worker)."""

    def __init__(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.peer = peer
        self.reader = protocol.FrameReader()
        self.hello: protocol.Hello | None = None
        self.out = bytearray()
        self.closed = False
        #: snapshot in progress: entries are collected until the LAST chunk
        self.snap: protocol.FlowDelta | None = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[protocol.Message]:
        try:
            data = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            self.close()
            return []
        if not data:
            self.close()
            return []
        try:
            return [protocol.decode(t, b) for t, b in self.reader.feed(data)]
        except protocol.ProtocolError:
            self.close()
            raise

    def send(self, frame: bytes) -> None:
        self.out += frame
        self.flush()

    def flush(self) -> None:
        if not self.out or self.closed:
            return
        try:
            n = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self.out[:n]

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.closed = True
