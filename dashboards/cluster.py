"""Cluster overview: throughput, p50/p99 latency and drops of every NF instance, host CPU, events."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    HOST_FILTER,
    event_annotation,
    event_table,
    host_variable,
    new_dashboard,
    row,
    single_stat,
    ts,
)

UID = "deft-cluster"


def build() -> db.Dashboard:
    w = f"$timeFilter AND {HOST_FILTER}"
    by_inst = 'GROUP BY time($__interval), "instance"'
    by_host = 'GROUP BY time($__interval), "host"'
    return (
        new_dashboard(UID, "DEFT / Cluster overview",
                      "Throughput, latency and drops of every NF instance; host load; failovers and "
                      "migrations as annotations.")
        .with_variable(host_variable())
        .annotation(event_annotation("migration", "blue"))
        .annotation(event_annotation("failover", "red"))
        .with_panel(single_stat(
            "Released (all instances)",
            f'SELECT sum("rate_pps") FROM (SELECT last("rate_pps") AS "rate_pps" FROM "nf" WHERE {w} '
            'GROUP BY "instance")', "pps", "Sum of each instance's latest released packets/s."))
        .with_panel(single_stat(
            "Input drops (all instances)",
            f'SELECT sum("drops_pps") FROM (SELECT last("drops_pps") AS "drops_pps" FROM "nf" WHERE {w} '
            'GROUP BY "instance")', "pps"))
        .with_panel(single_stat(
            "NF instances up",
            f'SELECT count("up") FROM (SELECT last("up") AS "up" FROM "nf" WHERE {w} AND "up" = true '
            'GROUP BY "instance")', "none"))
        .with_panel(single_stat(
            "Worst p99 latency",
            f'SELECT max("p99") FROM (SELECT last("latency_p99_ms") AS "p99" FROM "nf" WHERE {w} '
            'GROUP BY "instance")', "ms"))
        .with_panel(single_stat(
            "Spooled telemetry points",
            f'SELECT sum("s") FROM (SELECT last("points_spooled") AS "s" FROM "agent" WHERE {w} '
            'GROUP BY "host")', "none", "Points the agents hold on disk while InfluxDB is unreachable."))
        .with_panel(single_stat(
            "Max host CPU",
            f'SELECT max("c") FROM (SELECT last("cpu_percent") AS "c" FROM "host" WHERE {w} GROUP BY "host")',
            "percent"))
        .with_row(row("Data plane"))
        .with_panel(ts("Throughput per instance (released)",
                       [(f'SELECT mean("rate_pps") FROM "nf" WHERE {w} {by_inst}',
                         "$tag_instance")], "pps", stacked=True))
        .with_panel(ts("Latency p50 / p99",
                       [(f'SELECT mean("latency_p50_ms") FROM "nf" WHERE {w} '
                         'GROUP BY time($__interval), "instance"', "p50 $tag_instance"),
                        (f'SELECT max("latency_p99_ms") FROM "nf" WHERE {w} '
                         'GROUP BY time($__interval), "instance"', "p99 $tag_instance")], "ms",
                       "Since-start percentiles of each instance (nf/metrics.py histograms)."))
        .with_panel(ts("Drops",
                       [(f'SELECT mean("drops_pps") FROM "nf" WHERE {w} {by_inst}',
                         "input buffer $tag_instance"),
                        (f'SELECT sum("drops_pps") FROM "nic" WHERE {w} {by_host}',
                         "NICs $tag_host")], "pps"))
        .with_panel(ts("Host CPU",
                       [(f'SELECT mean("cpu_percent") FROM "host" WHERE {w} {by_host}',
                         "$tag_host")], "percent"))
        .with_row(row("Events"))
        .with_panel(event_table("Recent events", "\"kind\" =~ /.*/"))
    )
