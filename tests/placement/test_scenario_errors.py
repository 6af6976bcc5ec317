"""Bad scenario files are rejected with a message naming the file and the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest

from deftctl.config import ConfigError
from placement.scenario import builtin_scenarios, load_scenario

GOOD = """
name: t
hosts: [{name: h, count: 2, capacity_pps: 1000}]
vnfs: [{name: v, count: 3, rate_pps: 100}]
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.yml"
    p.write_text(text)
    return p


def test_builtin_scenarios_all_load() -> None:
    files = builtin_scenarios()
    assert len(files) >= 12
    for f in files:
        assert load_scenario(f).n_vnfs > 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD + "bogus: 1\n", "unknown key(s): bogus"),
        ("name: t\nvnfs: [{name: v, rate_pps: 1}]\n", "missing required key: hosts"),
        (GOOD.replace("capacity_pps: 1000", "capacity_pps: lots"), "capacity_pps: expected float"),
        (GOOD.replace("capacity_pps: 1000", "capacity_pps: -5"), "hosts[0].capacity_pps: must be > 0"),
        (GOOD + "failures: [{host: h-9, at_s: 10}]\n", "failures[0].host: unknown host 'h-9'"),
        (GOOD + "diurnal: {amplitude: 2}\n", "diurnal.amplitude: must be in [0, 1]"),
        (GOOD + "flash: [{start_s: 1, duration_s: 5, multiplier: 2, fraction: 0}]\n", "flash[0].fraction"),
        ("name: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_file_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as ei:
        load_scenario(p)
    msg = str(ei.value)
    assert str(p) in msg and needle in msg, msg


def test_missing_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "nope.yml")
