"""Malformed packets at the sink are counted, never fatal: the sink keeps measuring real traffic."""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import B_IP, Pair

from lab import netns
from traffic import stamp
from traffic.results import SinkReport
from traffic.sink import Sink, SinkConfig


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_udp_sink_counts_garbage_and_keeps_going() -> None:
    port = _free_udp_port()
    sink = Sink(SinkConfig(ports=[port], bind="127.0.0.1", duration_s=20, idle_timeout_s=0.5))
    sink.open()
    result: dict[str, SinkReport] = {}
    t = threading.Thread(target=lambda: result.update(rep=sink.run()))
    t.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            dst = ("127.0.0.1", port)
            s.sendto(b"", dst)  # empty datagram
            s.sendto(b"short", dst)  # shorter than a stamp
            s.sendto(bytes(40), dst)  # long enough, wrong magic
            s.sendto(b"\xff" * 18, dst)  # wrong magic, exact stamp size
            for seq in range(100):  # then real stamped traffic of one flow
                s.sendto(stamp.pack(7, seq, 0) + bytes(10), dst)
            s.sendto(b"GET / HTTP/1.1\r\n\r\n", dst)  # garbage after good packets
            s.sendto(stamp.pack(7, 100, 0), dst)
    finally:
        t.join(timeout=30)
    rep = result["rep"]
    assert rep.malformed == 5
    assert rep.received == 101 and rep.unique == 101
    assert rep.flows[0].flow_id == 7 and rep.flows[0].max_seq == 100
    assert rep.stop_reason == "idle"


def test_huge_seq_jump_is_out_of_window_not_a_memory_bomb() -> None:
    port = _free_udp_port()
    sink = Sink(SinkConfig(ports=[port], bind="127.0.0.1", duration_s=20, idle_timeout_s=0.5))
    sink.open()
    result: dict[str, SinkReport] = {}
    t = threading.Thread(target=lambda: result.update(rep=sink.run()))
    t.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(stamp.pack(1, 0, 0), ("127.0.0.1", port))
        s.sendto(stamp.pack(1, stamp.MAX_SEQ, 0), ("127.0.0.1", port))
        s.sendto(stamp.pack(1, 1, 0), ("127.0.0.1", port))
    t.join(timeout=30)
    f = result["rep"].flows[0]
    assert f.out_of_window == 1 and f.unique == 2 and f.max_seq == 1


@pytest.mark.netns
def test_packet_mode_counts_bad_tcp_and_udp_payloads(pair: Pair) -> None:
    sink_spec = {"mode": "packet", "interface": "eth0", "idle_timeout_s": 1, "ports": [9000, 9001]}
    prof = pair.profile("pm", duration_s=10, flows=[{"proto": "tcp", "dport": 9001}], sink=sink_spec)
    sink, out = pair.start_sink(prof)
    script = (
        "from scapy.all import IP, UDP, TCP, raw; import socket\n"
        "from traffic import stamp\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)\n"
        f"d = '{B_IP}'\n"
        "for p in [IP(dst=d)/UDP(dport=9000)/b'x',\n"
        "          IP(dst=d)/TCP(dport=9001)/b'nostamp-nostamp-nostamp',\n"
        "          IP(dst=d)/UDP(dport=9000)/stamp.pack(3, 0, 0),\n"
        "          IP(dst=d)/TCP(dport=9001)/stamp.pack(4, 0, 0),\n"
        "          IP(dst=d)/UDP(dport=5555)/b'not-our-port']:\n"
        "    s.sendto(raw(p), (d, 0))\n"
    )
    netns.run(["python3", "-c", script], ns=pair.a)
    res = pair.sink_result(sink, out)
    assert res["malformed"] == 2
    assert res["received"] == 2 and sorted(f["flow_id"] for f in res["flows"]) == [3, 4]
