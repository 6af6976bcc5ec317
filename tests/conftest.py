"""Shared pytest fixtures: real servers started on free ports under tmp dirs, stopped afterwards.

Redis: ``redis_server`` (session) is one standalone redis-server; ``redis_config`` gives a
:class:`nf.store.StoreConfig` for it and flushes it first, so each test starts empty.
``redis_sentinel_set`` (session) is a primary + replica + 3 Sentinels for failover tests.

InfluxDB: ``influxdb_server`` (session) is one influxd 1.6.7; ``influxdb_telemetry`` gives a
:class:`agent.config.TelemetryConfig` for a fresh per-test database on it (see below).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent.config import TelemetryConfig
from agent.influxd import InfluxdServer
from deftctl.playbook import PlaybookRun, run_playbook
from lab import lifecycle, rootns
from lab.config import LabConfig
from nf.store import StoreConfig
from nf.store.localredis import LocalRedis, SentinelSet, sentinel_set


@pytest.fixture(scope="session", autouse=True)
def socket_buffers() -> Iterator[None]:
    """Machine-wide socket buffers as ``deftctl lab up`` sets them (lab.rootns), for the whole session:
    tests that run their own userspace OVS (tests/nf/ovsnet.py) need them as much as the lab does."""
    if os.geteuid() != 0:
        yield
        return
    with rootns.socket_buffers_raised():
        yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    with LocalRedis(Path(tmp_path_factory.mktemp("redis"))) as srv:
        yield srv


@pytest.fixture
def redis_config(redis_server: LocalRedis) -> StoreConfig:
    with redis_server.client() as r:
        r.flushall()
    return StoreConfig(backend="redis", endpoints=(redis_server.endpoint,), timeout_ms=2000, retry_ms=3000)


@pytest.fixture(scope="session")
def redis_sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    with sentinel_set(Path(tmp_path_factory.mktemp("sentinel"))) as ss:
        yield ss


# --- InfluxDB (agent, dashboards, placement) -------------------------------------------------
# ``influxdb_server`` (session): one real influxd 1.6.7 (Debian) on a free 127.0.0.1 port with its
# data under a tmp dir (agent.influxd.InfluxdServer). ``influxdb_telemetry`` (function) creates a
# fresh database on it per test and returns the matching agent.config.TelemetryConfig (what
# /etc/deft/telemetry.yml holds on a real host), so tests never see each other's points.
# Tests that stop the server (outage tests) must start their own InfluxdServer instead.


@pytest.fixture(scope="session")
def influxdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdServer]:
    with InfluxdServer(Path(tmp_path_factory.mktemp("influxd"))) as srv:
        yield srv


@pytest.fixture
def influxdb_telemetry(influxdb_server: InfluxdServer, request: pytest.FixtureRequest) -> TelemetryConfig:
    db = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:60]
    influxdb_server.create_database(db, drop_first=True)
    return replace(influxdb_server.telemetry_config(), database=db)


# ------------------------------------------------------------------------------------------- lab
# The session lab (owned by the `lab` part). Other fixtures build on it, e.g. `provisioned_lab`
# (Ansible part) runs site.yml against the inventory it yields.

TEST_LAB_SUBNETS = ("10.91.0.0/24", "10.92.0.0/24")  # mgmt, data: apart from the default lab's 10.77/10.78


@pytest.fixture(scope="session")
def lab_inventory() -> Iterator[Path]:
    """A running namespace lab (3 NFV hosts + client + sink); yields its Ansible inventory directory.

    Lab name from ``DEFT_TEST_LAB`` (default ``tlab``; namespaces ``tlab-nfv1`` ...), subnets
    10.91.0.0/24 (management) and 10.92.0.0/24 (underlay). The inventory is ``inventory/<name>/``
    (``hosts.yml``, ``group_vars/all.yml``, ``.ssh/id_ed25519``, ``.ssh/known_hosts``): pass it as
    ``ansible-playbook -i <dir>``. With ``DEFT_TEST_LAB_REUSE=1`` a lab of that name that is already up
    is used as is and left up afterwards (fast iteration: ``deftctl lab up --name tlab --mgmt-subnet
    10.91.0.0/24 --data-subnet 10.92.0.0/24`` once, then run tests with REUSE=1). Otherwise the lab is
    brought up here from nothing (a leftover of an interrupted session is purged first) and removed at
    session end (``lab down --purge``: processes started in the hosts,
    e.g. by site.yml, are stopped too). Skips when not root.
    """
    if os.geteuid() != 0:
        pytest.skip("the namespace lab needs root (ip netns, mounts, sshd)")
    name = os.environ.get("DEFT_TEST_LAB", "tlab")
    if os.environ.get("DEFT_TEST_LAB_REUSE") == "1" and lifecycle.is_up(name):
        yield Path(lifecycle.status(name)["inventory"])
        return
    cfg = LabConfig(name=name, hosts=3, mgmt_subnet=TEST_LAB_SUBNETS[0], data_subnet=TEST_LAB_SUBNETS[1])
    # A lab of this name left by an interrupted session would be brought up on its old disks, whose
    # services hold the passwords of that session's (now deleted) inventory: remove it first.
    lifecycle.down(name, purge=True)
    try:
        report = lifecycle.up(cfg)
        yield report.inventory
    finally:
        lifecycle.down(name, purge=True)


# --------------------------------------------------------------------------------- provisioned lab
# ``provisioned_lab`` (session, Ansible part): runs ``ansible-playbook -i <lab inventory> site.yml``
# once on top of ``lab_inventory`` (deftctl.playbook.run_playbook); tests then read the lab it
# provisioned. The run's wall time and PLAY RECAP are on the returned PlaybookRun (reported, never
# asserted). A failed run is not skipped: dependent tests fail with the playbook's tail.


@pytest.fixture(scope="session")
def provisioned_lab(lab_inventory: Path) -> PlaybookRun:
    if os.environ.get("DEFT_TEST_LAB_REUSE") == "1" and os.environ.get("DEFT_TEST_SITE_DONE") == "1":
        # developer iteration on a reused lab that site.yml already provisioned: skip the re-run
        return PlaybookRun(argv=("site.yml", "skipped"), returncode=0, output="", wall_s=0.0)
    run = run_playbook(lab_inventory, "site.yml")
    logging.getLogger("tests.ansible").info(
        "site.yml on %s: rc=%d, wall time %.1f s", lab_inventory, run.returncode, run.wall_s
    )
    return run
