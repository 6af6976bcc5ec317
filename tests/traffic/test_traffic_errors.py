"""Bad arguments and bad profiles give a clear error naming what is wrong (exit code 2, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from deftctl.config import ConfigError
from traffic.cli import app
from traffic.profile import load_profile

runner = CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yml"
    p.write_text(text)
    return p


BASE = "name: x\nduration_s: 1\nflows: [{dst: 10.0.0.2}]\n"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: x\nflows: [{dst: 10.0.0.2}]\n", "missing required key: duration_s"),
        (BASE + "bogus: 1\n", "unknown key(s): bogus"),
        (BASE + "method: carrier-pigeon\n", "method 'carrier-pigeon'"),
        ("name: x\nduration_s: 1\nflows: [{dst: 10.0.0.256}]\n", "'10.0.0.256' is not an IPv4"),
        ("name: x\nduration_s: 1\nflows: [{dst: 10.0.0.2, size_bytes: 20}]\n", "size_bytes 20 out of"),
        ("name: x\nduration_s: 1\nflows: [{dst: 10.0.0.2, dport: 70000}]\n", "70000 is not a port"),
        ("name: x\nduration_s: -1\nflows: [{dst: 10.0.0.2}]\n", "duration_s -1.0 must be in"),
        (BASE + "pattern: {kind: flash_crowd}\n", "flash_crowd needs peak_pps"),
        (BASE + "pattern: {kind: zigzag}\n", "kind 'zigzag'"),
        (BASE + "method: udp\nflows: [{dst: 10.0.0.2, proto: tcp}]\n", "method udp cannot send TCP"),
        (BASE + "duration_s: fast\n", "duration_s: expected float"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_profiles_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_profile(write(tmp_path, text))
    assert needle in str(ei.value)


def test_cli_gen_missing_profile_file(tmp_path: Path) -> None:
    r = runner.invoke(app, ["gen", "--profile", str(tmp_path / "nope.yml")])
    assert r.exit_code == 2
    assert "nope.yml: cannot read" in r.output


def test_cli_gen_bad_dst(tmp_path: Path) -> None:
    r = runner.invoke(app, ["gen", "--profile", str(write(tmp_path, BASE)), "--dst", "not-an-ip"])
    assert r.exit_code == 2 and "'not-an-ip' is not an IPv4 address" in r.output


def test_cli_gen_bad_method_override(tmp_path: Path) -> None:
    r = runner.invoke(app, ["gen", "--profile", str(write(tmp_path, BASE)), "--method", "smoke"])
    assert r.exit_code == 2 and "method 'smoke'" in r.output


def test_cli_sink_bad_ports(tmp_path: Path) -> None:
    r = runner.invoke(app, ["sink", "--ports", "90a0"])
    assert r.exit_code == 2 and "not a comma-separated list" in r.output
    r = runner.invoke(app, ["sink", "--ports", "0"])
    assert r.exit_code == 2 and "0 is not a port" in r.output


def test_cli_sink_needs_ports() -> None:
    r = runner.invoke(app, ["sink"])
    assert r.exit_code == 2 and "no ports" in r.output


def test_cli_run_missing_inventory(tmp_path: Path) -> None:
    prof = str(write(tmp_path, BASE))
    r = runner.invoke(app, ["run", "--inventory", str(tmp_path / "inv"), "--profile", prof])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_cli_run_inventory_without_traffic_hosts(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    nfv:\n      hosts:\n        n1: {ansible_host: 10.0.0.9}\n")
    r = runner.invoke(app, ["run", "--inventory", str(inv), "--profile", str(write(tmp_path, BASE))])
    assert r.exit_code == 2 and "traffic group has no hosts" in r.output


def test_cli_run_bad_role(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    traffic:\n      hosts:\n        c1: {traffic_role: bystander}\n")
    r = runner.invoke(app, ["run", "--inventory", str(inv), "--profile", str(write(tmp_path, BASE))])
    assert r.exit_code == 2 and "traffic_role 'bystander' must be client or sink" in r.output
