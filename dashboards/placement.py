"""Placement: decisions and rewards of the placement service, migrations as annotations and a table."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import event_annotation, event_table, new_dashboard, single_stat, ts

UID = "deft-placement"


def build() -> db.Dashboard:
    g = 'GROUP BY time($__interval), "policy"'
    pl = 'FROM "placement" WHERE $timeFilter'
    return (
        new_dashboard(UID, "DEFT / Placement", "Decisions and rewards of the RL/baseline placement service.")
        .annotation(event_annotation("migration", "blue"))
        .annotation(event_annotation("placement", "purple"))
        .with_panel(single_stat("Decisions", f'SELECT count("reward") {pl}',
                                "none", width=6))
        .with_panel(single_stat("Migrations issued", f'SELECT sum("migrations") {pl}',
                                "none", width=6))
        .with_panel(single_stat("Mean reward", f'SELECT mean("reward") {pl}',
                                "none", width=6))
        .with_panel(single_stat("Migration events", 'SELECT count("title") FROM "event" WHERE $timeFilter '
                                "AND \"kind\" = 'migration'", "none", width=6))
        .with_panel(ts("Reward", [(f'SELECT mean("reward") {pl} {g}',
                                   "$tag_policy")], "none"))
        .with_panel(ts("Episode return", [(f'SELECT last("episode_return") {pl} {g}',
                                           "$tag_policy")], "none"))
        .with_panel(ts("Decision time", [(f'SELECT mean("decision_ms") {pl} {g}',
                                          "$tag_policy")], "ms"))
        .with_panel(ts("Migrations per interval", [
            (f'SELECT sum("migrations") {pl} {g}', "$tag_policy")], "none"))
        .with_panel(event_table("Migrations and placement decisions", "(\"kind\" = 'migration' OR "
                                "\"kind\" = 'placement')"))
    )
