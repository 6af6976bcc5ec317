"""Replication and output commit: commit latency, deltas, replicated bytes, replica log."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    HOST_FILTER,
    INSTANCE_FILTER,
    host_variable,
    instance_variable,
    new_dashboard,
    ts,
)

UID = "deft-replication"


def _q(expr: str) -> str:
    return (f'SELECT {expr} FROM "nf" WHERE $timeFilter AND {HOST_FILTER} AND {INSTANCE_FILTER} '
            'GROUP BY time($__interval), "instance"')


def _rate(counter: str) -> str:
    """Per-second rate of a cumulative nf/metrics.py counter (restarts clamp to 0)."""
    return _q(f'non_negative_derivative(last("{counter}"), 1s)')


def build() -> db.Dashboard:
    return (
        new_dashboard(UID, "DEFT / Replication and output commit",
                      "Batches are released only after every replica acknowledged their state delta.")
        .with_variable(host_variable())
        .with_variable(instance_variable())
        .with_panel(ts("Commit latency (batch close -> last ack)", [
            (_q('mean("commit_latency_ms")'), "mean $tag_instance"),
            (_q('max("commit_p99_ms")'), "p99 $tag_instance")], "ms"))
        .with_panel(ts("Time in output buffer", [(_q('mean("time_in_output_buffer_ms")'), "$tag_instance")],
                       "ms", "Output-commit wait per packet."))
        .with_panel(ts("Batches/s and mean batch size", [
            (_rate("batches"), "batches/s $tag_instance"),
            (_q('mean("batch_size_mean")'), "packets/batch $tag_instance")], "short"))
        .with_panel(ts("Deltas sent / applied per second", [
            (_rate("deltas_sent"), "sent $tag_instance"), (_rate("deltas_applied"), "applied $tag_instance")],
            "short"))
        .with_panel(ts("Replication bytes/s", [(_rate("replicated_bytes"), "$tag_instance")], "Bps"))
        .with_panel(ts("Replica log (per second)", [
            (_rate("replica_logged"), "logged $tag_instance"),
            (_rate("replica_discarded"), "discarded $tag_instance"),
            (_rate("replica_log_overflow"), "overflow $tag_instance")], "pps"))
        .with_panel(ts("Fenced NACKs (cumulative)", [(_q('last("fenced_nacks")'), "$tag_instance")], "none"))
    )
