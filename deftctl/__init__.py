"""deftctl: the operator CLI of DEFT-RL and the one place shared by every runtime part.

Every runtime part (``lab``, ``nf``, ``agent``, ``traffic``, ``placement``, ``dashboards``) is its own
top-level package with its own ``cli.py`` exposing a Typer sub-application; :mod:`deftctl.cli` mounts
them under one ``deftctl`` command. :mod:`deftctl.config` is the single config loader (YAML -> typed
dataclass) that all parts use, so a typo in any config file fails the same way everywhere.
"""

__version__ = "0.1.0"
