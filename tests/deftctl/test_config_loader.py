"""The one config loader rejects bad config with a message naming the file and the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deftctl.config import ConfigError, from_dict, load, to_dict


@dataclass(frozen=True)
class Host:
    name: str
    capacity_pps: float


@dataclass(frozen=True)
class Cluster:
    hosts: list[Host]
    vni: int = 4242
    tags: dict[str, str] = field(default_factory=dict)
    state_dir: Path = Path("/var/lib/deft")


def test_loads_nested_dataclasses_and_casts(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("hosts:\n  - {name: a, capacity_pps: 1000}\nstate_dir: /tmp/x\n")
    cfg = load(Cluster, f)
    assert cfg.hosts[0].capacity_pps == 1000.0
    assert cfg.state_dir == Path("/tmp/x")
    assert to_dict(cfg)["state_dir"] == "/tmp/x"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("hosts: []\nvnii: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yml: unknown key\(s\): vnii"):
        load(Cluster, f)


def test_missing_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"scenario: missing required key: .*capacity_pps"):
        from_dict(Cluster, {"hosts": [{"name": "a"}]}, source="scenario")


def test_wrong_type_is_named() -> None:
    with pytest.raises(ConfigError, match=r"src: .*capacity_pps: expected float, got str"):
        from_dict(Cluster, {"hosts": [{"name": "a", "capacity_pps": "fast"}]}, source="src")


def test_invalid_yaml_and_missing_file_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("hosts: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yml: invalid YAML"):
        load(Cluster, bad)
    with pytest.raises(ConfigError, match=r"nope\.yml: cannot read"):
        load(Cluster, tmp_path / "nope.yml")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        from_dict(Cluster, [1, 2], source="x")  # type: ignore[arg-type]
