"""Templates are correct packets: scapy parses them, the stamp sits where the sink looks, and the
per-packet TCP checksum patch equals a full recomputation."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from traffic import packets, stamp


@pytest.mark.parametrize("size", [76, 200, 1500])
def test_tcp_checksum_patch_matches_scapy(size: int) -> None:
    flow = packets.Flow(9, "tcp", "10.0.0.1", "10.0.0.2", 4321, 80, size, 1.0)
    tpl = packets.build_template(flow, "raw")
    for seq, ts in ((0, 0), (1, 1_700_000_000_123_456_789), (2**32 - 1, 2**64 - 1), (77, 5)):
        packets.patch(tpl, seq, ts)
        pkt = IP(bytes(tpl.buf))
        sent = pkt[TCP].chksum
        del pkt[TCP].chksum
        assert IP(bytes(pkt))[TCP].chksum == sent
        assert stamp.unpack(bytes(pkt[TCP].payload)) == (9, seq, ts)


def test_udp_frame_is_64_bytes_with_fcs() -> None:
    flow = packets.Flow(1, "udp", "10.0.0.1", "10.0.0.2", 1, 2, 64, 1.0)
    tpl = packets.build_template(flow, "packet", "02:00:00:00:00:01", "02:00:00:00:00:02")
    assert len(tpl.buf) == 60  # + 4 bytes FCS on the wire
    packets.patch(tpl, 5, 6)
    pkt = Ether(bytes(tpl.buf))
    assert pkt[UDP].dport == 2 and stamp.unpack(bytes(pkt[UDP].payload)) == (1, 5, 6)
