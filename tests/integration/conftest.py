"""Fixtures of the integration tests: a DEFT service deployed on the provisioned lab by Ansible.

``declared_service`` (once for the whole package) runs ``playbooks/nf.yml`` (the ``nf`` role, also
the last step of site.yml) with one declared service - a ``counter`` pair, primary on nfv1,
secondary on nfv2, 16 flow groups - on top of ``provisioned_lab`` (site.yml once per session). At
the end of the package it declares the services without it again (``playbooks/nf.yml`` with no
extra vars), which stops its stamper: later tests route to the sinks' overlay addresses directly.

``deployed_service`` (per test) starts from no instance: it deploys the declared pair the way the
role does (``python -m deploy services`` on the controller) and removes it afterwards (``python -m
deploy remove``: steering deleted, containers stopped by their agents) even when the test failed,
so a failover or migration of one test never leaks into the next. Deploying through the agents
takes seconds; the playbook takes ~50 s on the lab, which is why it runs once.

:class:`LabOps` runs commands with a lab host's view (``lab.lifecycle.host_run``) and bounded
traffic runs (``deftctl traffic run`` over the overlay, through the client's stamper). Each test's
flows use their own source ports (:func:`first_sport`): the stamper outlives a test, and a flow it
already numbered would reach the next test's fresh instance in the middle of its sequence.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from deftctl.playbook import PlaybookRun, run_playbook
from lab import lifecycle

SERVICE = "counter"
PY = "/opt/deft/venv/bin/python"
#: the nf role's deploy config on the controller (nf_deploy_config)
DEPLOY_CONFIG = "/etc/deft/deploy.yml"
#: the controller (runs the deploy/FDU commands), the declared primary and secondary hosts
CONTROLLER, HOST_A, HOST_B, HOST_C = "nfv1", "nfv1", "nfv2", "nfv3"
FLOW_GROUPS = 16
SERVICE_VARS: dict[str, Any] = {
    "deft_services": [{
        "name": SERVICE, "nf_type": "counter", "instances": 2, "primary_host": HOST_A,
        "secondary_host": HOST_B, "workers": 1, "flow_groups": FLOW_GROUPS, "batch_size": 32,
        # a deep input buffer (200 batches): tail drops on a CPU-starved box are not what we test
        "engine": {"batch_timeout_ms": 2.0, "buffer_size": 200},
    }],
}  # fmt: skip
#: the sink's UDP port; a test's flows use source ports sport, sport+1, ... (see first_sport)
DPORT = 7000
#: source ports of the test flows: blocks of SPORT_BLOCK ports from SPORT_BASE, one per test
SPORT_BASE, SPORT_BLOCK, SPORT_BLOCKS = 20000, 40, 1000


def first_sport(nodeid: str) -> int:
    """First client source port of the test ``nodeid``: stable per test, distinct between tests
    (a 1-in-1000 collision only costs the instance a reorder timeout at the flow's start)."""
    return SPORT_BASE + SPORT_BLOCK * (zlib.crc32(nodeid.encode()) % SPORT_BLOCKS)



def wait_for(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``pred`` every 0.2 s; fail naming ``what`` after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def total(metrics: Any, name: str) -> int:
    """Sum of counter ``name`` anywhere in an instance's metrics document (per worker or total)."""
    if isinstance(metrics, dict):
        if name in metrics and isinstance(metrics[name], int | float):
            return int(metrics[name])
        return sum(total(v, name) for v in metrics.values())
    if isinstance(metrics, list):
        return sum(total(v, name) for v in metrics)
    return 0


@dataclass
class LabOps:
    """Commands on lab hosts and traffic runs (see the module docstring)."""

    inventory: Path
    tmp: Path
    #: first client source port of this test's flows
    sport: int = SPORT_BASE

    @property
    def name(self) -> str:
        return self.inventory.name

    def run(self, host: str, *argv: str, timeout_s: float = 120.0) -> str:
        return lifecycle.host_run(self.name, host, list(argv), check=True, timeout_s=timeout_s)

    def deploy(self, *args: str) -> Any:
        """``python -m deploy <args> --json`` on the controller, parsed."""
        return json.loads(self.run(CONTROLLER, PY, "-m", "deploy", *args, "--json"))

    def status(self) -> dict[str, Any]:
        doc: list[dict[str, Any]] = self.deploy("status")
        return next(s for s in doc if s["service"] == SERVICE)

    def steering(self) -> list[str]:
        """Lines of ``nfctl steering show --service counter`` (one per flow group)."""
        out = self.run(CONTROLLER, PY, "-m", "deploy", "nfctl", "steering", "show", "--service", SERVICE)
        return [ln for ln in out.splitlines() if ln.startswith(f"{SERVICE}/")]

    def ssh(self, host: str, command: str, timeout_s: float = 120.0) -> str:
        """``command`` over SSH with the lab's key (as the placement service runs agent commands)."""
        hv = yaml.safe_load((self.inventory / "hosts.yml").read_text())["all"]["children"]
        addr = next(
            g["hosts"][host]["ansible_host"]
            for g in hv.values()
            if isinstance(g, dict) and host in (g.get("hosts") or {}) and g["hosts"][host]
        )
        key = self.inventory / ".ssh" / "id_ed25519"
        kh = self.inventory / ".ssh" / "known_hosts"
        cp = subprocess.run(
            [
                "ssh",
                "-i",
                str(key),
                "-o",
                f"UserKnownHostsFile={kh}",
                "-o",
                "BatchMode=yes",
                f"root@{addr}",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        assert cp.returncode == 0, f"ssh {host} `{command}` failed ({cp.returncode}): {cp.stdout} {cp.stderr}"
        return cp.stdout

    def agent(self, host: str, *args: str) -> Any:
        return json.loads(self.run(host, PY, "-m", "agent", *args, "--json"))

    def instance_call(self, control: str, cmd: str) -> dict[str, Any]:
        """``deftctl nf <cmd> --control <control>`` from the controller (over the overlay)."""
        out = self.run(CONTROLLER, PY, "-m", "deploy", "nf", cmd, "--control", control)
        doc: dict[str, Any] = json.loads(out)
        return doc

    def flow_packets(self, control: str) -> dict[int, int]:
        """client source port -> packets counted by the counter NF at ``control``."""
        out: dict[int, int] = {}
        for f in self.instance_call(control, "export-state")["flows"]:
            parts = f["key"].split("-")  # proto-ip-port-ip-port (canonical order)
            if parts[0] != "17" or DPORT not in (int(parts[2]), int(parts[4])):
                continue  # e.g. the traffic runner's reachability ping
            port = int(parts[2]) if int(parts[4]) == DPORT else int(parts[4])
            out[port] = int(f["view"]["packets"])
        return out

    def profile(self, rate_pps: int, count: int, flows: int = 8, slack_s: float = 5.0) -> Path:
        """A bounded UDP profile: kernel UDP sockets, so packets follow the client's routes into the
        stamper's TUN (AF_PACKET frames would bypass routing). The client stops at ``count`` packets
        or ``count / rate_pps + slack_s`` seconds, whichever comes first (a client starved of CPU
        falls behind schedule and catches up; the slack bounds how far)."""
        p = self.tmp / f"prof-{rate_pps}-{count}.yml"
        p.write_text(yaml.safe_dump({
            "name": "ig", "duration_s": count / rate_pps + slack_s, "count": count, "method": "udp",
            "flows": [{"proto": "udp", "dport": DPORT, "sport": self.sport, "count": flows,
                       "size_bytes": 64}],
            "pattern": {"kind": "constant", "rate_pps": rate_pps},
            "sink": {"mode": "udp", "idle_timeout_s": 4, "first_packet_timeout_s": 20},
        }))  # fmt: skip
        return p

    def start_traffic(
        self, rate_pps: int, count: int, flows: int = 8, slack_s: float = 5.0
    ) -> subprocess.Popen[str]:
        argv = [
            sys.executable,
            "-m",
            "traffic",
            "run",
            "-i",
            str(self.inventory),
            "-p",
            str(self.profile(rate_pps, count, flows, slack_s)),
            "--network",
            "overlay",
            "--json",
        ]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def finish_traffic(proc: subprocess.Popen[str], timeout_s: float = 180.0) -> dict[str, Any]:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        assert proc.returncode == 0, f"traffic run failed ({proc.returncode}): {err[-2000:]}"
        doc: dict[str, Any] = json.loads(out)
        return doc

    @staticmethod
    def sink_flows(summary: dict[str, Any]) -> dict[int, dict[str, Any]]:
        """client source port -> the sink's per-flow result."""
        return {int(f["src"].rpartition(":")[2]): f for s in summary["sinks"] for f in s["flows"]}


@pytest.fixture
def lab_ops(lab_inventory: Path, tmp_path: Path, request: pytest.FixtureRequest) -> LabOps:
    return LabOps(lab_inventory, tmp_path, first_sport(request.node.nodeid))


def _tail(run: PlaybookRun, n: int = 60) -> str:
    return "\n".join(run.output.splitlines()[-n:])


def _deploy_config(ops: LabOps) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(ops.run(CONTROLLER, "cat", DEPLOY_CONFIG))
    return doc


@pytest.fixture(scope="package")
def declared_service(
    provisioned_lab: PlaybookRun, lab_inventory: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabOps]:
    """The counter service declared by ``playbooks/nf.yml`` (its stamper and the FDU config), once
    for the package; afterwards the services are declared without it (unless a test already did)."""
    assert provisioned_lab.ok, f"site.yml failed on the test lab:\n{_tail(provisioned_lab)}"
    ops = LabOps(lab_inventory, tmp_path_factory.mktemp("declared"))
    varsfile = ops.tmp / "services.yml"
    varsfile.write_text(yaml.safe_dump(SERVICE_VARS))
    try:
        run = run_playbook(ops.inventory, "playbooks/nf.yml", "-e", f"@{varsfile}")
        assert run.ok, f"playbooks/nf.yml failed:\n{_tail(run)}"
        yield ops
    finally:
        # (test_shift_live declares its own service and forgets it when done: nothing left to do)
        try:
            declared = any(s.get("name") == SERVICE for s in _deploy_config(ops).get("services") or [])
        except Exception as exc:  # cannot tell: declare without it anyway
            sys.stderr.write(f"reading {DEPLOY_CONFIG} failed: {exc}\n")
            declared = True
        if declared:
            run = run_playbook(ops.inventory, "playbooks/nf.yml")
            if not run.ok:
                sys.stderr.write(f"playbooks/nf.yml without {SERVICE} failed:\n{_tail(run)}\n")


@pytest.fixture
def deployed_service(declared_service: LabOps) -> Iterator[dict[str, Any]]:
    """The declared counter pair deployed from scratch; yields ``deploy status`` of it."""
    ops = declared_service
    try:
        doc = ops.deploy("services", "--only", SERVICE)  # a deploy error exits non-zero: ops.run raises
        assert [s["service"] for s in doc["services"]] == [SERVICE], doc
        st = ops.status()
        assert st["running"], st
        yield st
    finally:
        try:
            ops.deploy("remove", SERVICE)
        except Exception as exc:  # cleanup must not hide the test's own failure
            sys.stderr.write(f"undeploy {SERVICE} failed: {exc}\n")
