"""``deftctl``: one command line for the whole product.

Each runtime part owns its sub-commands in ``<part>/cli.py`` (a ``typer.Typer`` named ``app``);
this module only mounts them, so ``deftctl --help`` lists every capability in one place.
Heavy imports (torch, scapy) stay inside the sub-commands so ``deftctl lab status`` starts fast.
"""

from __future__ import annotations

import importlib
import logging

import typer

from deftctl import setup_logging

app = typer.Typer(no_args_is_help=True, help="DEFT-RL: stateful VNFs, fault tolerance, RL placement.")

# (sub-command name, module that defines `app`, one-line help)
_PARTS: list[tuple[str, str, str]] = [
    ("lab", "lab.cli", "Multi-host lab of network-namespace hosts on this machine."),
    ("agent", "agent.cli", "Per-host agent: telemetry to InfluxDB, NF lifecycle and migration commands."),
    ("dashboards", "dashboards.cli", "Grafana dashboards as code: build, check, publish."),
    ("traffic", "traffic.cli", "Traffic generators and sinks, locally or across the traffic hosts."),
    ("experiment", "traffic.experiments.cli", "DEFT's and the thesis' sweeps: CSV, plots, report."),
    ("nf", "nf.cli", "DEFT data plane: run NF instances and the stamper, drive their control API."),
    ("nfctl", "nf.ctl_cli", "DEFT control side: store, steering, failure detector, migration, balancer."),
    ("deploy", "deploy.cli", "Deploy declared DEFT services via the agents; FDU with the agents' launcher."),
    ("placement", "placement.cli", "RL placement: simulate, train, evaluate, serve (SSH migrations)."),
]


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(logging.DEBUG if verbose else logging.INFO)


for _name, _module, _help in _PARTS:
    app.add_typer(importlib.import_module(_module).app, name=_name, help=_help)


def main() -> None:
    """Console-script entry point."""
    app()
