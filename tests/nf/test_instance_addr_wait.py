"""An NF instance whose address is configured only after it started (a Docker instance gets its
overlay port from the agent after ``docker run``) waits for it instead of dying; an address that
never appears fails with an error naming it."""

from __future__ import annotations

import threading
import time

import pytest

from lab import netns
from lab.netns import Topology
from nf.instance import wait_for_address

pytestmark = pytest.mark.netns

WAIT = "from nf.instance import wait_for_address; wait_for_address('10.66.0.7', 20)"


def test_waits_for_an_address_added_later() -> None:
    with Topology("aw") as topo:
        ns = topo.ns("h")
        netns.run(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"], ns=ns)
        netns.run(["ip", "link", "set", "d0", "up"], ns=ns)
        later = threading.Timer(0.5, lambda: netns.add_addr(ns, "d0", "10.66.0.7/24"))
        later.start()
        t0 = time.monotonic()
        netns.run(["python3", "-c", WAIT], ns=ns)
        later.join()
        assert time.monotonic() - t0 >= 0.4


def test_missing_address_is_named() -> None:
    with pytest.raises(OSError, match=r"10\.66\.0\.99 is not configured"):
        wait_for_address("10.66.0.99", 0.3)
