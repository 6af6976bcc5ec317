"""Transmit paths: each turns a template into ``send(buf)`` callables, one per flow.

Measured here between two namespaces on a veth pair (64 B UDP, one core, Python 3.11; see
``bench/traffic_rate.py``): AF_PACKET ``send`` of full frames is the fastest path, ahead of
``IP_HDRINCL`` raw sockets and kernel UDP ``send`` (both pay for routing and, for UDP, the
socket layer). Hence the default method ``packet``.

- ``packet``: ONE ``AF_PACKET``/``SOCK_RAW`` socket bound to the egress device; frames carry the
  MACs resolved at start. Bypasses routing and netfilter (so nftables impairment on the sender's
  OUTPUT hook does not see it; impair at the receiver instead).
- ``raw``: ``AF_INET``/``SOCK_RAW``/``IPPROTO_RAW`` (``IP_HDRINCL``), one socket per destination,
  connected; the kernel routes and resolves MACs. Any 5-tuple, TCP or UDP.
- ``udp``: one kernel UDP socket per flow (bound to the flow's source port, connected), because the
  kernel owns the UDP header; the only method that needs no privileges.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

from traffic.packets import Template

SendFn = Callable[[bytearray], int]
SNDBUF_BYTES = 4 * 1024 * 1024


class Transmitter:
    """Owns the sockets of one run and hands out one send callable per flow (same order as templates)."""

    def __init__(self, method: str, templates: list[Template], interface: str = "") -> None:
        self.method = method
        self._socks: list[socket.socket] = []
        self.sends: list[SendFn] = []
        try:
            if method == "packet":
                s = self._open(socket.AF_PACKET, socket.SOCK_RAW, 0)
                s.bind((interface, 0))
                self.sends = [s.send for _ in templates]
            elif method == "raw":
                by_dst: dict[str, socket.socket] = {}
                for t in templates:
                    if t.flow.dst not in by_dst:
                        s = self._open(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                        s.connect((t.flow.dst, 0))
                        by_dst[t.flow.dst] = s
                    self.sends.append(by_dst[t.flow.dst].send)
            elif method == "udp":
                for t in templates:
                    s = self._open(socket.AF_INET, socket.SOCK_DGRAM, 0)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((t.flow.src, t.flow.sport))
                    s.connect((t.flow.dst, t.flow.dport))
                    self.sends.append(s.send)
            else:
                raise ValueError(f"method {method!r} has no socket transmitter")
        except PermissionError as exc:
            self.close()
            raise PermissionError(f"method {method} needs CAP_NET_RAW (run as root): {exc}") from exc
        except OSError:
            self.close()
            raise

    def _open(self, family: int, kind: int, proto: int) -> socket.socket:
        s = socket.socket(family, kind, proto)
        self._socks.append(s)
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF_BYTES)
        return s

    def close(self) -> None:
        for s in self._socks:
            s.close()
        self._socks.clear()

    def __enter__(self) -> Transmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
