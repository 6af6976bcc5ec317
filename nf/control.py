"""The control API of an NF instance, and its Python client :class:`ControlClient`.

Transport: newline-delimited JSON over a Unix stream socket (``/run/deft/nf/<instance>.sock`` by
default) and, when ``control_tcp`` is set, over TCP on the management address. One request per
line, one answer per line, any number of requests per connection::

    -> {"cmd": "promote", "epoch": 7}
    <- {"ok": true, "result": {...}}          or   {"ok": false, "error": "promote: epoch 3 is ..."}

Commands (instance-wide; the instance fans them out to every worker and merges the answers):

=================  ==========================================================================
``ping``           liveness, answered by the instance's main process without asking the workers
                   (so never queued behind packets): ``workers_alive``, ``progress_age_ms`` (the
                   slowest worker's last loop iteration) - what the failure detector polls
``status``         role, lease, epoch, fenced, flows, per-worker replication channels (lag, last
                   heard ms) — what the agent polls; ``io``: ``mmsg`` when the workers use the
                   compiled burst I/O (``nf/_burst.c``), ``python`` otherwise (``nf.burst``)
``metrics``        DEFT's metric set + FT counters (``nf.metrics.summarize``) and ``raw`` counters
``promote``        ``epoch`` (int, required), ``lease`` (default: own): secondary -> primary; the
                   replica flows are owned and their uncommitted buffered input is replayed in order
``fence``          ``epoch``, ``lease``: never accept (or, for our own lease, never release) anything
                   older than ``epoch``
``add_replica``    ``addr`` = ``ip:repl_port`` (base port) of a new secondary/cluster member; it gets a
                   snapshot, then every delta; output commit then waits for it too
``remove_replica`` ``addr``: stop replicating to (and waiting for) that member
``export_state``   ``groups`` (list of flow groups, or ``"all"``): per-flow state + sequencing
``import_state``   ``flows`` (an ``export_state`` result): install as owned flows
``handover``       ``groups``, ``to`` (target ``ip:repl_port``), ``dup_to`` (target ``ip:dup_port``):
                   cooperative, loss-free and order-preserving move of flow groups at a batch
                   boundary (answers when the target owns them; then redirect the stamper/OVS);
                   ``timeout_s`` (default 20): if the target does not take over in time the move
                   is aborted, the groups stay here and the command fails
``drain``          close the open batch and answer when every output was released
``shutdown``       stop the workers and exit
=================  ==========================================================================
"""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any

COMMANDS: tuple[str, ...] = ("ping", "status", "metrics", "promote", "fence", "add_replica", "remove_replica",
                             "export_state", "import_state", "handover", "drain", "shutdown")


class ControlError(RuntimeError):
    """The instance refused a command or could not be reached; the message says which and why."""


class ControlClient:
    """Blocking client of one instance's control API (Unix path or ``host:port``)."""

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buf = b""
        #: answers still owed on this connection to requests that timed out (skipped when they come)
        self._late = 0
        #: time.monotonic() of the latest answer read from the instance, on time or late; None
        #: before the first. Why: a slow but live instance (CPU-starved) answers late, a dead or
        #: frozen one never; the failure detector tells them apart by this, not by one timeout.
        self.last_answer_at: float | None = None

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        try:
            if "/" in self.address:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(self.timeout_s)
                deadline = time.monotonic() + self.timeout_s
                while True:
                    try:
                        s.connect(self.address)
                        break
                    except BlockingIOError:
                        # a full listen backlog (e.g. a server that was frozen while clients kept
                        # connecting) refuses with EAGAIN instead of blocking like TCP: retry
                        if time.monotonic() >= deadline:
                            s.close()
                            raise
                        time.sleep(0.01)
            else:
                host, _, port = self.address.rpartition(":")
                s = socket.create_connection((host, int(port)), timeout=self.timeout_s)
        except OSError as exc:
            raise ControlError(f"control {self.address}: cannot connect: {exc}") from exc
        self._sock = s
        return s

    def call(self, cmd: str, **args: Any) -> Any:
        """Send one command and return its ``result``; raises :class:`ControlError`.

        A timeout keeps the connection: the instance answers every request in order, so the late
        answer is read and skipped by the next call (and counts in :attr:`last_answer_at`).
        Reconnecting instead would make a slow instance accept a connection and start a handler
        thread for every retry: more work exactly when it has the least CPU (on the lab, a primary
        capped at 0.05 CPU stopped accepting at all under the failure detector's retries)."""
        s = self._connect()
        req = json.dumps({"cmd": cmd, **args}).encode() + b"\n"
        deadline = time.monotonic() + self.timeout_s
        try:
            s.settimeout(self.timeout_s)
            s.sendall(req)
        except OSError as exc:  # a request cut short would corrupt the stream: never reuse it
            self.close()
            raise ControlError(f"control {self.address}: {cmd}: {exc}") from exc
        try:
            while True:
                line = self._read_line(s, deadline, cmd)
                if self._late == 0:
                    break
                self._late -= 1
        except TimeoutError as exc:
            self._late += 1
            raise ControlError(f"control {self.address}: {cmd}: timed out") from exc
        except ControlError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise ControlError(f"control {self.address}: {cmd}: {exc}") from exc
        ans = json.loads(line)
        if not ans.get("ok"):
            raise ControlError(f"control {self.address}: {cmd}: {ans.get('error')}")
        return ans.get("result")

    def _read_line(self, s: socket.socket, deadline: float, cmd: str) -> bytes:
        """The next answer line; ``TimeoutError`` at ``deadline`` (time.monotonic(), s)."""
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {cmd} within {self.timeout_s:g} s")
            s.settimeout(left)
            chunk = s.recv(1 << 20)
            if not chunk:
                raise ControlError(f"control {self.address}: connection closed during {cmd}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        self.last_answer_at = time.monotonic()
        return line

    def wait_closed(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` (s) for the instance to close this connection; True if it did.

        Why: when an instance's process dies its kernel closes every socket it held at once (FIN,
        or RST), long before a heartbeat interval runs out. The failure detector waits between
        heartbeats on its kept connection with this, so it notices a killed primary within a
        scheduling delay instead of an interval. A late answer arriving meanwhile is buffered (and
        skipped by the next call, as always). Without a connection it just sleeps."""
        s = self._sock
        if s is None:
            time.sleep(max(0.0, timeout_s))
            return False
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                return False
            try:
                chunk = s.recv(1 << 20)
            except (BlockingIOError, InterruptedError, TimeoutError):
                continue
            except OSError:  # reset by the peer: it is gone
                self.close()
                return True
            if not chunk:
                self.close()
                return True
            self._buf += chunk

    def ping(self) -> dict[str, Any]:
        return dict(self.call("ping"))

    def status(self) -> dict[str, Any]:
        return dict(self.call("status"))

    def metrics(self) -> dict[str, Any]:
        return dict(self.call("metrics"))

    def promote(self, epoch: int, lease: str | None = None) -> dict[str, Any]:
        return dict(self.call("promote", epoch=epoch, **({"lease": lease} if lease else {})))

    def fence(self, epoch: int, lease: str | None = None) -> dict[str, Any]:
        return dict(self.call("fence", epoch=epoch, **({"lease": lease} if lease else {})))

    def add_replica(self, addr: str) -> dict[str, Any]:
        return dict(self.call("add_replica", addr=addr))

    def remove_replica(self, addr: str) -> dict[str, Any]:
        return dict(self.call("remove_replica", addr=addr))

    def export_state(self, groups: list[int] | str = "all") -> dict[str, Any]:
        return dict(self.call("export_state", groups=groups))

    def import_state(self, flows: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("import_state", flows=flows))

    def handover(self, groups: list[int], to: str, dup_to: str,
                 timeout_s: float | None = None) -> dict[str, Any]:
        extra = {} if timeout_s is None else {"timeout_s": timeout_s}
        return dict(self.call("handover", groups=groups, to=to, dup_to=dup_to, **extra))

    def drain(self) -> dict[str, Any]:
        return dict(self.call("drain"))

    def shutdown(self) -> dict[str, Any]:
        return dict(self.call("shutdown"))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._buf = b""
        self._late = 0

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
