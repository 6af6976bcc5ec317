"""Open vSwitch ports and tunnels (``ovs_port`` measurement) from the OVSDB Interface table.

One ``ovs-vsctl`` call per interval lists Bridge, Port and Interface together (OVS keeps the
counters in ``Interface.statistics``, refreshed by ovs-vswitchd every 5 s by default). The host's
OVS is reached through ``<rundir>/db.sock``: lab hosts each run their own ovsdb-server with a
per-host ``OVS_RUNDIR``, so the rundir is configurable (``ovs_rundir`` in agent.yml, else
``$OVS_RUNDIR``, else ``/var/run/openvswitch``). A host without OVS yields no points (logged once).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from agent.collectors.base import IF_RATES, RateTracker, drops_rate
from agent.schema import Point, make_point

log = logging.getLogger(__name__)

_COUNTERS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped",
             "rx_errors", "tx_errors")


class OvsError(RuntimeError):
    """ovs-vsctl failed; the message has its stderr."""


def ovs_rundir(configured: str = "") -> Path:
    """The OVS run directory: ``configured``, else ``$OVS_RUNDIR``, else ``/var/run/openvswitch``."""
    return Path(configured or os.environ.get("OVS_RUNDIR") or "/var/run/openvswitch")


def _ovs_map(v: Any) -> dict[str, Any]:
    return dict(v[1]) if isinstance(v, list) and v and v[0] == "map" else {}


def _uuids(v: Any) -> list[str]:
    if isinstance(v, list) and v and v[0] == "uuid":
        return [v[1]]
    if isinstance(v, list) and v and v[0] == "set":
        return [u[1] for u in v[1]]
    return []


def parse_vsctl_json(out: str) -> list[dict[str, Any]]:
    """Parse the three JSON tables (Bridge, Port, Interface) into one dict per interface:
    ``{"bridge", "port", "type", "statistics": {...}, "options": {...}, "link_state"}``."""
    tables = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(tables) != 3:
        raise OvsError(f"unexpected ovs-vsctl output ({len(tables)} tables)")
    rows = [[dict(zip(t["headings"], r, strict=True)) for r in t["data"]] for t in tables]
    bridges, ports, ifaces = rows
    port_bridge = {pu: b["name"] for b in bridges for pu in _uuids(b["ports"])}
    iface_port: dict[str, tuple[str, str]] = {}
    for p in ports:
        for iu in _uuids(p["interfaces"]):
            iface_port[iu] = (p["name"], port_bridge.get(p["_uuid"][1], ""))
    out_rows = []
    for i in ifaces:
        port, bridge = iface_port.get(i["_uuid"][1], (i["name"], ""))
        if not bridge:
            continue
        out_rows.append({
            "bridge": bridge, "port": port, "type": i["type"] or "system",
            "statistics": _ovs_map(i["statistics"]), "options": _ovs_map(i["options"]),
            "link_state": i["link_state"] if isinstance(i["link_state"], str) else "",
        })
    return out_rows


class OvsCollector:
    """One ``ovs_port`` point per interface attached to a bridge of this host's OVS."""

    name = "ovs"

    def __init__(self, host: str, rundir: str = "") -> None:
        self.host = host
        self.rundir = ovs_rundir(rundir)
        self.rates = RateTracker()
        self._warned = False

    def _vsctl(self) -> str:
        exe = shutil.which("ovs-vsctl")
        sock = self.rundir / "db.sock"
        if exe is None or not sock.exists():
            if not self._warned:
                log.info("no OVS here (%s): ovs_port points disabled until it appears",
                         "ovs-vsctl not installed" if exe is None else f"{sock} missing")
                self._warned = True
            return ""
        cmd = [exe, f"--db=unix:{sock}", "--timeout=2", "--format=json",
               "--columns=name,ports", "list", "Bridge", "--",
               "--columns=_uuid,name,interfaces", "list", "Port", "--",
               "--columns=_uuid,name,type,statistics,options,link_state", "list", "Interface"]
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False)
        if cp.returncode != 0:
            raise OvsError(f"ovs-vsctl ({sock}) failed: {cp.stderr.strip()}")
        self._warned = False
        return cp.stdout

    def collect(self, now_ns: int) -> list[Point]:
        out = self._vsctl()
        if not out:
            return []
        points = []
        keys: set[str] = set()
        for row in parse_vsctl_json(out):
            stats = row["statistics"]
            counters = {k: int(stats[k]) for k in _COUNTERS if k in stats}
            key = f"{row['bridge']}/{row['port']}"
            keys |= {key, key + "/drops"}
            fields: dict[str, float | int | bool] = dict(counters)
            fields.update(self.rates.rates(key, now_ns, counters, IF_RATES))
            fields.update(drops_rate(key, now_ns, counters, self.rates))
            fields["link_up"] = row["link_state"] == "up"
            tags = {"host": self.host, "bridge": row["bridge"], "port": row["port"],
                    "port_type": row["type"], "remote_ip": row["options"].get("remote_ip", "")}
            points.append(make_point("ovs_port", tags, fields, now_ns))
        self.rates.forget_except(keys)
        return points
