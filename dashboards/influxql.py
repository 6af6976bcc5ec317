"""An InfluxQL query target for grafana-foundation-sdk (Grafana's ``influxdb`` datasource, raw mode).

Why here: the SDK generates query models for the datasources whose schemas Grafana publishes; the
InfluxDB datasource is not among them in the pinned version. This class follows the SDK's own
pattern (``cogvariants.Dataquery`` + ``to_json``/``from_json`` + a ``Builder``) and is registered as
the ``influxdb`` variant, so ``Dashboard.from_json`` parses our targets back into this type —
strictly: an unknown key is an error, which is what the JSON validation test relies on.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

ResultFormat = Literal["time_series", "table", "logs"]
_KEYS = {"refId", "datasource", "query", "rawQuery", "resultFormat", "alias", "hide"}


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target: ``query`` may use ``$timeFilter``, ``$__interval`` and variables."""

    def __init__(self, ref_id: str = "A", query: str = "", result_format: ResultFormat = "time_series",
                 alias: str = "", datasource: dashboard.DataSourceRef | None = None,
                 hide: bool = False) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"refId": self.ref_id, "query": self.query, "rawQuery": True,
                                  "resultFormat": self.result_format}
        if self.alias:
            out["alias"] = self.alias
        if self.datasource is not None:
            out["datasource"] = self.datasource.to_json()
        if self.hide:
            out["hide"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(f"influxdb target: unknown key(s) {sorted(unknown)}")
        if data.get("rawQuery") is not True or not isinstance(data.get("query"), str):
            raise ValueError(f"influxdb target {data.get('refId')!r}: needs rawQuery=true and a query string")
        ds = data.get("datasource")
        return cls(ref_id=str(data.get("refId", "A")), query=data["query"],
                   result_format=data.get("resultFormat", "time_series"), alias=str(data.get("alias", "")),
                   datasource=dashboard.DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
                   hide=bool(data.get("hide", False)))


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder: ``InfluxQL('SELECT mean("cpu_percent") FROM "host" WHERE ...').alias("$tag_host")``."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=query)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self

    def datasource(self, ref: dashboard.DataSourceRef) -> Self:
        self._internal.datasource = ref
        return self


def register() -> None:
    """Make ``Dashboard.from_json`` parse ``influxdb`` targets as :class:`InfluxQLQuery` (idempotent)."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier="influxdb", from_json_hook=InfluxQLQuery.from_json))
