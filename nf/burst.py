"""The NF worker's socket I/O in bursts: read every waiting datagram, send a batch's packets.

Why a module of its own: the engine's per-packet cost on a direct veth path is ~14.6 us, and one
``recv()``/``sendto()`` per packet is part of it (system call, method call, exception frame,
address tuple). With the compiled :mod:`nf._burst` (``nf/_burst.c``: ``recvmmsg``/``sendmmsg``, built
by ``pip install`` when a C compiler is there) a burst crosses into the kernel in one call. Without
it the same functions run here in Python, one call per packet: same results, same order, same
error accounting, so the engine has one I/O path and the extension is only an accelerator.
``ACCELERATED`` says which one this process uses (reported in the worker's ``status``).

* ``recv_burst(sock, max)``: up to ``max`` datagrams waiting on the non-blocking ``sock``, in
  arrival order; ``[]`` when none. Raises ``OSError`` for a receive error other than "nothing
  waiting" when it read nothing before it.
* ``send_burst(sock, pkts)``: send each IPv4 packet (header included; ``sock`` is an
  ``IPPROTO_RAW`` socket) to its own destination (bytes 16..19), in order. Returns
  ``(errors, bytes)``: packets the kernel refused (or too short to carry an address), skipped and
  counted; total bytes sent.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

_IPV4_MIN_HEADER = 20
_RECV_MAX = 65535  # bytes: any UDP datagram fits


def _py_recv_burst(sock: socket.socket, max_n: int) -> list[bytes]:
    out: list[bytes] = []
    recv = sock.recv
    for _ in range(max_n):
        try:
            out.append(recv(_RECV_MAX))
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            if out:
                break  # hand over what was read; the error recurs on the next call
            raise
    return out


def _py_send_burst(sock: socket.socket, pkts: list[bytes]) -> tuple[int, int]:
    send = sock.sendto
    ntoa = socket.inet_ntoa
    errors = nbytes = 0
    for p in pkts:
        if len(p) < _IPV4_MIN_HEADER:
            errors += 1
            continue
        try:
            nbytes += send(p, (ntoa(p[16:20]), 0))
        except OSError:
            errors += 1
    return errors, nbytes


recv_burst: Callable[[socket.socket, int], list[bytes]]
send_burst: Callable[[socket.socket, list[bytes]], tuple[int, int]]

# DEFT_NF_PURE_IO=1 forces the Python versions (tests compare both; a bad build can be bypassed)
if os.environ.get("DEFT_NF_PURE_IO") == "1":
    recv_burst, send_burst, ACCELERATED = _py_recv_burst, _py_send_burst, False
else:
    try:
        from nf import _burst
    except ImportError:
        recv_burst, send_burst, ACCELERATED = _py_recv_burst, _py_send_burst, False
    else:
        recv_burst, send_burst, ACCELERATED = _burst.recv_burst, _burst.send_burst, True
