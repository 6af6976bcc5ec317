"""An inventory with an unreachable host or a missing required variable fails fast, naming them.

Runs only playbooks/preflight.yml against temporary inventories: reachable hosts use the local
connection, the unreachable one points SSH at a closed port on 127.0.0.1. No lab is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deftctl.playbook import run_playbook


def _host(i: int, **extra: Any) -> dict[str, Any]:
    hv: dict[str, Any] = {
        "ansible_connection": "local", "ansible_host": "127.0.0.1",
        "ansible_python_interpreter": "/usr/bin/python3", "host_index": i, "tunnel_interface": "lo",
        "tunnel_ip": f"127.0.1.{i}", "overlay_ip": f"10.80.{i}.1",
    }
    hv.update(extra)
    return hv


def _inventory(tmp_path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    inv = {"all": {"children": {
        "nfv": {"hosts": hosts},
        "controller": {"hosts": {next(iter(hosts)): None}},
        "overlay": {"children": {"nfv": None}},
    }}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inv))
    return tmp_path


def test_complete_inventory_passes(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, {"pf1": _host(1), "pf2": _host(2)})
    run = run_playbook(inv, "playbooks/preflight.yml", timeout_s=300)
    rc, out = run.returncode, run.output
    assert rc == 0, out[-3000:]


def test_unreachable_host_is_named(tmp_path: Path) -> None:
    dead = _host(2, ansible_connection="ssh", ansible_port=9, ansible_user="root")
    inv = _inventory(tmp_path, {"pf1": _host(1), "pfdead": dead, "pf3": _host(3)})
    run = run_playbook(inv, "playbooks/preflight.yml", timeout_s=300)
    rc, out = run.returncode, run.output
    assert rc != 0
    assert "unreachable host(s): pfdead" in out, out[-3000:]
    after = out.split("unreachable host(s)")[1]
    assert "required variables" not in after, "did not stop after the reachability check"


def test_missing_variable_is_named(tmp_path: Path) -> None:
    broken = _host(2)
    del broken["tunnel_ip"]
    inv = _inventory(tmp_path, {"pf1": _host(1), "pf2": broken})
    run = run_playbook(inv, "playbooks/preflight.yml", timeout_s=300)
    rc, out = run.returncode, run.output
    assert rc != 0
    assert "host pf2: required variable 'tunnel_ip' is not defined" in out, out[-3000:]


def test_duplicate_host_index_is_named(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, {"pf1": _host(1), "pf2": _host(1, tunnel_ip="127.0.1.9")})
    run = run_playbook(inv, "playbooks/preflight.yml", timeout_s=300)
    rc, out = run.returncode, run.output
    assert rc != 0
    assert "host_index and tunnel_ip must be unique" in out, out[-3000:]
