"""Shared pieces of every DEFT dashboard: datasource, variables, panel helpers, annotations.

Conventions (so every panel's query can be executed outside Grafana, see :func:`expand`):
queries are raw InfluxQL using only ``$timeFilter``, ``$__interval`` and the variables ``$host``
and ``$instance`` (multi-value, "All" = ``.*``, used as ``=~ /^$host$/``).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.influxql import InfluxQL

#: uid of the InfluxDB datasource the grafana role provisions (from /etc/deft/telemetry.yml)
DATASOURCE_UID = "deft-influxdb"
DS = dm.DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)
#: Grafana's own annotation store (where ``deftctl dashboards publish`` puts the events)
GRAFANA_DS = dm.DataSourceRef(type_val="datasource", uid="grafana")
#: every dashboard carries this tag, and every published event annotation too
TAG = "deft"
HOST_FILTER = '"host" =~ /^$host$/'
INSTANCE_FILTER = '"instance" =~ /^$instance$/'


def new_dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    """A dashboard with DEFT defaults: last 15 min, 5 s refresh, shared crosshair, tag ``deft``."""
    return (
        db.Dashboard(title).uid(uid).description(description).tags([TAG]).refresh("5s")
        .time("now-15m", "now").timezone("browser").tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .readonly()
    )


def _tag_values_var(name: str, label: str, query: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name).label(label).datasource(DS).query(query).multi(True).include_all(True)
        .all_value(".*").refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )


def host_variable() -> db.QueryVariable:
    return _tag_values_var("host", "Host", 'SHOW TAG VALUES FROM "host" WITH KEY = "host"')


def instance_variable() -> db.QueryVariable:
    return _tag_values_var("instance", "NF instance",
                           f'SHOW TAG VALUES FROM "nf" WITH KEY = "instance" WHERE {HOST_FILTER}')


def event_annotation(kind: str, color: str) -> db.AnnotationQuery:
    """Grafana annotations tagged ``deft`` + ``kind`` (published from the ``event`` measurement)."""
    return (
        db.AnnotationQuery().name(f"{kind} events").datasource(GRAFANA_DS).enable(True).icon_color(color)
        .target(db.AnnotationTarget().type("tags").tags([TAG, kind]).match_any(False).limit(500))
    )


def _targets(queries: list[tuple[str, str]]) -> list[InfluxQL]:
    return [InfluxQL(q).alias(alias).ref_id(chr(ord("A") + i)).datasource(DS)
            for i, (q, alias) in enumerate(queries)]


def ts(title: str, queries: list[tuple[str, str]], unit: str, description: str = "", width: int = 12,
       stacked: bool = False) -> timeseries.Panel:
    """A time-series panel; ``queries`` = [(InfluxQL, legend alias)]."""
    p = (
        timeseries.Panel().title(title).description(description).datasource(DS).unit(unit)
        .height(8).span(width).line_width(1).fill_opacity(10 if not stacked else 40).show_points(
            cm.VisibilityMode.NEVER).legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                                           .placement(cm.LegendPlacement.BOTTOM).show_legend(True))
    )
    if stacked:
        p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
    for t in _targets(queries):
        p = p.with_target(t)
    return p


def single_stat(title: str, query: str, unit: str, description: str = "", width: int = 4) -> stat.Panel:
    """A one-number panel (the query should return one value per series)."""
    p = (
        stat.Panel().title(title).description(description).datasource(DS).unit(unit).height(4).span(width)
        .graph_mode(cm.BigValueGraphMode.AREA).reduce_options(
            cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return p.with_target(InfluxQL(query).ref_id("A").datasource(DS))


def event_table(title: str, where: str, description: str = "", width: int = 24) -> table.Panel:
    """The ``event`` measurement as a table (newest first)."""
    q = (f'SELECT "kind", "instance", "host", "title", "ok", "duration_ms", "src_host", "dst_host" '
         f'FROM "event" WHERE $timeFilter AND {where} ORDER BY time DESC LIMIT 200')
    return (
        table.Panel().title(title).description(description).datasource(DS).height(8).span(width)
        .with_target(InfluxQL(q).table().ref_id("A").datasource(DS))
    )


def row(title: str) -> db.Row:
    return db.Row(title)
