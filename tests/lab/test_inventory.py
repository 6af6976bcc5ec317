"""The generated Ansible inventory: groups, host variables and connection settings."""

from __future__ import annotations

from pathlib import Path

from lab import inventory
from lab.config import LabConfig


def test_groups_and_host_vars() -> None:
    cfg = LabConfig(hosts=2)
    hosts, all_vars = inventory.build(cfg, cfg.plan(), Path("/k/id"), Path("/k/known_hosts"))
    ch = hosts["all"]["children"]
    assert list(ch["nfv"]["hosts"]) == ["nfv1", "nfv2"]
    assert list(ch["traffic"]["hosts"]) == ["client", "sink"]
    assert list(ch["controller"]["hosts"]) == ["nfv1"]
    assert set(ch["overlay"]["children"]) == {"nfv", "traffic"}
    nfv2 = ch["nfv"]["hosts"]["nfv2"]
    assert nfv2 == {
        "ansible_host": "10.77.0.12", "host_index": 2, "tunnel_interface": "eth1",
        "tunnel_ip": "10.78.0.12", "overlay_ip": "10.80.2.1", "lab_namespace": "lab-nfv2",
    }  # fmt: skip
    assert ch["traffic"]["hosts"]["sink"]["traffic_role"] == "sink"
    assert ch["traffic"]["hosts"]["client"]["host_index"] == 3
    assert all_vars["ansible_user"] == "root"
    assert "UserKnownHostsFile=/k/known_hosts" in all_vars["ansible_ssh_common_args"]
    # persisted masters live in the lab's own mux dir, which `lab up`/`down` close (lab.sshd.close_masters)
    assert "ControlPersist=60s" in all_vars["ansible_ssh_args"]
    assert "/mux/%C" in all_vars["ansible_ssh_args"]
    assert all_vars["state_backend"] == "redis"
    assert all_vars["overlay_vni"] == 4242 and all_vars["underlay_mtu"] == 1600
    assert all_vars["deft_lab"] is True
