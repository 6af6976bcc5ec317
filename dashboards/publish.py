"""Publish to a Grafana server with grafana-client: dashboards, and ``event`` points as annotations.

Dashboards are normally provisioned from ``dashboards/json`` by the ``grafana`` role (file
provisioning, idempotent); ``publish`` is for a Grafana that is not managed by the role, or to
push a change without re-running Ansible. Annotations: every ``event`` point (failover,
migration, placement, NF start/stop) in the chosen window becomes a Grafana annotation tagged
``deft``, its kind, ``host:<host>`` and ``instance:<instance>``; the dashboards' annotation
queries select them by tag. Re-publishing is idempotent: an event already present (same time and
text among the ``deft`` annotations) is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from grafana_client.api import GrafanaApi

from agent.query import QueryClient
from dashboards.common import TAG

log = logging.getLogger(__name__)

FOLDER_UID = "deft"
FOLDER_TITLE = "DEFT-RL"


class PublishError(RuntimeError):
    """Grafana refused or could not be reached; the message names the URL and the object."""


@dataclass(frozen=True)
class PublishResult:
    dashboards: list[str]
    annotations_added: int
    annotations_skipped: int


def connect(url: str, token: str = "", user: str = "", password: str = "", timeout_s: float = 10.0) -> Any:
    """A ``grafana_client.GrafanaApi`` for ``url`` (API token, or user/password basic auth).

    Typed ``Any``: grafana-client ships no type hints."""
    cred: str | tuple[str, str] | None = token or ((user, password) if user else None)
    try:
        return GrafanaApi.from_url(url=url, credential=cred, timeout=timeout_s)
    except Exception as exc:
        raise PublishError(f"Grafana {url}: {exc}") from exc


def ensure_folder(api: Any) -> str:
    """The DEFT folder's uid (created when missing)."""
    try:
        api.folder.get_folder(FOLDER_UID)
    except Exception:
        try:
            api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        except Exception as exc:
            raise PublishError(f"cannot create folder {FOLDER_TITLE!r}: {exc}") from exc
    return FOLDER_UID


def publish_dashboards(api: Any, docs: list[dict[str, Any]]) -> list[str]:
    """Create or overwrite each dashboard in the DEFT folder; returns their URLs (relative)."""
    folder = ensure_folder(api)
    urls = []
    for doc in docs:
        try:
            res = api.dashboard.update_dashboard(
                {"dashboard": {**doc, "id": None}, "folderUid": folder, "overwrite": True,
                 "message": "deftctl dashboards publish"})
        except Exception as exc:
            raise PublishError(f"dashboard {doc.get('uid')}: {exc}") from exc
        urls.append(str(res.get("url", doc.get("uid"))))
    return urls


def event_annotations(qc: QueryClient, since: str = "24h") -> list[dict[str, Any]]:
    """``event`` points of the last ``since`` (InfluxQL duration) as annotation dicts."""
    rows = qc.rows(f'SELECT * FROM "event" WHERE time > now() - {since}', epoch="ms")
    out = []
    for r in rows:
        tags = [TAG, str(r.get("kind", "event"))]
        if r.get("host"):
            tags.append(f"host:{r['host']}")
        if r.get("instance"):
            tags.append(f"instance:{r['instance']}")
        if r.get("ok") is False:
            tags.append("failed")
        title = str(r.get("title") or r.get("kind"))
        text = title if not r.get("text") or r.get("text") == title else f"{title}\n{r['text']}"
        out.append({"time": int(r["time"]), "tags": tags, "text": text})
    return out


def publish_annotations(api: Any, annotations: list[dict[str, Any]]) -> tuple[int, int]:
    """Add annotations not yet in Grafana; returns (added, skipped)."""
    if not annotations:
        return 0, 0
    t0 = min(a["time"] for a in annotations)
    t1 = max(a["time"] for a in annotations)
    try:
        existing = api.annotations.find_annotations(time_from=t0, time_to=t1, tags=[TAG], limit=100000)
    except Exception as exc:
        raise PublishError(f"cannot list annotations: {exc}") from exc
    seen = {(int(e.get("time", 0)), e.get("text", "")) for e in existing or []}
    added = skipped = 0
    for a in annotations:
        if (a["time"], a["text"]) in seen:
            skipped += 1
            continue
        try:
            api.annotations.add_annotation(time_from=a["time"], tags=a["tags"], text=a["text"])
        except Exception as exc:
            raise PublishError(f"cannot add annotation at {a['time']}: {exc}") from exc
        added += 1
    return added, skipped
