"""The embedded lab: Linux network namespaces that behave like servers.

A lab *host* is a network namespace with its own sshd, hostname (UTS namespace) and private
directories (mount namespace), wired to underlay bridges in the root namespace. Because each host
is reached over SSH like a real server, the same Ansible roles and playbooks provision the lab and
bare-metal sites unchanged.

Modules:
- :mod:`lab.netns` - the only code that shells out to ``ip`` for namespaces, veths and bridges;
  the lab, the data-plane tests and the traffic tests all build topologies through it.
- :mod:`lab.config` - :class:`~lab.config.LabConfig` and the address plan derived from host indices.
- :mod:`lab.privdirs` - what a host keeps private (``PRIVATE_DIRS``, cgroups) and its boot script.
- :mod:`lab.sshd` - the per-host sshd and the lab's SSH client key.
- :mod:`lab.rootns` - root-namespace changes (bridges, NAT, ip_forward, policy-rc.d), all undoable.
- :mod:`lab.state` - the records of those changes that ``lab down`` undoes.
- :mod:`lab.procs` - which processes belong to a host (for ``status`` and ``down``).
- :mod:`lab.inventory` - the generated Ansible inventory.
- :mod:`lab.lifecycle` - ``up`` / ``down`` / ``status`` / ``exec``; :mod:`lab.cli` - ``deftctl lab``.

See docs/lab.md for the operator's view.
"""
