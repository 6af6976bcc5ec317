"""nf.burst: the compiled (recvmmsg/sendmmsg) and the Python socket I/O behave the same.

Real sockets on 127.0.0.1: datagrams come back whole and in order, a burst stops at ``max`` and at
an empty socket, a receive error surfaces as OSError, and released IPv4 packets reach their own
destinations in order with refused ones counted, not raised.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from datagrams import udp_ipv4

from nf import burst

IMPLS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "python": (burst._py_recv_burst, burst._py_send_burst),
}
try:
    from nf import _burst
except ImportError:
    pass
else:
    IMPLS["mmsg"] = (_burst.recv_burst, _burst.send_burst)


@pytest.fixture(params=["python", "mmsg"])
def impl(request: pytest.FixtureRequest) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if request.param not in IMPLS:
        pytest.skip("nf._burst not built (no C compiler at install)")
    return IMPLS[request.param]


@pytest.fixture
def rx() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    yield s
    s.close()


def _send(dst: socket.socket, payloads: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for p in payloads:
            tx.sendto(p, dst.getsockname())


def test_recv_returns_every_datagram_whole_and_in_order(impl: Any, rx: socket.socket) -> None:
    recv_burst, _ = impl
    payloads = [bytes([i % 256]) * (1 + i * 37 % 1400) for i in range(150)] + [b"x" * 60000]
    _send(rx, payloads)
    got: list[bytes] = []
    while len(got) < len(payloads):
        chunk = recv_burst(rx, 256)
        assert chunk, f"only {len(got)} of {len(payloads)} datagrams came back"
        got += chunk
    assert got == payloads
    assert recv_burst(rx, 256) == []  # empty socket: nothing, no exception


def test_recv_stops_at_max(impl: Any, rx: socket.socket) -> None:
    recv_burst, _ = impl
    _send(rx, [b"%d" % i for i in range(100)])
    first = recv_burst(rx, 70)  # more than one recvmmsg chunk (64) in the compiled version
    assert first == [b"%d" % i for i in range(70)]
    assert recv_burst(rx, 10) == [b"%d" % i for i in range(70, 80)]
    assert recv_burst(rx, 100) == [b"%d" % i for i in range(80, 100)]


def test_recv_error_is_oserror(impl: Any) -> None:
    """A connected UDP socket whose peer port is closed gets ECONNREFUSED (ICMP) on the next read."""
    recv_burst, _ = impl
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        s.send(b"ping")
        with pytest.raises(OSError) as ei:
            recv_burst(s, 8)
        assert ei.value.errno == errno.ECONNREFUSED
        assert recv_burst(s, 8) == []  # the error was reported once; the socket keeps working


def test_send_reaches_each_destination_in_order_and_counts_refused(impl: Any, rx: socket.socket) -> None:
    _, send_burst = impl
    port = rx.getsockname()[1]
    pkts = [udp_ipv4("127.0.0.1", "127.0.0.1", 40000, port, b"p%03d" % i) for i in range(100)]
    short = b"\x45" * 10  # shorter than an IPv4 header: refused, counted, the rest still goes
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        errors, nbytes = send_burst(raw, [*pkts[:50], short, *pkts[50:]])
    assert (errors, nbytes) == (1, sum(len(p) for p in pkts))
    got: list[bytes] = []
    for _ in range(100):
        got += burst._py_recv_burst(rx, 256)
        if len(got) >= 100:
            break
    assert got == [b"p%03d" % i for i in range(100)]


def test_send_rejects_non_bytes(impl: Any) -> None:
    _, send_burst = impl
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw, \
            pytest.raises(TypeError):
        send_burst(raw, ["x" * 40])
