"""NF logic units: checksums after NAT rewriting are valid (checked by scapy), firewall decisions,
metrics histograms, and config errors that name the bad key."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP

from deftctl.config import ConfigError, from_dict
from nf.flow import wire_key
from nf.instance_config import InstanceConfig
from nf.metrics import N_BUCKETS, bucket_of, percentile_ns
from nf.types import NFContext, create
from nf.types.firewall import FirewallConfig
from nf.types.rewrite import rewrite


@pytest.mark.parametrize("l4", [UDP(sport=1234, dport=80) / b"payload",
                                TCP(sport=1234, dport=80, flags="S") / b"payload",
                                ICMP(type=8, id=1234) / b"payload"])
def test_rewrite_keeps_checksums_valid(l4: object) -> None:
    pkt = bytes(IP(src="10.0.0.1", dst="192.0.2.9") / l4)
    out = rewrite(pkt, src_ip=bytes([198, 51, 100, 7]), src_port=20017)
    p = IP(out)
    assert p.src == "198.51.100.7"
    fresh = IP(out)  # let scapy recompute both checksums from scratch
    del fresh.chksum
    del fresh.payload.chksum
    ref = IP(bytes(fresh))
    assert p.chksum == ref.chksum
    assert p.payload.chksum == ref.payload.chksum


def test_firewall_allows_established_denies_unsolicited() -> None:
    fw = create("firewall", NFContext(FirewallConfig(inside=["10.0.0.0/8"]), None, 16, "t", 0))
    out_pkt = bytes(IP(src="10.0.0.1", dst="192.0.2.9") / UDP(sport=5000, dport=53))
    back_pkt = bytes(IP(src="192.0.2.9", dst="10.0.0.1") / UDP(sport=53, dport=5000))
    probe = bytes(IP(src="192.0.2.9", dst="10.0.0.1") / UDP(sport=53, dport=5001))
    k_out, f_out = wire_key(out_pkt)  # type: ignore[misc]
    k_back, f_back = wire_key(back_pkt)  # type: ignore[misc]
    k_probe, f_probe = wire_key(probe)  # type: ignore[misc]
    assert fw.process(probe, k_probe, f_probe, 0) is None
    assert fw.process(out_pkt, k_out, f_out, 0) == out_pkt
    assert fw.process(back_pkt, k_back, f_back, 0) == back_pkt
    assert fw.describe(k_out)["established"] is True
    mid = bytes(IP(src="10.0.0.1", dst="192.0.2.9") / TCP(sport=1, dport=2, flags="A"))
    km, fm = wire_key(mid)  # type: ignore[misc]
    assert fw.process(mid, km, fm, 0) is None  # TCP must open with SYN


def test_histogram_percentiles() -> None:
    h = [0] * N_BUCKETS
    for v in range(1, 1001):
        h[bucket_of(v * 1000)] += 1  # 1 us .. 1 ms
    p50, p99 = percentile_ns(h, 50), percentile_ns(h, 99)
    assert 500_000 <= p50 <= 500_000 * 1.25
    assert 990_000 <= p99 <= 990_000 * 1.25


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"nf\.type"):
        from_dict(InstanceConfig, {"name": "x", "nf": {"type": "router"}})
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(InstanceConfig, {"name": "x", "engine": {"batchsize": 3}})
    with pytest.raises(ConfigError, match="replicas"):
        from_dict(InstanceConfig, {"name": "x", "replicas": ["nowhere"]})
    with pytest.raises(ConfigError, match=r"nf\.nat"):
        from_dict(InstanceConfig, {"name": "x", "nf": {"type": "nat"}})
