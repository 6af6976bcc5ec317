"""Tiny UDP sender/receiver run inside test namespaces (``ip netns exec <ns> python udp_probe.py ...``).

recv <port> <out.json> <idle_s>: records the payload sequence numbers it receives and writes them
  (and the packet count) to <out.json> after ``END`` arrives or after <idle_s> without packets.
send <dst ip> <port> <n> [<first>]: sends payloads ``<seq>`` for seq in first..first+n-1, then ``END``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time


def recv(port: int, out: str, idle_s: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", port))
    s.settimeout(idle_s)
    seqs: list[int] = []
    with open(out + ".ready", "w") as f:
        f.write("1")
    while True:
        try:
            data = s.recv(2048)
        except TimeoutError:
            break
        if data == b"END":
            break
        seqs.append(int(data))
    with open(out + ".tmp", "w") as f:
        json.dump({"seqs": seqs}, f)
    os.replace(out + ".tmp", out)


def send(dst: str, port: int, n: int, first: int = 0) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(first, first + n):
        s.sendto(str(i).encode(), (dst, port))
        if i % 20 == 0:
            time.sleep(0.002)  # stay well below the userspace datapath's ceiling
    time.sleep(0.05)
    s.sendto(b"END", (dst, port))


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 0)
