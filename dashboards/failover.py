"""Failovers: promotions, replayed input, epoch changes and the failover events."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    HOST_FILTER,
    INSTANCE_FILTER,
    event_annotation,
    event_table,
    host_variable,
    instance_variable,
    new_dashboard,
    ts,
)

UID = "deft-failover"


def _q(expr: str) -> str:
    return (f'SELECT {expr} FROM "nf" WHERE $timeFilter AND {HOST_FILTER} AND {INSTANCE_FILTER} '
            'GROUP BY time($__interval), "instance"')


def build() -> db.Dashboard:
    return (
        new_dashboard(UID, "DEFT / Failovers", "Promotions of secondaries and what they replayed.")
        .with_variable(host_variable())
        .with_variable(instance_variable())
        .annotation(event_annotation("failover", "red"))
        .with_panel(ts("Failovers (cumulative promotions)", [(_q('last("failovers")'), "$tag_instance")],
                       "none"))
        .with_panel(ts("Instances up", [(_q('count("up")'), "points $tag_instance")], "none",
                       "Points with up=true per interval; a gap means the control API did not answer."))
        .with_panel(ts("Replayed after promotion / duplicates dropped (cumulative)", [
            (_q('last("replayed")'), "replayed $tag_instance"),
            (_q('last("duplicates")'), "duplicates $tag_instance")], "none"))
        .with_panel(ts("Stale epoch / gaps skipped (cumulative)", [
            (_q('last("stale_epoch")'), "stale epoch $tag_instance"),
            (_q('last("gaps_skipped")'), "gaps $tag_instance")], "none"))
        .with_panel(event_table("Failover events", "\"kind\" = 'failover'"))
    )
