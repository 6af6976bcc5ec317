"""The statestore contract file and store errors: bad input is named, unreachable stores say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from deftctl.config import ConfigError
from nf.store import StoreConfig, StoreError, load_config, open_store
from nf.store import keys as keyspace
from nf.store.localredis import free_port


def test_contract_file_loads(tmp_path: Path) -> None:
    p = tmp_path / "statestore.yml"
    p.write_text("backend: redis\nsentinels: ['10.77.0.2:26379', '10.77.0.3:26379']\nmaster_name: deft\n"
                 "password: s3cret\nwait_replicas: 1\n")
    cfg = load_config(p)
    assert cfg.sentinels == ("10.77.0.2:26379", "10.77.0.3:26379") and cfg.wait_replicas == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backend: etcd\n", "backend: 'etcd' is not one of redis, hazelcast"),
        ("backend: redis\nendpoints: ['nohost']\n", "endpoint 'nohost': expected host:port"),
        ("backend: redis\nendpointz: []\n", "unknown key(s): endpointz"),
        ("backend: redis\nwait_replicas: -1\n", "wait_replicas: must be >= 0"),
    ],
)
def test_bad_contract_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "statestore.yml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(p) in str(ei.value) and message in str(ei.value)


def test_missing_contract_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="statestore role"):
        load_config(tmp_path / "nope.yml")


def test_unreachable_redis_names_the_endpoint() -> None:
    port = free_port()
    cfg = StoreConfig(endpoints=(f"127.0.0.1:{port}",), timeout_ms=200, retry_ms=300)
    with open_store(cfg) as s, pytest.raises(StoreError, match=f"redis 127.0.0.1:{port}: GET: unreachable"):
        s.get(keyspace.global_key("x"))


def test_unreachable_hazelcast_names_the_cluster() -> None:
    port = free_port()
    cfg = StoreConfig(backend="hazelcast", endpoints=(f"127.0.0.1:{port}",), timeout_ms=200, retry_ms=500)
    with pytest.raises(StoreError, match=f"hazelcast deft@127.0.0.1:{port}: cannot connect"):
        open_store(cfg)


def test_bad_key_segments_are_rejected() -> None:
    with pytest.raises(keyspace.KeySegmentError, match="flow group"):
        keyspace.steering("svc", "a/b")
    with pytest.raises(keyspace.KeySegmentError, match="empty"):
        keyspace.lease("")
    assert keyspace.parse_checkpoint(keyspace.checkpoint("nf1", "17-10.0.0.1-5-10.0.0.2-80")) == (
        "nf1", "17-10.0.0.1-5-10.0.0.2-80")
