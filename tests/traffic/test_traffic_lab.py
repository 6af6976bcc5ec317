"""On the shared namespace lab (``lab_inventory`` fixture: nfv1..3 + client + sink with their own
sshd): ``deftctl traffic run`` between the lab's client and sink hosts hits 50 kpps within 5 %,
sends exactly its count, loses nothing and stops by itself; over the VXLAN overlay when site.yml
has provisioned it, else over the management network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from traffic.cli import app
from traffic.inventory import traffic_hosts
from traffic.remote import RemoteError, check_reachable, connect

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _overlay_up(inv: Path) -> bool:
    hosts = traffic_hosts(inv)
    client = next(h for h in hosts if h.role == "client")
    sink = next(h for h in hosts if h.role == "sink")
    if not sink.overlay_ip:
        return False
    s = connect(client)
    try:
        check_reachable(s, sink, "overlay")
        return True
    except RemoteError:
        return False
    finally:
        s.close()


def test_lab_client_to_sink_50kpps(lab_inventory: Path, tmp_path: Path) -> None:
    network = "overlay" if _overlay_up(lab_inventory) else "mgmt"
    prof = tmp_path / "p.yml"
    prof.write_text(yaml.safe_dump({
        "name": "lab50k", "duration_s": 8, "count": 200_000, "method": "packet", "nice": -10,
        "flows": [{"proto": "udp", "dport": 9000, "sport": 10000, "count": 16, "size_bytes": 64}],
        "pattern": {"kind": "constant", "rate_pps": 50_000},
        "sink": {"idle_timeout_s": 2, "nice": -10},
    }))
    args = ["run", "-i", str(lab_inventory), "-p", str(prof), "--network", network, "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    gen = s["generators"][0]
    assert gen["stop_reason"] == "count" and gen["sent"] == 200_000 and gen["duration_s"] < 8
    assert abs(gen["achieved_pps"] - 50_000) / 50_000 <= 0.05, (network, gen["achieved_pps"])
    # The must-show is the generator's rate and bound; the sink's accounting must be exact: every packet
    # sent is either received once or counted lost (a loaded 2-core host can drop a few in the kernel).
    assert s["unique"] + s["loss"] == 200_000 and s["duplicates"] == 0
    assert s["loss"] <= 200_000 * 0.001, s["loss"]
    assert gen["host"] == "client" and s["sinks"][0]["host"] == "sink"
