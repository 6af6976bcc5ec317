"""The failure detector's options are defined once (nf.detector_cli) for ``deftctl deploy fdu`` and
``deftctl nfctl fdu``: same options, defaults (DetectorConfig's) and help; an invalid combination is a
usage error naming the options. No store is needed: the commands fail or are stubbed before one."""

from __future__ import annotations

import dataclasses
from typing import Any

import typer
from typer.main import get_command
from typer.testing import CliRunner

from deploy.cli import app as deploy_app
from nf.ctl_cli import app as nfctl_app
from nf.detector_cli import detector_options
from nf.failover import DetectorConfig

DETECTOR_OPTIONS = ("service", "interval_ms", "timeout_ms", "misses", "lease_ttl_ms", "stall_ms",
                    "slow_timeout_ms", "confirm_interval_ms")
FIELD = {"misses": "miss_threshold"}


def _fdu_params(app: typer.Typer) -> dict[str, Any]:
    cmd = get_command(app).commands["fdu"]  # type: ignore[attr-defined]
    return {p.name: p for p in cmd.params}


def _text(output: str) -> str:
    """The output without Rich's box and line wrapping."""
    return " ".join(output.replace("\u2502", " ").split())


def test_both_fdu_commands_have_the_same_detector_options() -> None:
    deploy, nfctl = _fdu_params(deploy_app), _fdu_params(nfctl_app)
    defaults = {f.name: f.default for f in dataclasses.fields(DetectorConfig)}
    for name in DETECTOR_OPTIONS:
        a, b = deploy[name], nfctl[name]
        assert (a.opts, a.default, a.help) == (b.opts, b.default, b.help), name
        assert a.help
        if name != "service":
            assert a.default == defaults[FIELD.get(name, name)], name
    assert "config" in deploy and "statestore" in nfctl


def test_invalid_detector_options_are_a_usage_error() -> None:
    runner = CliRunner()
    for app in (deploy_app, nfctl_app):
        r = runner.invoke(app, ["fdu", "--lease-ttl-ms", "100"])
        assert r.exit_code == 2, r.output
        assert "--lease-ttl-ms must exceed --interval-ms x --misses and --slow-timeout-ms" in _text(r.output)
        r = runner.invoke(app, ["fdu", "--misses", "0"])
        assert r.exit_code == 2 and "--misses must be >= 1" in _text(r.output), r.output


def test_options_reach_the_command_as_a_detector_config() -> None:
    got: dict[str, Any] = {}
    app = typer.Typer()

    @app.command()
    @detector_options(replace_secondary=False)
    def fdu(detector: DetectorConfig, service: str | None, name: str = typer.Option("x")) -> None:
        got.update(detector=detector, service=service, name=name)

    @app.command()
    def other() -> None:  # two commands, so ``fdu`` is a sub-command as in the real apps
        pass

    r = CliRunner().invoke(app, ["fdu", "--name", "y", "--service", "nat", "--timeout-ms", "80",
                                 "--misses", "4", "--stall-ms", "5000"])
    assert r.exit_code == 0, r.output
    assert got == {"detector": DetectorConfig(timeout_ms=80, miss_threshold=4, stall_ms=5000,
                                              replace_secondary=False),
                   "service": "nat", "name": "y"}
