"""Test traffic for the NF tests: paced UDP flows with (flow, seq, send time) in the payload, and
a sink/echo server that records, per flow, what arrived (loss, reorder, duplicates).

Run as a script inside a namespace (``python tests/nf/nftraffic.py send|sink ...``); results are
written as JSON to ``--out`` when the process ends (SIGTERM or count/duration reached).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from traffic.pacing import sleep_until  # after the repo root is on the path

PAYLOAD = struct.Struct("!IQQ")  # flow index, seq, send time ns


def send(ns: argparse.Namespace) -> dict[str, Any]:
    socks = []
    for i in range(ns.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ns.bind, ns.sport + i))
        s.setblocking(False)
        socks.append(s)
    host, port = ns.dst.rsplit(":", 1)
    dst = (host, int(port))
    pad = b"x" * max(0, ns.size - PAYLOAD.size)
    interval = 1.0 / ns.rate if ns.rate else 0.0
    t0 = time.perf_counter()
    sent = 0
    echoes: dict[int, list[int]] = {i: [] for i in range(ns.flows)}
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    seqs = [0] * ns.flows
    while not stop and sent < ns.count:
        i = sent % ns.flows
        try:
            socks[i].sendto(PAYLOAD.pack(i, seqs[i], time.time_ns()) + pad, dst)
            seqs[i] += 1
            sent += 1
        except BlockingIOError:
            pass
        if ns.echo:
            for j, s in enumerate(socks):
                try:
                    while True:
                        d = s.recv(2048)
                        echoes[j].append(PAYLOAD.unpack_from(d)[1])
                except BlockingIOError:
                    pass
        if interval:  # sleep, then spin near the deadline: a pure spin took a whole core from the
            # NFs, OVS and the stamper on a 2-core box (the benchmarks measured the harness)
            sleep_until(t0 + sent * interval)
    if ns.echo:
        deadline = time.time() + ns.linger
        while time.time() < deadline and not stop:
            for j, s in enumerate(socks):
                try:
                    while True:
                        d = s.recv(2048)
                        echoes[j].append(PAYLOAD.unpack_from(d)[1])
                except BlockingIOError:
                    pass
            time.sleep(0.001)
    return {"sent": seqs, "sport": ns.sport, "echoes": {str(k): v for k, v in echoes.items()}}


def sink(ns: argparse.Namespace) -> dict[str, Any]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((ns.bind, ns.port))
    s.settimeout(0.2)
    flows: dict[str, list[int]] = {}
    index: dict[str, int] = {}
    lat: list[int] = []  # one-way latency (ns) per packet, in arrival order
    sent_at: list[int] = []  # and its send time (ns, the sender's wall clock)
    last_dump = 0.0
    dirty = True
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    t_end = time.time() + ns.duration if ns.duration else float("inf")
    while not stop and time.time() < t_end:
        if ns.live and dirty and time.time() - last_dump > 0.1:
            _dump(ns.out, {"flows": flows, "index": index, "latency_ns": []})
            last_dump, dirty = time.time(), False
        try:
            d, addr = s.recvfrom(4096)
        except TimeoutError:
            continue
        except InterruptedError:
            continue
        now = time.time_ns()
        if len(d) < PAYLOAD.size:
            continue
        dirty = True
        i, seq, t = PAYLOAD.unpack_from(d)
        a = f"{addr[0]}:{addr[1]}"
        flows.setdefault(a, []).append(seq)
        index[a] = i
        if ns.latency:
            lat.append(now - t)
            sent_at.append(t)
        if ns.echo:
            s.sendto(d, addr)
    return {"flows": flows, "index": index, "latency_ns": lat, "sent_ns": sent_at}


def _dump(path: str, obj: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("send")
    a.add_argument("--dst", required=True)
    a.add_argument("--bind", default="0.0.0.0")
    a.add_argument("--sport", type=int, default=40000)
    a.add_argument("--flows", type=int, default=4)
    a.add_argument("--rate", type=float, default=1000.0)
    a.add_argument("--count", type=int, default=1000)
    a.add_argument("--size", type=int, default=64)
    a.add_argument("--echo", action="store_true")
    a.add_argument("--linger", type=float, default=1.0)
    a.add_argument("--out", required=True)
    b = sub.add_parser("sink")
    b.add_argument("--bind", default="0.0.0.0")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--duration", type=float, default=0.0)
    b.add_argument("--echo", action="store_true")
    b.add_argument("--latency", action="store_true")
    b.add_argument("--live", action="store_true", help="rewrite --out every 0.1 s while running")
    b.add_argument("--out", required=True)
    ns = ap.parse_args()
    res = send(ns) if ns.mode == "send" else sink(ns)
    _dump(ns.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
