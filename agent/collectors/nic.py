"""Per-interface counters (``nic`` measurement) from ``/proc/net/dev`` of the agent's namespace.

``/proc/net/dev`` is read directly (one small file, no fork) because the agent runs inside the
host's network namespace, where it shows exactly that host's interfaces.
"""

from __future__ import annotations

from pathlib import Path

from agent.collectors.base import IF_RATES, RateTracker, drops_rate
from agent.schema import Point, make_point

# Column order of /proc/net/dev after "iface:"
_RX = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
_TX = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def read_proc_net_dev(path: Path = Path("/proc/net/dev")) -> dict[str, dict[str, int]]:
    """Interface -> counters (bytes, packets, errors, dropped for rx and tx)."""
    out: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines()[2:]:
        name, _, rest = line.partition(":")
        cols = rest.split()
        if len(cols) < 16:
            continue
        vals = [int(c) for c in cols]
        c = dict(zip(_RX, vals[0:4], strict=True))
        c.update(zip(_TX, vals[8:12], strict=True))
        out[name.strip()] = c
    return out


class NicCollector:
    """One ``nic`` point per interface (all but ``lo`` unless ``interfaces`` names them)."""

    name = "nic"

    def __init__(self, host: str, interfaces: tuple[str, ...] = (), proc_path: Path = Path("/proc/net/dev")):
        self.host = host
        self.interfaces = interfaces
        self.proc_path = proc_path
        self.rates = RateTracker()

    def collect(self, now_ns: int) -> list[Point]:
        points = []
        stats = read_proc_net_dev(self.proc_path)
        for ifname, counters in stats.items():
            if self.interfaces and ifname not in self.interfaces:
                continue
            if not self.interfaces and ifname == "lo":
                continue
            fields: dict[str, float | int] = dict(counters)
            fields.update(self.rates.rates(ifname, now_ns, counters, IF_RATES))
            fields.update(drops_rate(ifname, now_ns, counters, self.rates))
            points.append(make_point("nic", {"host": self.host, "interface": ifname}, fields, now_ns))
        self.rates.forget_except(set(stats) | {f"{i}/drops" for i in stats})
        return points
