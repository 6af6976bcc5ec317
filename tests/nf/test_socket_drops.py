"""Input lost in the kernel counts as a drop: an NF that cannot keep up overflows its socket buffer
long before its own input buffer (a CPU-starved container did exactly that on the lab, and its
telemetry said 0 drops while 78 % of the packets were lost). The instance reports those as
``socket_dropped`` and both kinds together as ``input_dropped`` (the agent's ``drops_pps``)."""

from __future__ import annotations

import os
import signal
import time

from nfnet import NFNet, wait_for


def test_socket_overflow_is_reported_as_input_drops(nfnet: NFNet) -> None:
    p = nfnet.instance("p", "p", {"type": "counter"}, engine={"rcvbuf_bytes": 4096})
    st = nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000"}}])
    proc = nfnet.procs["p"]
    os.killpg(proc.pid, signal.SIGSTOP)  # the instance cannot read: its 4 KiB buffer fills
    try:
        nfnet.send("10.98.2.2:5000", flows=4, rate=2000, count=1000, linger=0.2)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    time.sleep(1.5)  # the workers refresh the kernel's count once a second

    def counted() -> bool:
        m = p.metrics()
        return int(m["socket_dropped"]) > 0

    wait_for(counted, 10, "socket drops in the instance's metrics")
    m = p.metrics()
    # every stamped datagram was either read by the instance or counted as dropped by the kernel
    assert int(m["received"]) + int(m["socket_dropped"]) == st.call("status")["stamped"], m
    assert int(m["input_dropped"]) == int(m["dropped"]) + int(m["socket_dropped"])
