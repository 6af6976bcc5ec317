"""The committed dashboard JSON is generated from code, validates against the SDK model, and reads
only measurements and fields that exist in the telemetry schema."""

from __future__ import annotations

import copy
import json
import re

import pytest

from agent.schema import MEASUREMENTS
from dashboards import build


def test_committed_json_is_valid_and_up_to_date() -> None:
    build.check()


def test_every_dashboard_has_panels_with_influxql_on_the_deft_datasource() -> None:
    for uid in build.DASHBOARDS:
        doc = json.loads((build.JSON_DIR / f"{uid}.json").read_text())
        assert doc["uid"] == uid and "deft" in doc["tags"]
        panels = [p for p in doc["panels"] if p["type"] != "row"]
        assert panels, uid
        assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
        for p in panels:
            assert p["targets"], f"{uid}: {p['title']} has no query"
            for t in p["targets"]:
                assert t["datasource"] == {"type": "influxdb", "uid": "deft-influxdb"}
                assert t["rawQuery"] is True


_FROM = re.compile(r'FROM "([a-z_]+)"')
_FIELD = re.compile(r'(?:mean|max|min|last|sum|count)\("([a-z0-9_]+)"\)')


@pytest.mark.parametrize("uid", list(build.DASHBOARDS))
def test_queries_use_only_schema_measurements_and_fields(uid: str) -> None:
    for pq in build.panel_queries(build.render(uid)):
        inner = pq.query.split("FROM (")[-1]  # the innermost SELECT names the stored fields
        ms = _FROM.findall(inner)
        assert ms, pq
        m = MEASUREMENTS[ms[-1]]
        for f in _FIELD.findall(inner):
            assert m.field(f) is not None or m.tag(f) is not None, f"{uid}/{pq.panel}: {m.name}.{f}"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["panels"][1]["targets"][0].update(queryz="x"), "unknown key"),
        (lambda d: d["panels"][1]["targets"][0].update(rawQuery=False), "rawQuery"),
        (lambda d: d["panels"][1].update(gridPosition={"h": 1}), "not stable"),
        (lambda d: d.update(panelz=[]), "not stable"),
    ],
)
def test_validation_rejects_documents_outside_the_model(mutate, message) -> None:
    doc = copy.deepcopy(build.render("deft-nf"))
    build.validate(doc)
    mutate(doc)
    with pytest.raises(build.DashboardError, match=message):
        build.validate(doc)


def test_stale_json_is_detected(tmp_path) -> None:
    build.build_all(tmp_path)
    build.check(tmp_path)
    p = tmp_path / "deft-host.json"
    doc = json.loads(p.read_text())
    doc["title"] = "edited by hand"
    p.write_text(json.dumps(doc))
    with pytest.raises(build.DashboardError, match="stale"):
        build.check(tmp_path)
