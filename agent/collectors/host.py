"""Host resources (``host`` measurement) via psutil: CPU busy %, load, memory."""

from __future__ import annotations

import os

import psutil

from agent.schema import Point, make_point


class HostCollector:
    """CPU % is psutil's delta since the previous call, i.e. over exactly one agent interval."""

    name = "host"

    def __init__(self, host: str) -> None:
        self.host = host
        psutil.cpu_percent(interval=None)  # prime the delta

    def collect(self, now_ns: int) -> list[Point]:
        vm = psutil.virtual_memory()
        l1, l5, l15 = os.getloadavg()
        return [make_point("host", {"host": self.host}, {
            "cpu_percent": float(psutil.cpu_percent(interval=None)),
            "cpu_count": int(psutil.cpu_count() or 1),
            "load1": l1, "load5": l5, "load15": l15,
            "mem_total_bytes": int(vm.total),
            "mem_used_bytes": int(vm.total - vm.available),
            "mem_percent": float(vm.percent),
        }, now_ns)]
