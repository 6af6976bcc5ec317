"""The experiments: DEFT's sweeps (deft-seeds.md section 3.3) and the thesis' (section 5), as data.

Each entry names the parameters it sweeps (any field of :class:`~traffic.experiments.chain.PointConfig`),
the values of the full sweep and of the CI smoke sweep, the fixed settings, and which columns to
plot. Rates are lower than DEFT's testbed used where the lab's 2 shared cores would otherwise only
measure CPU starvation; every value can be overridden (``deftctl experiment run NAME --set k=v``).

Mapping of DEFT's knobs: BATCH_SIZE -> ``batch_size``, BUFFER_SIZE -> ``buffer_size`` (in batches),
GLOBAL_UPDATE_FREQUENCY (updates per batch) -> ``global_update_every`` = batch_size / frequency
packets, stamper/NF count -> ``nf_count``, iperf ``-P`` streams -> ``flows``; the thesis' threads ->
``workers``, cluster size -> ``replicas`` per primary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

E2E = ["delivered_pps", "loss_pct", "e2e_p50_ms", "e2e_p99_ms"]
NF = ["nf_dropped", "nf_in_buffer_ms", "nf_out_buffer_ms", "nf_commit_ms"]


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    source: str  # what in DEFT / the thesis this reproduces
    x: str  # parameter on the x axis
    series: str  # parameter that makes one line per value ("" = one line)
    grid: dict[str, list[Any]]
    smoke: dict[str, list[Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    smoke_fixed: dict[str, Any] = field(default_factory=lambda: {"duration_s": 1.0})
    trials: int = 3
    metrics: list[str] = field(default_factory=lambda: E2E + NF)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "batch_rate", "Batch size x packet rate",
            "DEFT test_data_params/batch_sz_vs_pkt_rate.env and plot_experiment.py (batch 20..140 x rate "
            "2500..7500 pps): latency is dominated by waiting for a batch to fill at low rates",
            x="batch_size", series="rate_pps",
            grid={"batch_size": [10, 40, 80, 140], "rate_pps": [1000, 2500, 5000]},
            smoke={"batch_size": [10, 80], "rate_pps": [1000]},
            fixed={"flows": 100, "buffer_size": 100, "duration_s": 5.0, "batch_timeout_ms": 50.0},
        ),
        Experiment(
            "buffer_rate", "Input buffer size x packet rate",
            "DEFT running-experiments pkt_rate_vs_buffer_size (buffer 1,5,10,20 batches x 6k/10k/12k pps, "
            "batch 80, 100 flows): small buffers tail-drop bursts",
            x="buffer_size", series="rate_pps",
            grid={"buffer_size": [1, 5, 10, 20], "rate_pps": [2000, 6000, 10000]},
            smoke={"buffer_size": [1, 10], "rate_pps": [2000]},
            fixed={"flows": 100, "batch_size": 80, "duration_s": 5.0},
        ),
        Experiment(
            "gf_rate", "Global-update frequency x packet rate",
            "DEFT exp_4 pkt_rate_vs_global_update_frequency (gf 1..20 per batch x rate, batch 50): every "
            "global update is a store round trip on the packet path",
            x="global_update_every", series="rate_pps",
            grid={"global_update_every": [0, 50, 10, 5], "rate_pps": [1000, 3000]},
            smoke={"global_update_every": [0, 10], "rate_pps": [1000]},
            fixed={"flows": 100, "batch_size": 50, "buffer_size": 100, "duration_s": 5.0},
        ),
        Experiment(
            "flows_nfs", "Flow count x NF count",
            "DEFT exp_3 stamper_cnt_vs_flow_cnt (1..10 NFs x 120..540 flows at 10 kpps aggregate, batch 50)",
            x="flows", series="nf_count",
            grid={"flows": [120, 240, 540], "nf_count": [1, 2, 3]},
            smoke={"flows": [120], "nf_count": [1, 2]},
            fixed={"rate_pps": 4000, "batch_size": 50, "buffer_size": 100, "duration_s": 5.0},
        ),
        Experiment(
            "threads", "Worker processes per NF x packet rate",
            "Thesis mechanism 1 (tables A.1/A.2: 1..5 threads, latency 55 -> 37 ms, throughput "
            "425 -> 816 B/s); here real worker processes (flow group -> worker), on a 2-core host",
            x="workers", series="rate_pps",
            grid={"workers": [1, 2, 3], "rate_pps": [1000, 4000]},
            smoke={"workers": [1, 2], "rate_pps": [1000]},
            fixed={"flows": 60, "batch_size": 30, "buffer_size": 100, "duration_s": 5.0},
        ),
        Experiment(
            "load_balancing", "Thesis 80 % balancer vs even split under Zipf-skewed flows x packet rate",
            "Thesis mechanism 3 (table A.8: 3 clusters x 3 NFs, latency with/without load balancing at "
            "25/50/100 pps); here 3 primaries (+1 spare the balancer may start), 60 Zipf(1.2) flows, "
            "each NF's capacity 0.6 x the offered rate; flow groups placed by nf.balancer.decide "
            "(balance=1) or split evenly (balance=0)",
            x="rate_pps", series="balance",
            grid={"rate_pps": [1500, 3000, 4500], "balance": [0, 1]},
            smoke={"rate_pps": [2000], "balance": [0, 1]},
            fixed={"nf_count": 3, "flows": 60, "distribution": "zipf", "zipf_s": 1.2, "replicas": 0,
                   "capacity_share": 0.6, "spare_nfs": 1, "batch_size": 30, "buffer_size": 20,
                   "duration_s": 5.0},
            metrics=[*E2E, "nf_dropped", "nf_in_buffer_ms", "nf_max_share"],
        ),
        Experiment(
            "clustering", "Replicas per primary (cluster size) x packet rate",
            "Thesis mechanism 2 (tables A.3/A.4: cluster replication; an NF sends state to its cluster "
            "peers only): cost of each extra replica on commit latency and throughput",
            x="replicas", series="rate_pps",
            grid={"replicas": [0, 1, 2, 3], "rate_pps": [1000, 4000]},
            smoke={"replicas": [1, 2], "rate_pps": [1000]},
            fixed={"flows": 60, "batch_size": 30, "buffer_size": 100, "duration_s": 5.0},
        ),
    ]
}
