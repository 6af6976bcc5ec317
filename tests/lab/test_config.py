"""LabConfig validation and the derived address plan (no namespaces needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deftctl.config import ConfigError, from_dict
from lab.config import LabConfig


def test_default_plan_addresses_and_indices() -> None:
    plans = LabConfig().plan()
    assert [p.host for p in plans] == ["nfv1", "nfv2", "nfv3", "client", "sink"]
    assert [p.index for p in plans] == [1, 2, 3, 4, 5]
    assert [p.mgmt_ip for p in plans] == [f"10.77.0.{10 + i}" for i in range(1, 6)]
    assert [p.data_ip for p in plans] == [f"10.78.0.{10 + i}" for i in range(1, 6)]
    assert [p.overlay_ip for p in plans] == [f"10.80.{i}.1" for i in range(1, 6)]
    assert plans[3].traffic_role == "client" and plans[4].traffic_role == "sink"
    assert plans[0].ns == "lab-nfv1" and plans[3].mgmt_veth == "lab-client-m"


def test_traffic_hosts_follow_nfv_count() -> None:
    plans = LabConfig(hosts=5).plan()
    assert {p.host: p.index for p in plans}["client"] == 6
    assert {p.host: p.index for p in plans}["sink"] == 7


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"name": "Lab"}, "name"),
        ({"name": "toolong7"}, "name"),
        ({"hosts": 0}, "hosts"),
        ({"mgmt_subnet": "10.77.0.1/24"}, "mgmt_subnet"),
        ({"mgmt_subnet": "10.77.0.0/28", "hosts": 8}, "mgmt_subnet"),
        ({"data_subnet": "10.77.0.0/24"}, "overlaps"),
        ({"hazelcast_archive": "/nonexistent/hz.tar.gz"}, "hazelcast_archive"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        from_dict(LabConfig, data, source="lab.yml")


def test_state_backend_follows_archive(tmp_path: Path) -> None:
    archive = tmp_path / "hazelcast-5.5.0.tar.gz"
    archive.write_bytes(b"x")
    assert LabConfig().state_backend == "redis"
    assert LabConfig(hazelcast_archive=archive).state_backend == "hazelcast"
