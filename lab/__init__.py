"""The embedded lab: Linux network namespaces that behave like servers.

A lab *host* is a network namespace with its own sshd, hostname (UTS namespace) and private
directories (mount namespace), wired to underlay bridges in the root namespace. Because each host
is reached over SSH like a real server, the same Ansible roles and playbooks provision the lab and
bare-metal sites unchanged.

Modules:
- :mod:`lab.netns` - the only code that shells out to ``ip`` for namespaces, veths and bridges;
  the lab, the data-plane tests and the traffic tests all build topologies through it.
"""
