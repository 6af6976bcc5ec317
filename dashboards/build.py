"""Generate, validate and write the dashboards' JSON (``dashboards/json/<uid>.json``).

Validation = the generated JSON parses back through the SDK's own model
(``grafana_foundation_sdk.models.dashboard.Dashboard.from_json`` with every panel/query plugin
registered, our InfluxQL target strict) and re-serialises to exactly the same document: nothing in
the file is outside the model. The committed files must equal a fresh build (``check``), so a
change to the code without regenerating the JSON fails the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel

from dashboards import cluster, failover, host, nf, placement, replication
from dashboards.influxql import InfluxQLQuery, register

JSON_DIR = Path(__file__).resolve().parent / "json"

#: uid -> builder function; the order is the order in Grafana's dashboard list
DASHBOARDS: dict[str, Callable[[], db.Dashboard]] = {
    cluster.UID: cluster.build,
    host.UID: host.build,
    nf.UID: nf.build,
    replication.UID: replication.build,
    failover.UID: failover.build,
    placement.UID: placement.build,
}


class DashboardError(ValueError):
    """A dashboard does not validate or the committed JSON is stale; the message names it."""


def _setup() -> None:
    register_default_plugins()
    register()


def _with_layout(doc: dict[str, Any]) -> dict[str, Any]:
    """Unique panel ids (Grafana needs them to address panels) in document order."""
    for i, p in enumerate(doc.get("panels", []), start=1):
        p["id"] = i
    return doc


def render(uid: str) -> dict[str, Any]:
    """The JSON document of dashboard ``uid``."""
    _setup()
    if uid not in DASHBOARDS:
        raise DashboardError(f"unknown dashboard {uid!r} (known: {', '.join(DASHBOARDS)})")
    model = DASHBOARDS[uid]().build()
    doc: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return _with_layout(doc)


def to_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def validate(doc: dict[str, Any]) -> None:
    """Raise :class:`DashboardError` unless ``doc`` round-trips through the SDK model unchanged and
    every target is an InfluxQL query on the DEFT datasource."""
    _setup()
    uid = doc.get("uid", "?")
    try:
        model = DashboardModel.from_json(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise DashboardError(f"{uid}: does not parse as a Grafana dashboard: {exc}") from exc
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    if again != doc:
        diff = sorted(set(_flatten(doc).items()) ^ set(_flatten(again).items()))[:5]
        raise DashboardError(f"{uid}: not stable through the SDK model; differences: {diff}")
    for p in model.panels or []:
        for t in getattr(p, "targets", None) or []:
            if not isinstance(t, InfluxQLQuery):
                raise DashboardError(f"{uid}: panel {getattr(p, 'title', '?')!r}: target is not InfluxQL")


def _flatten(x: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(x, dict):
        out: dict[str, str] = {}
        for k, v in x.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    if isinstance(x, list):
        out = {}
        for i, v in enumerate(x):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: json.dumps(x)}


def build_all(out_dir: Path = JSON_DIR) -> list[Path]:
    """Render, validate and write every dashboard; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid in DASHBOARDS:
        doc = render(uid)
        validate(doc)
        path = out_dir / f"{uid}.json"
        path.write_text(to_text(doc))
        paths.append(path)
    return paths


def check(out_dir: Path = JSON_DIR) -> None:
    """Raise :class:`DashboardError` if a committed JSON file is missing, stale or invalid."""
    for uid in DASHBOARDS:
        path = out_dir / f"{uid}.json"
        if not path.exists():
            raise DashboardError(f"{path}: missing (run: deftctl dashboards build)")
        doc = json.loads(path.read_text())
        validate(doc)
        if to_text(doc) != to_text(render(uid)):
            raise DashboardError(f"{path}: stale (run: deftctl dashboards build)")


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel (for tests and ``deftctl dashboards queries``)."""

    dashboard: str
    panel: str
    ref_id: str
    query: str


def panel_queries(doc: dict[str, Any]) -> list[PanelQuery]:
    """Every InfluxQL query of every panel (and template variable) of ``doc``."""
    out = [PanelQuery(doc["uid"], p.get("title", ""), t.get("refId", ""), t["query"])
           for p in doc.get("panels", []) for t in p.get("targets", []) if "query" in t]
    for v in doc.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            out.append(PanelQuery(doc["uid"], f"variable {v['name']}", "", str(v.get("query", ""))))
    return out


def expand(query: str, time_filter: str = "time > now() - 1h", interval: str = "1s") -> str:
    """Expand the Grafana macros our queries use, as Grafana would for "All" variables."""
    q = query.replace("$timeFilter", time_filter).replace("$__interval", interval)
    return re.sub(r"\$(host|instance)\b", ".*", q)
