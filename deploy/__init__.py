"""Deploying a DEFT service onto hosts: the glue between Ansible, the agents and the NF control side.

A *DEFT service* (``deft_services`` in the inventory, :class:`deploy.config.ServiceSpec`) is one NF
(counter, firewall, NAT, ...) behind one stamper: a primary instance on one NFV host, a secondary
on another, the lease ``<service>`` in the state store and the steering table
``steering/<service>/<group>`` pointing every flow group at the primary. The pieces::

    client host                      NFV host A                       NFV host B
    stamper (TUN, nf.stamper) ──UDP──> primary container ──delta──> secondary container
         │  br-int dup rule (steering programmer on the ingress host) ──copy──> dup_port
         └── the client's service prefix is routed into the stamper's TUN
    primary releases the packet (raw IP) ──overlay──> sink host

Who does what (one mechanism each):

* the *agents* start/stop NF containers (``python -m agent nf start ... --json``, docker launcher,
  container on ``br-int``); this package never talks to Docker itself;
* :mod:`deploy.agentssh` runs agent commands on other hosts over SSH (paramiko, the controller's
  key that the ``placement`` role authorises on every NFV host);
* :mod:`deploy.service` decides whether a declared service is already running (steering table +
  control API heartbeat) and deploys it otherwise: lease, secondary, primary, steering;
* :mod:`deploy.launcher` is an ``nf.launcher.InstanceLauncher`` over the agents, so the failure
  detector (``python -m deploy fdu``) starts replacement secondaries on another host;
* Ansible (``roles/nf``) renders ``/etc/deft/deploy.yml`` and runs the commands as services
  through the ``services`` role.

On hosts, ``/opt/deft/venv/bin/python -m deploy ...`` is the CLI (``deftctl deploy ...`` on the
operator machine); ``python -m deploy nfctl ...`` is ``deftctl nfctl ...`` without the other parts'
CLIs (the host venv has no matplotlib/torch).
"""
