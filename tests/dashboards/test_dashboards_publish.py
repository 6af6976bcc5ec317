"""Publishing to a real Grafana with grafana-client (skipped: no Grafana server runs on these machines).

Set ``DEFT_GRAFANA_URL`` (and ``DEFT_GRAFANA_TOKEN`` or ``DEFT_GRAFANA_USER``/``DEFT_GRAFANA_PASSWORD``)
to run it against a Grafana you own; it creates the DEFT folder, the dashboards and test annotations.
"""

from __future__ import annotations

import os
import time

import pytest

from dashboards import build
from dashboards import publish as pub

URL = os.environ.get("DEFT_GRAFANA_URL", "")
pytestmark = pytest.mark.skipif(
    not URL, reason="no Grafana server configured (set DEFT_GRAFANA_URL); none is installable here")


@pytest.fixture
def api():
    return pub.connect(URL, os.environ.get("DEFT_GRAFANA_TOKEN", ""), os.environ.get("DEFT_GRAFANA_USER", ""),
                       os.environ.get("DEFT_GRAFANA_PASSWORD", ""))


def test_dashboards_are_published_and_readable(api) -> None:
    docs = [build.render(uid) for uid in build.DASHBOARDS]
    pub.publish_dashboards(api, docs)
    for doc in docs:
        got = api.dashboard.get_dashboard(doc["uid"])["dashboard"]
        assert got["title"] == doc["title"]
        assert len(got["panels"]) == len(doc["panels"])


def test_annotations_are_added_once(api) -> None:
    t = int(time.time() * 1000)
    anns = [{"time": t, "tags": ["deft", "migration", "host:ag-test"], "text": f"ag publish test {t}"}]
    assert pub.publish_annotations(api, anns) == (1, 0)
    assert pub.publish_annotations(api, anns) == (0, 1)
