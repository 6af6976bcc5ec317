"""Helpers shared by the placement service tests: agent-schema telemetry and service configs."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from agent.config import TelemetryConfig
from agent.schema import make_point
from agent.writer import make_writer
from placement.service import ServiceConfig

HOSTS = ["nfv1", "nfv2", "nfv3"]
# nfv1 carries 3 busy primaries (95 kpps of 100 kpps): overloaded; nfv2/nfv3 are nearly idle
LOAD = {
    "fw1": ("nfv1", 40000.0),
    "fw2": ("nfv1", 35000.0),
    "fw3": ("nfv1", 20000.0),
    "fw4": ("nfv2", 10000.0),
    "fw5": ("nfv3", 5000.0),
}


def write_agent_telemetry(tel: TelemetryConfig, age_s: float = 0.0) -> None:
    """Five 1-s agent intervals of host + nf points, the newest ``age_s`` seconds old."""
    now = time.time_ns() - int(age_s * 1e9)
    pts = []
    for k in range(5):  # 5 agent intervals of 1 s
        t = now - (4 - k) * 1_000_000_000
        for h in HOSTS:
            pts.append(make_point("host", {"host": h}, {"cpu_percent": 50.0, "cpu_count": 2}, t))
        # an idle traffic host's agent reports too: it is not an NFV host and never a target
        pts.append(make_point("host", {"host": "sink"}, {"cpu_percent": 1.0, "cpu_count": 2}, t))
        for inst, (h, pps) in LOAD.items():
            pts.append(
                make_point(
                    "nf",
                    {"host": h, "instance": inst, "nf_type": "firewall", "role": "primary"},
                    {"up": True, "processed_pps": pps, "latency_ms": 3.0},
                    t,
                )
            )
        # (window 60 s: a busy CI host may take seconds to import torch before the query)
        # a secondary must not count as a VNF
        pts.append(
            make_point(
                "nf",
                {"host": "nfv2", "instance": "fw1-b", "nf_type": "firewall", "role": "secondary"},
                {"up": True, "processed_pps": 0.0},
                t,
            )
        )
    make_writer(tel).write([p.to_line() for p in pts])


def service_config(tmp_path: Path, tel: TelemetryConfig, **kw: object) -> ServiceConfig:
    tfile = tmp_path / "telemetry.yml"
    tfile.write_text(yaml.safe_dump({"url": tel.url, "flavor": "v1", "database": tel.database}))
    hosts = [{"name": h, "address": "127.0.0.1", "capacity_pps": 100000} for h in HOSTS]
    data = {
        "hosts": hosts,
        "telemetry_file": str(tfile),
        "controller": "ctl",
        "window_s": 60,
        "stale_after_s": 60,
        **kw,
    }
    cfile = tmp_path / "placement.yml"
    cfile.write_text(yaml.safe_dump({k: str(v) if isinstance(v, Path) else v for k, v in data.items()}))
    return ServiceConfig.load(cfile)
