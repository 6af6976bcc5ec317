"""deftctl: the operator CLI of DEFT-RL and the one place shared by every runtime part.

Every runtime part (``lab``, ``nf``, ``agent``, ``traffic``, ``placement``, ``dashboards``) is its own
top-level package with its own ``cli.py`` exposing a Typer sub-application; :mod:`deftctl.cli` mounts
them under one ``deftctl`` command. :mod:`deftctl.config` is the single config loader (YAML -> typed
dataclass) that all parts use, so a typo in any config file fails the same way everywhere.
"""

import logging

__version__ = "0.1.0"

#: the one log line format of every DEFT process (CLI, services, NF instances, stamper)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int | str = logging.INFO) -> None:
    """Root logging for a DEFT process: ``level`` and :data:`LOG_FORMAT` on stderr (services' stderr
    is their log file)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
