"""Benchmark: placement simulator throughput and RL decision latency (numbers printed, not asserted).

Usage: python bench/placement_sim.py [--batch 1024] [--scenario diurnal-small]
Goals (issue 5): >= 100k env-steps/s on 2 cores; < 10 ms per decision at 50 hosts / 500 VNFs.
"""

from __future__ import annotations

import argparse
import os

from placement.benchmark import decision_latency_ms, sim_steps_per_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--scenario", default="diurnal-small")
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}")
    for sc in (args.scenario, "diurnal-large", "scale-50x500"):
        b = args.batch if sc == args.scenario else max(1, args.batch // 16)
        wall, cpu = sim_steps_per_s(sc, b)
        print(f"simulator {sc:14s} batch {b:5d}: {wall:12,.0f} env-steps/s wall, {cpu:12,.0f} per CPU-s")
    lat = decision_latency_ms()
    print(
        f"RL decision (50 hosts / 500 VNFs): median {lat['median_ms']:.2f} ms wall, "
        f"p99 {lat['p99_ms']:.2f} ms, "
        f"median CPU {lat['median_cpu_ms']:.2f} ms; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
