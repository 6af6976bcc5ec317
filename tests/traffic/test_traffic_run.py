"""``deftctl traffic run`` across two SSH-reachable namespace hosts (client, sink) described by an
Ansible inventory: the sink and the generator are started over SSH, results come back merged, and
the 50 kpps run between the hosts is on rate, complete and bounded.

The hosts are this test's own (prefix ``tg``): two namespaces on a root-namespace bridge, each
with its own sshd (public-key auth, host keys pinned in a known_hosts file with
StrictHostKeyChecking=yes, exactly like the lab's inventory).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lab import netns
from lab.netns import Topology
from traffic.cli import app

HOSTS = {"client": "10.203.0.1", "sink": "10.203.0.2"}


def _wait_port(ip: str, port: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((ip, port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"sshd on {ip}:{port} did not come up")


@pytest.fixture
def ssh_hosts(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, sshd)")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation dir (shared, harmless)
    key = tmp_path / "id_ed25519"
    netns.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    known = tmp_path / "known_hosts"
    lines = []
    with Topology(f"tgr{os.getpid() % 1000}") as topo:
        br = topo.bridge("br", "10.203.0.254/24")
        for name, ip in HOSTS.items():
            ns = topo.ns(name)
            topo.attach(ns, br, f"{ip}/24")
            d = tmp_path / name
            d.mkdir()
            hk = d / "hostkey"
            netns.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hk)])
            (d / "sshd_config").write_text(
                f"ListenAddress {ip}\nHostKey {hk}\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {key}.pub\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n"
                "Subsystem sftp internal-sftp\n"
            )
            topo.start(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], ns=ns)
            lines.append(f"{ip} {(d / 'hostkey.pub').read_text().split(' ')[0]} "
                         f"{(d / 'hostkey.pub').read_text().split(' ')[1]}")
            _wait_port(ip, 22)
        known.write_text("\n".join(lines) + "\n")
        deftctl = str(Path(sys.executable).parent / "deftctl")
        inv = {"all": {"children": {"traffic": {"hosts": {
            name: {"ansible_host": ip, "traffic_role": name, "deftctl_bin": deftctl}
            for name, ip in HOSTS.items()
        }}}, "vars": {
            "ansible_user": "root", "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes",
        }}}
        inv_path = tmp_path / "hosts.yml"
        inv_path.write_text(yaml.safe_dump(inv))
        yield inv_path


@pytest.mark.netns
@pytest.mark.slow
def test_run_across_hosts_50kpps_json(ssh_hosts: Path, tmp_path: Path) -> None:
    prof = tmp_path / "p.yml"
    prof.write_text(yaml.safe_dump({
        "name": "run50k", "duration_s": 6, "count": 150_000, "method": "packet", "nice": -10,
        "flows": [{"proto": "udp", "dport": 9000, "sport": 10000, "count": 8, "size_bytes": 64}],
        "pattern": {"kind": "constant", "rate_pps": 50_000},
        "sink": {"idle_timeout_s": 2, "nice": -10},
    }))
    out_dir = tmp_path / "results"
    r = CliRunner().invoke(app, ["run", "-i", str(ssh_hosts), "-p", str(prof), "--network", "mgmt", "--json",
                                 "--out-dir", str(out_dir)])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["sent"] == 150_000 and s["unique"] == 150_000 and s["loss"] == 0
    assert s["duplicates"] == 0 and s["malformed"] == 0
    gen = s["generators"][0]
    assert gen["stop_reason"] == "count" and gen["duration_s"] < 6
    assert abs(gen["achieved_pps"] - 50_000) / 50_000 <= 0.05
    assert all(f["loss"] == 0 and f["sent"] > 0 for f in s["sinks"][0]["flows"])
    assert (out_dir / "summary.json").exists()
    with next(out_dir.glob("sink-*.csv")).open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 + 1 and rows[-1]["src"] == "total"
    assert rows[-1]["sent"] == "150000" and rows[-1]["loss"] == "0"
    assert sum(int(r["unique"]) for r in rows[:-1]) == 150_000


@pytest.mark.netns
def test_run_reports_unreachable_host(ssh_hosts: Path, tmp_path: Path) -> None:
    inv = yaml.safe_load(ssh_hosts.read_text())
    inv["all"]["children"]["traffic"]["hosts"]["sink"]["ansible_host"] = "10.203.0.9"
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(inv))
    prof = tmp_path / "p.yml"
    prof.write_text(yaml.safe_dump({"name": "x", "duration_s": 1, "flows": [{"dport": 9000}]}))
    r = CliRunner().invoke(app, ["run", "-i", str(bad), "-p", str(prof), "--network", "mgmt"])
    assert r.exit_code == 2
    assert "sink: SSH to root@10.203.0.9:22 failed" in r.output
