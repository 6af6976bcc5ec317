"""Traffic hosts come from the inventory exactly as Ansible resolves them (children groups,
group vars, SSH options), so `traffic run` reaches the same hosts as site.yml."""

from __future__ import annotations

from pathlib import Path

from traffic.inventory import ssh_options, traffic_hosts


def test_traffic_hosts_resolve_groups_vars_and_ssh_options(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(
        "ansible_user: deft\nansible_ssh_private_key_file: /k/id\n"
        "ansible_ssh_common_args: -o UserKnownHostsFile=/k/known -o StrictHostKeyChecking=yes\n"
    )
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    traffic:\n      children:\n        gateways:\n          hosts:\n"
        "            c1: {ansible_host: 10.0.0.4, traffic_role: client, overlay_ip: 10.80.4.1/24}\n"
        "      hosts:\n"
        "        s1: {ansible_host: 10.0.0.5, ansible_port: 2222, traffic_role: sink, deftctl_bin: /opt/d}\n"
    )
    hosts = {h.name: h for h in traffic_hosts(tmp_path)}
    assert set(hosts) == {"c1", "s1"}
    c1, s1 = hosts["c1"], hosts["s1"]
    assert (c1.role, c1.ssh_host, c1.ssh_port, c1.ssh_user) == ("client", "10.0.0.4", 22, "deft")
    assert c1.overlay_ip == "10.80.4.1" and c1.data_ip("mgmt") == "10.0.0.4"
    assert c1.known_hosts == "/k/known" and c1.strict_host_keys and c1.key_file == "/k/id"
    assert (s1.ssh_port, s1.deftctl, s1.overlay_ip) == (2222, "/opt/d", "")


def test_ssh_options_forms() -> None:
    opts = ssh_options({"ansible_ssh_common_args": "-oStrictHostKeyChecking=no -C",
                        "ansible_ssh_extra_args": "-o 'UserKnownHostsFile=/a b'"})
    assert opts == {"stricthostkeychecking": "no", "userknownhostsfile": "/a b"}
