"""The stamper's TUN device queues ``tun_txqueuelen`` packets, not the kernel's 500: a stamper
descheduled for 25 ms at 20 kpps must not lose client packets before they are even stamped."""

from __future__ import annotations

import pytest
from nfnet import NFNet

from lab import netns
from nf.stamper import StamperConfig

pytestmark = [pytest.mark.netns]


def test_tun_device_gets_the_configured_queue(nfnet: NFNet) -> None:
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000"}}])
    qlen = netns.run(["cat", "/sys/class/net/deft0/tx_queue_len"], ns=nfnet.ns["st"]).stdout
    assert int(qlen) == StamperConfig().tun_txqueuelen == 10000


def test_an_empty_queue_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="tun_txqueuelen"):
        StamperConfig(tun_txqueuelen=0)
