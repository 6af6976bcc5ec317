"""Keep the kernel's neighbour (ARP) entries of the *next* hops resolved before traffic needs them.

Why: the first packet a host sends to an IPv4 address it has no neighbour entry for starts ARP
resolution, and until the reply arrives the kernel queues that address's packets in a small
per-entry queue (``unres_qlen_bytes``: 212 992 bytes, about 100 small packets) and silently drops
the rest (no socket, interface or OVS counter shows it). A replica never sends to the addresses it
will send to once it is promoted or receives a migration, and the ingress stamper never sends to a
secondary (OVS duplicates its input), so every switch-over starts with a cold entry: at 6 kpps an
ARP round trip of 50 ms through a loaded userspace OVS is 300 packets, 200 of them lost.

:class:`NeighbourWarmer` sends an empty UDP datagram to the discard port (9) of every address it is
told about, at once when it first hears of it and again every ``refresh_s`` (a referenced entry stays
REACHABLE or STALE, and a STALE entry is used at once; an unreferenced one may be garbage-collected
once the table holds more than ``gc_thresh1`` = 128 entries). The probe resolves the entry; the
target answers at most an ICMP port-unreachable, which an unconnected socket ignores.
"""

from __future__ import annotations

import logging
import socket
import time

log = logging.getLogger("nf.neigh")

#: UDP discard port: nothing in DEFT listens on it, so a probe never reaches an NF
DISCARD_PORT = 9


class NeighbourWarmer:
    """Probe addresses so their neighbour entries are resolved before a switch-over.

    ``refresh_s``: re-probe interval (s; 0 = probe each address once); ``max_addrs``: addresses
    remembered (the oldest half is forgotten when full, so a long-lived replica seeing many
    destinations stays bounded). Not thread-safe: call :meth:`want` and :meth:`tick` from one thread
    or under the caller's lock."""

    def __init__(self, refresh_s: float = 10.0, max_addrs: int = 4096) -> None:
        self.refresh_s = refresh_s
        self.max_addrs = max_addrs
        self.addrs: dict[str, float] = {}  # ip -> monotonic time of its last probe (s)
        self._packed: set[bytes] = set()  # packed forms of addrs seen by want_packed
        self.probes = 0
        self.errors = 0
        self._sock: socket.socket | None = None

    def want(self, ip: str, now: float | None = None) -> bool:
        """Remember ``ip`` and probe it at once when it is new; True when it was new.

        At once, not at the next :meth:`tick`: a replica learns a flow when a migration's pre-copy
        starts, and the handover can follow ~0.3 s later. Probed at the engine's once-a-second
        tick, the target's first output burst still found the entry unresolved: it waited in the
        ARP queue and went out interleaved with later packets sent directly (reordered at the sink,
        half of the moves on a loaded test box). One datagram per new address, never per packet."""
        if ip in self.addrs:
            return False
        if len(self.addrs) >= self.max_addrs:
            for old in list(self.addrs)[: self.max_addrs // 2]:
                del self.addrs[old]
            self._packed.clear()
        self._probe(ip, time.monotonic() if now is None else now)
        return True

    def want_packed(self, addr: bytes) -> bool:
        """:meth:`want` for a packed IPv4 address (4 bytes, as in a flow key). A replica calls it
        for both ends of every flow it learns - 10 000 per snapshot of a big instance - so an
        address already known costs one set lookup, no text conversion."""
        if addr in self._packed:
            return False
        self._packed.add(addr)
        return self.want(socket.inet_ntoa(addr))

    def tick(self, now: float | None = None) -> int:
        """Re-probe every address last probed ``refresh_s`` ago; returns how many."""
        now = time.monotonic() if now is None else now
        if self.refresh_s <= 0:
            return 0
        due = [ip for ip, t in self.addrs.items() if now - t >= self.refresh_s]
        for ip in due:
            self._probe(ip, now)
        return len(due)

    def _probe(self, ip: str, now: float) -> None:
        self.addrs[ip] = now
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        try:
            self._sock.sendto(b"", (ip, DISCARD_PORT))
            self.probes += 1
        except OSError as exc:  # unreachable now; retried at the next refresh
            self.errors += 1
            log.debug("neighbour probe to %s: %s", ip, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
