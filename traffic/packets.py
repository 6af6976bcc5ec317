"""Crafting: flows -> byte templates, built once with scapy, patched per packet with ``struct``.

Why templates: scapy builds a packet in ~100 us, far too slow per packet; a template is built once
per flow and the per-packet work is one ``pack_into`` of the stamp's ``seq`` and ``tx_ns`` (plus,
for TCP, an RFC 1624 incremental checksum update). UDP checksums are sent as 0 ("no checksum",
legal for UDP over IPv4), so patching never invalidates them.

Layouts per send method (``off`` = where the stamp starts):

=========  ===========================  ==========================
method     template                     stamp offset (udp / tcp)
=========  ===========================  ==========================
packet     Ether / IPv4 / L4 / payload  42 / 54
raw        IPv4 / L4 / payload          28 / 40
udp        payload (kernel adds UDP/IP) 0  / (not supported)
=========  ===========================  ==========================
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from lab import netns
from traffic import stamp
from traffic.profile import ETH_FCS, IP_HDR, L2_HDR, L4_HDR, TrafficProfile

TCP_CSUM_OFF = 16  # checksum offset inside the TCP header
TCP_SEQ_OFF = 4
TCP_ISN = 0x10000000


class CraftError(RuntimeError):
    """A flow cannot be turned into packets here (no route, unresolvable MAC, local dst, ...)."""


@dataclass(frozen=True)
class Flow:
    """One concrete flow (5-tuple + size) with its run-wide ``flow_id``."""

    flow_id: int
    proto: str
    src: str
    dst: str
    sport: int
    dport: int
    size_bytes: int
    weight: float

    @property
    def payload_bytes(self) -> int:
        return self.size_bytes - ETH_FCS - L2_HDR - IP_HDR - L4_HDR[self.proto]

    def five_tuple(self) -> str:
        return f"{self.proto} {self.src}:{self.sport} -> {self.dst}:{self.dport}"


@dataclass
class Template:
    """A flow's packet bytes and where to patch them."""

    flow: Flow
    buf: bytearray
    stamp_off: int  # offset of the stamp's magic within buf
    tcp_off: int = -1  # offset of the TCP header within buf (-1: not TCP)
    csum_base: int = 0  # ones-complement sum of the TCP segment with seq/tx_ns/tcp seq zeroed


@dataclass(frozen=True)
class Route:
    """What ``ip route get`` says about a destination."""

    dev: str
    src: str
    nexthop: str


def route_to(dst: str) -> Route:
    """Device, source address and next hop towards ``dst`` in the current network namespace."""
    cp = netns.run(["ip", "-j", "route", "get", dst], check=False)
    if cp.returncode != 0:
        raise CraftError(f"no route to {dst}: {cp.stderr.strip()}")
    info = json.loads(cp.stdout)[0]
    return Route(dev=info["dev"], src=info.get("prefsrc", ""), nexthop=info.get("gateway", dst))


def iface_mac(dev: str) -> str:
    try:
        return Path(f"/sys/class/net/{dev}/address").read_text().strip()
    except OSError as exc:
        raise CraftError(f"interface {dev!r} does not exist in this namespace") from exc


def neighbour_mac(ip: str, dev: str, timeout_s: float = 2.0) -> str:
    """MAC of ``ip`` on ``dev`` from the neighbour table, triggering ARP with one UDP datagram."""
    deadline = time.monotonic() + timeout_s
    poked = False
    while True:
        cp = netns.run(["ip", "-j", "neigh", "show", "to", ip, "dev", dev], check=False)
        for entry in json.loads(cp.stdout or "[]"):
            states = set(entry.get("state", []))
            if entry.get("lladdr") and not states & {"FAILED", "INCOMPLETE"}:
                return str(entry["lladdr"])
        if time.monotonic() > deadline:
            raise CraftError(f"cannot resolve the MAC of {ip} on {dev} (no ARP reply); set dst_mac")
        if not poked:  # the discard port: the datagram only exists to make the kernel ARP
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"", (ip, 9))
            poked = True
        time.sleep(0.05)


def expand_flows(profile: TrafficProfile) -> list[Flow]:
    """Flow specs -> concrete flows with ids ``flow_id_base, +1, ...`` and resolved sources."""
    flows: list[Flow] = []
    fid = profile.flow_id_base
    for spec in profile.flows:
        if not spec.dst:
            raise CraftError("a flow has no dst: set it in the profile or pass --dst")
        src = spec.src or route_to(spec.dst).src
        if not src:
            raise CraftError(f"cannot determine a source address towards {spec.dst}; set src")
        for k in range(spec.count):
            flows.append(
                Flow(fid, spec.proto, src, spec.dst, spec.sport + k, spec.dport, spec.size_bytes, spec.weight)
            )
            fid += 1
    return flows


def _payload(flow: Flow) -> bytes:
    # stamp with seq = tx_ns = 0, then zero padding up to the frame size
    return stamp.pack(flow.flow_id, 0, 0) + bytes(flow.payload_bytes - stamp.STAMP_LEN)


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def build_template(flow: Flow, method: str, src_mac: str = "", dst_mac: str = "") -> Template:
    """Craft ``flow``'s packet once with scapy for ``method`` (see the module table)."""
    # scapy loads in ~1 s: only the generator pays for it, not `deftctl` start-up
    from scapy.layers.inet import IP, TCP, UDP  # noqa: PLC0415
    from scapy.layers.l2 import Ether  # noqa: PLC0415

    payload = _payload(flow)
    if method == "udp":
        if flow.proto != "udp":
            raise CraftError("method udp sends UDP only")
        return Template(flow, bytearray(payload), 0)
    l4 = (
        UDP(sport=flow.sport, dport=flow.dport, chksum=0)
        if flow.proto == "udp"
        else TCP(sport=flow.sport, dport=flow.dport, seq=0, flags="PA", window=65535)
    )
    pkt = IP(src=flow.src, dst=flow.dst, ttl=64, id=0, flags="DF") / l4 / payload
    l2 = 0
    if method in ("packet", "tcpreplay"):
        raw = bytes(Ether(src=src_mac, dst=dst_mac) / pkt)
        l2 = L2_HDR
    else:
        raw = bytes(pkt)
    buf = bytearray(raw)
    l4_off = l2 + IP_HDR
    tpl = Template(flow, buf, l4_off + L4_HDR[flow.proto])
    if flow.proto == "tcp":
        # checksum base: pseudo header + segment with checksum, tcp seq, stamp seq and tx_ns zeroed
        seg = bytearray(buf[l4_off:])
        seg[TCP_CSUM_OFF : TCP_CSUM_OFF + 2] = b"\0\0"
        pseudo = (
            socket.inet_aton(flow.src) + socket.inet_aton(flow.dst) + bytes([0, 6])
            + len(seg).to_bytes(2, "big")
        )
        tpl.tcp_off = l4_off
        tpl.csum_base = _ones_sum(pseudo + bytes(seg))
    return tpl


def patch(tpl: Template, seq: int, tx_ns: int) -> None:
    """Write ``seq``/``tx_ns`` (and TCP seq + checksum) into the template; the generator inlines this."""
    stamp.SEQ_TS.pack_into(tpl.buf, tpl.stamp_off + stamp.SEQ_OFFSET, seq, tx_ns)
    if tpl.tcp_off >= 0:
        tseq = (TCP_ISN + seq * tpl.flow.payload_bytes) & 0xFFFFFFFF
        tpl.buf[tpl.tcp_off + TCP_SEQ_OFF : tpl.tcp_off + TCP_SEQ_OFF + 4] = tseq.to_bytes(4, "big")
        put_tcp_csum(tpl.buf, tpl.tcp_off, tpl.csum_base, tseq, seq, tx_ns)


def put_tcp_csum(buf: bytearray, tcp_off: int, base: int, tseq: int, seq: int, tx_ns: int) -> None:
    """RFC 1624: add the 16-bit words of the patched fields to the precomputed sum, fold, invert."""
    s = (
        base + (tseq >> 16) + (tseq & 0xFFFF) + (seq >> 16) + (seq & 0xFFFF)
        + (tx_ns >> 48) + ((tx_ns >> 32) & 0xFFFF) + ((tx_ns >> 16) & 0xFFFF) + (tx_ns & 0xFFFF)
    )
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    c = ~s & 0xFFFF
    buf[tcp_off + TCP_CSUM_OFF] = c >> 8
    buf[tcp_off + TCP_CSUM_OFF + 1] = c & 0xFF
