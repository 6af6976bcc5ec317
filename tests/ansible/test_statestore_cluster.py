"""The state store the `statestore` role deploys: one member per NFV host, replicated across hosts,
and it survives losing the primary's process (Sentinel promotes a replica).

Commands run inside the lab hosts (their own namespaces) with ``redis-cli``; credentials come from
each host's contract file ``/etc/deft/statestore.yml``, exactly what nf/ and agent/ read.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from deftctl.playbook import run_playbook
from lab import procs
from lab.lifecycle import host_run
from lab.state import load_state

pytestmark = [pytest.mark.lab, pytest.mark.netns, pytest.mark.slow]
SUPERVISORCTL = ("supervisorctl", "-c", "/etc/deft/supervisor/supervisord.conf")
REDIS_SERVICE = "deft-redis"
StoreLab = tuple[str, Path, dict[str, dict[str, Any]]]
FAILOVER_WAIT_S = 90.0  # generous bound for "eventually promoted", not a timing assertion


def _lab(provisioned: Any, inventory: Path) -> tuple[str, Path]:
    """(lab name, inventory) of the lab site.yml provisioned; fails with the playbook's tail if it failed."""
    assert provisioned.returncode == 0, provisioned.output[-3000:]
    name = yaml.safe_load((inventory / "group_vars" / "all.yml").read_text())["deft_lab_name"]
    return name, inventory


def on_host(lab: str, host: str, *argv: str) -> str:
    return host_run(lab, host, list(argv))


def inventory_hosts(inventory: Path, group: str) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = yaml.safe_load((inventory / "hosts.yml").read_text())["all"][
        "children"
    ][group]["hosts"]
    return hosts


def _contract(lab: str, host: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(on_host(lab, host, "cat", "/etc/deft/statestore.yml"))
    return data


def _cli(
    lab: str,
    host: str,
    contract: dict[str, Any],
    target: str,
    *cmd: str,
    port: int = 6379,
    check: bool = True,
) -> str:
    argv = ["env", f"REDISCLI_AUTH={contract['password']}", "redis-cli", "--no-auth-warning",
            "-h", target, "-p", str(port), *cmd]  # fmt: skip
    return host_run(lab, host, argv, check=check).strip()


def _primary(lab: str, host: str, contract: dict[str, Any]) -> str:
    out: str = _cli(lab, host, contract, "127.0.0.1", "SENTINEL", "get-master-addr-by-name",
               contract["master_name"], port=26379)  # fmt: skip
    return out.splitlines()[0]


@pytest.fixture
def store_lab(provisioned_lab: Any, lab_inventory: Path) -> StoreLab:
    name, inv = _lab(provisioned_lab, lab_inventory)
    if yaml.safe_load((inv / "group_vars" / "all.yml").read_text()).get("state_backend") != "redis":
        pytest.skip("lab runs the hazelcast backend: no Hazelcast member can run here (see platform.md)")
    return name, inv, inventory_hosts(inv, "nfv")


def test_one_member_per_nfv_host(store_lab: tuple[str, Path, dict[str, dict[str, Any]]]) -> None:
    lab, _inv, nfv = store_lab
    contract = _contract(lab, next(iter(nfv)))
    assert contract["backend"] == "redis"
    assert sorted(contract["endpoints"]) == sorted(f"{v['ansible_host']}:6379" for v in nfv.values())
    roles = {}
    for host, hv in nfv.items():
        roles[host] = _cli(lab, host, contract, hv["ansible_host"], "ROLE").splitlines()[0]
        assert _cli(lab, host, contract, "127.0.0.1", "PING", port=26379) == "PONG"
    assert sorted(roles.values()) == sorted(["master"] + ["slave"] * (len(nfv) - 1))
    # every host of the lab (traffic hosts too) has the same contract
    for host in inventory_hosts(_inv, "traffic"):
        assert _contract(lab, host) == contract


def test_key_written_through_one_host_is_read_through_another(
    store_lab: tuple[str, Path, dict[str, dict[str, Any]]],
) -> None:
    lab, _inv, nfv = store_lab
    hosts = list(nfv)
    contract = _contract(lab, hosts[0])
    key, value = f"test:{uuid.uuid4().hex}", uuid.uuid4().hex
    primary = _primary(lab, hosts[0], contract)
    assert _cli(lab, hosts[0], contract, primary, "SET", key, value) == "OK"
    assert int(_cli(lab, hosts[0], contract, primary, "WAIT", str(len(nfv) - 1), "5000")) == len(nfv) - 1
    for host in hosts[1:]:
        assert _cli(lab, host, contract, "127.0.0.1", "GET", key) == value


def test_killing_the_primary_promotes_a_replica(
    store_lab: tuple[str, Path, dict[str, dict[str, Any]]],
) -> None:
    lab, _inv, nfv = store_lab
    hosts = list(nfv)
    contract = _contract(lab, hosts[0])
    old = _primary(lab, hosts[0], contract)
    key, value = f"test:{uuid.uuid4().hex}", uuid.uuid4().hex
    assert _cli(lab, hosts[0], contract, old, "SET", key, value) == "OK"
    _cli(lab, hosts[0], contract, old, "WAIT", str(len(nfv) - 1), "5000")

    victim_host = next(h for h, hv in nfv.items() if hv["ansible_host"] == old)
    st = load_state(Path("/var/lib/deft-lab"), lab)
    assert st is not None
    hs = st.hosts[victim_host]
    snap = procs.snapshot()
    pids = procs.daemons_in(procs.host_pids(procs.netns_inode(hs.ns), [hs.mntns], snap), snap)["redis-server"]
    # The member dies and stays dead (a crashed process alone is restarted by the supervisor within
    # ~1 s, faster than Sentinel's down-after, and simply rejoins as the primary it was).
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    on_host(lab, victim_host, *SUPERVISORCTL, "stop", REDIS_SERVICE)
    try:
        _expect_failover(lab, hosts, victim_host, contract, old, key, value)
    finally:
        on_host(lab, victim_host, *SUPERVISORCTL, "start", REDIS_SERVICE)
    # the old primary comes back as a replica of the new one and gets the key written meanwhile
    deadline = time.monotonic() + FAILOVER_WAIT_S
    role = ""
    while time.monotonic() < deadline:
        role = (_cli(lab, victim_host, contract, "127.0.0.1", "ROLE", check=False).splitlines() or [""])[0]
        if role == "slave" and _cli(lab, victim_host, contract, "127.0.0.1", "GET", f"{key}:after") == "1":
            break
        time.sleep(1)
    assert role == "slave"


def _expect_failover(
    lab: str, hosts: list[str], victim_host: str, contract: dict[str, Any], old: str, key: str, value: str
) -> None:
    observer = next(h for h in hosts if h != victim_host)
    deadline = time.monotonic() + FAILOVER_WAIT_S
    new = old
    while time.monotonic() < deadline:
        new = _primary(lab, observer, contract)
        if new != old:
            break
        time.sleep(1)
    assert new != old, f"no replica promoted within {FAILOVER_WAIT_S:.0f} s"
    assert new in {e.rsplit(":", 1)[0] for e in contract["endpoints"]}
    assert _cli(lab, observer, contract, new, "GET", key) == value
    assert _cli(lab, observer, contract, new, "SET", f"{key}:after", "1") == "OK"
    assert _cli(lab, observer, contract, new, "GET", f"{key}:after") == "1"


SENTINEL_SERVICE = "deft-redis-sentinel"
SENTINEL_RUNTIME = "/var/lib/deft/redis/sentinel.conf"
CURRENT_USER_LINE = "^user default on #[0-9a-f]+ "  # the password's SHA-256, as CONFIG REWRITE writes it
OLD_USER_LINE = "user default on >not-the-password "


def test_statestore_play_heals_a_sentinel_with_an_old_password(
    store_lab: tuple[str, Path, dict[str, dict[str, Any]]],
) -> None:
    """CI was red once because a lab came up on an interrupted run's disks while the fresh clone
    generated new passwords: the old sentinel rewrote its runtime file with the old password and
    answered NOAUTH to the role. Here one sentinel's runtime file gets a password no one knows
    (its CONFIG REWRITE ``user default`` line, which wins over ``requirepass``); the statestore
    play must find it stale, replace its runtime config and leave it naming the primary."""
    lab, inv, nfv = store_lab
    host = list(nfv)[-1]
    contract = _contract(lab, host)
    on_host(lab, host, *SUPERVISORCTL, "stop", SENTINEL_SERVICE)
    try:
        on_host(lab, host, "sed", "-i", "-E", f"s/{CURRENT_USER_LINE}/{OLD_USER_LINE}/", SENTINEL_RUNTIME)
    finally:
        on_host(lab, host, *SUPERVISORCTL, "start", SENTINEL_SERVICE)
    answer = _cli(lab, host, contract, "127.0.0.1", "PING", port=26379, check=False)
    assert "PONG" not in answer, f"the sentinel on {host} still accepts the password: {answer}"

    run = run_playbook(inv, "playbooks/statestore.yml")
    assert run.ok, run.tail()
    assert _primary(lab, host, contract) in {e.rsplit(":", 1)[0] for e in contract["endpoints"]}
