"""Wire formats: the stamp shim, flow keys/groups and the replication protocol round-trip, and
malformed input is rejected with a message that says what is wrong."""

from __future__ import annotations

import socket
import struct

import pytest

from nf import shim
from nf.flow import canonical_key, group_of_key, key_from_str, key_to_str, parse_5tuple, port_group, wire_key
from nf.replication import protocol


def _udp(src: str, sport: int, dst: str, dport: int) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 12, 0) + b"abcd"
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + udp


def test_shim_round_trip_and_errors() -> None:
    inner = _udp("10.0.0.1", 1000, "10.0.0.2", 80)
    st = shim.Stamp(shim.FLAG_DUPLICATE, 7, 42, 3, 123456789, 1_700_000_000_000_000_000)
    d = shim.pack(st, inner)
    assert len(d) == shim.SHIM_LEN + len(inner)
    back, pkt = shim.unpack(d)
    assert back == st and pkt == inner
    with pytest.raises(shim.ShimError, match="bad magic"):
        shim.unpack(b"\x00" * 60)
    with pytest.raises(shim.ShimError, match="shorter"):
        shim.unpack(d[:20])
    bad_ver = d[:2] + b"\x09" + d[3:]
    with pytest.raises(shim.ShimError, match="version 9"):
        shim.unpack(bad_ver)


def test_flow_key_is_bidirectional_and_groups_are_stable() -> None:
    fwd = _udp("10.0.0.1", 1000, "10.0.0.2", 80)
    rev = _udp("10.0.0.2", 80, "10.0.0.1", 1000)
    kf, df = wire_key(fwd) or (b"", False)
    kr, dr = wire_key(rev) or (b"", False)
    assert kf == kr and df != dr
    assert wire_key(fwd) == canonical_key(*parse_5tuple(fwd))  # type: ignore[misc]
    assert key_from_str(key_to_str(kf)) == kf
    assert group_of_key(kf, 64) == group_of_key(kr, 64)
    assert port_group(20000 + 5 + 3 * 64, 20000, 64) == 5
    assert wire_key(b"\x45" + b"\x00" * 10) is None  # truncated
    assert parse_5tuple(b"\x60" + b"\x00" * 39) is None  # IPv6 is not ours


def test_replication_frames_round_trip() -> None:
    d = protocol.FlowDelta([(b"k" * 13, 3, 1, 99)], [(b"s" * 13, 3, b"\x00\x01"), (b"t" * 13, 4, None)])
    r = protocol.FrameReader()
    stream = (protocol.hello("lease", "inst", 5, 2, 1, 64) + protocol.delta(5, 10, d, 8)
              + protocol.snapshot(5, 11, protocol.SNAP_FIRST | protocol.SNAP_LAST, d)
              + protocol.ack(5, 10) + protocol.fenced(6, 10) + protocol.heartbeat(5, 123, 9)
              + protocol.handover(5, 12, [9, 3, 3]) + protocol.released(5, 10))
    frames: list[tuple[int, bytes]] = []
    for i in range(0, len(stream), 7):  # arbitrary TCP segmentation
        frames += r.feed(stream[i:i + 7])
    msgs = [protocol.decode(t, b) for t, b in frames]
    assert msgs[0] == protocol.Hello("lease", "inst", 5, 2, 1, 64)
    assert isinstance(msgs[1], protocol.Delta) and msgs[1].entries == d and msgs[1].batch_seq == 10
    assert msgs[1].released == 8
    assert isinstance(msgs[2], protocol.Delta) and msgs[2].snapshot_flags == 3 and msgs[2].snapshot
    assert not msgs[1].snapshot
    # a middle chunk of a snapshot has no flags and is still a snapshot chunk (it was once read as
    # FIRST|LAST: the replica then dropped every chunk before it)
    middle = protocol.decode(*protocol.FrameReader().feed(protocol.snapshot(5, 11, 0, d))[0])
    assert isinstance(middle, protocol.Delta) and middle.snapshot and middle.snapshot_flags == 0
    assert msgs[3] == protocol.Ack(5, 10)
    assert msgs[4] == protocol.Ack(6, 10, fenced=True)
    assert msgs[5] == protocol.Heartbeat(5, 123, 9)
    assert msgs[6] == protocol.Handover(5, 12, [3, 9])
    assert msgs[7] == protocol.Released(5, 10)


def test_replication_rejects_garbage() -> None:
    with pytest.raises(protocol.ProtocolError, match="out of range"):
        protocol.FrameReader().feed(b"\xff\xff\xff\xff\x02")
    with pytest.raises(protocol.ProtocolError, match="DELTA"):
        protocol.decode(protocol.DELTA, b"\x00\x01")
    with pytest.raises(protocol.ProtocolError, match="unknown message type"):
        protocol.decode(99, b"")
    # a count that promises more sequence entries than the frame holds: named, not an IndexError
    one = protocol.delta(5, 10, protocol.FlowDelta([(b"k" * 13, 3, 1, 99)]))
    body = bytearray(one[5:])  # after length + type
    body[20:24] = (2).to_bytes(4, "big")  # nseq (after epoch 4 + batch 8 + released 8 bytes)
    with pytest.raises(protocol.ProtocolError, match="sequence entries run past the frame"):
        protocol.decode(protocol.DELTA, bytes(body))
