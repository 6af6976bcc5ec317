"""Per NF instance: DEFT's metric set (throughput, latency split, buffers) and process resources."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    HOST_FILTER,
    INSTANCE_FILTER,
    event_annotation,
    host_variable,
    instance_variable,
    new_dashboard,
    row,
    ts,
)

UID = "deft-nf"


def _q(field: str, agg: str = "mean") -> str:
    return (f'SELECT {agg}("{field}") FROM "nf" WHERE $timeFilter AND {HOST_FILTER} AND {INSTANCE_FILTER} '
            'GROUP BY time($__interval), "instance"')


def build() -> db.Dashboard:
    return (
        new_dashboard(UID, "DEFT / NF instances", "DEFT's metric set per NF instance (deft-seeds.md 3.1).")
        .with_variable(host_variable())
        .with_variable(instance_variable())
        .annotation(event_annotation("migration", "blue"))
        .annotation(event_annotation("failover", "red"))
        .with_row(row("Throughput"))
        .with_panel(ts("Released / processed packets/s", [
            (_q("rate_pps"), "released $tag_instance"), (_q("processed_pps"), "processed $tag_instance")],
            "pps", width=8))
        .with_panel(ts("Released bytes/s", [(_q("rate_bps"), "$tag_instance")], "Bps", width=8))
        .with_panel(ts("Input-buffer drops/s", [(_q("drops_pps"), "$tag_instance")], "pps", width=8))
        .with_row(row("Latency"))
        .with_panel(ts("Latency mean / p50 / p99", [
            (_q("latency_ms"), "mean $tag_instance"), (_q("latency_p50_ms"), "p50 $tag_instance"),
            (_q("latency_p99_ms", "max"), "p99 $tag_instance")], "ms"))
        .with_panel(ts("Latency split (DEFT)", [
            (_q("time_in_input_buffer_ms"), "input buffer $tag_instance"),
            (_q("time_in_output_buffer_ms"), "output buffer $tag_instance"),
            (_q("processing_time_ms"), "processing $tag_instance"),
            (_q("path_latency_ms"), "path $tag_instance")], "ms", stacked=True))
        .with_row(row("Buffers and state"))
        .with_panel(ts("Buffer maxima", [
            (_q("input_buffer_max", "max"), "input $tag_instance"),
            (_q("output_buffer_max", "max"), "output $tag_instance")], "none", width=8))
        .with_panel(ts("Malformed / duplicates / reordered (cumulative)", [
            (_q("malformed", "last"), "malformed $tag_instance"),
            (_q("duplicates", "last"), "duplicates $tag_instance"),
            (_q("reordered", "last"), "reordered $tag_instance")], "none", width=8))
        .with_panel(ts("Global-state updates (cumulative)", [(_q("global_updates", "last"), "$tag_instance")],
                       "none", width=8))
        .with_row(row("Process"))
        .with_panel(ts("CPU", [(_q("cpu_percent"), "$tag_instance")], "percent"))
        .with_panel(ts("RSS", [(_q("rss_bytes", "last"), "$tag_instance")], "bytes"))
    )
