"""The failure detector's command line, defined once for ``deftctl deploy fdu`` (the agents'
launcher starts replacement secondaries) and ``deftctl nfctl fdu`` (no launcher, only the state store).

* :func:`detector_options` gives a Typer command the detector's options (``--service``,
  ``--interval-ms``, ``--timeout-ms``, ``--misses``, ``--lease-ttl-ms``, ``--stall-ms``,
  ``--slow-timeout-ms``, ``--confirm-interval-ms``; defaults those of
  :class:`nf.failover.DetectorConfig`) and parses them into a ``DetectorConfig``; a ``ValueError``
  of it is a usage error naming the options.
* :func:`serve_detector` runs the detector until SIGINT/SIGTERM.
"""

from __future__ import annotations

import functools
import inspect
import re
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # nf.failover pulls in the store clients: keep `deftctl --help` fast
    from nf.failover import DetectorConfig
    from nf.launcher import InstanceLauncher
    from nf.store.base import StateStore

Command = Callable[..., None]

#: (parameter, type, option) per detector option, in --help order; the defaults are DetectorConfig's
#: (checked by tests/nf/test_detector_cli.py)
_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("service", str | None, typer.Option(None, help="Watch only this service (default: all).")),
    ("interval_ms", float, typer.Option(50.0, help="Heartbeat interval (ms).")),
    ("timeout_ms", float, typer.Option(100.0, help="Heartbeat timeout (ms).")),
    ("misses", int, typer.Option(3, help="Missed heartbeats that declare a primary failed.")),
    ("lease_ttl_ms", int, typer.Option(2000, help="Lease TTL (ms), renewed on every answered heartbeat.")),
    ("stall_ms", float, typer.Option(3000.0, help="A worker without progress this long (ms) is a failure.")),
    ("slow_timeout_ms", float, typer.Option(
        1000.0, help="Pings that time out (not refused) fail the primary after this long (ms).")),
    ("confirm_interval_ms", float, typer.Option(
        10.0, help="Spacing (ms) of the confirming pings after a refused one (a dead process).")),
)

#: DetectorConfig field -> option, to word its ValueErrors in the command line's terms
_FIELD_OPTION = {"interval_ms": "--interval-ms", "timeout_ms": "--timeout-ms", "miss_threshold": "--misses",
                 "lease_ttl_ms": "--lease-ttl-ms", "stall_ms": "--stall-ms",
                 "slow_timeout_ms": "--slow-timeout-ms", "confirm_interval_ms": "--confirm-interval-ms"}
_FIELD_RE = re.compile(r"\b(" + "|".join(_FIELD_OPTION) + r")\b")


def detector_config(*, interval_ms: float, timeout_ms: float, misses: int, lease_ttl_ms: int,
                    stall_ms: float, slow_timeout_ms: float, confirm_interval_ms: float,
                    replace_secondary: bool) -> DetectorConfig:
    """The options as a :class:`DetectorConfig`; an invalid combination is a ``typer.BadParameter``."""
    from nf.failover import DetectorConfig  # noqa: PLC0415

    try:
        return DetectorConfig(interval_ms, timeout_ms, misses, lease_ttl_ms, stall_ms, slow_timeout_ms,
                              confirm_interval_ms, replace_secondary=replace_secondary)
    except ValueError as exc:
        msg = _FIELD_RE.sub(lambda m: _FIELD_OPTION[m.group(1)], str(exc))
        raise typer.BadParameter(msg, param_hint="detector options") from exc


def detector_options(*, replace_secondary: bool) -> Callable[[Command], Command]:
    """Decorator of a Typer command with the keyword parameters ``detector: DetectorConfig`` and
    ``service: str | None``: Typer sees the detector's options (after the command's own ones) in
    their place and the command receives them parsed (``replace_secondary`` as given here)."""

    def decorate(func: Command) -> Command:
        own = [p for p in inspect.signature(func).parameters.values()
               if p.name not in ("detector", "service")]
        opts = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=tp)
                for name, tp, opt in _OPTIONS]

        def command(**kwargs: Any) -> None:
            service = kwargs.pop("service")
            values = {name: kwargs.pop(name) for name, _tp, _opt in _OPTIONS if name != "service"}
            dcfg = detector_config(**values, replace_secondary=replace_secondary)
            func(**kwargs, detector=dcfg, service=service)

        # Typer reads the parameters from __signature__ and their types from __annotations__, whose
        # strings (the command's own, `from __future__ import annotations`) it resolves in the
        # globals of __wrapped__ (set here), so ``detector``'s type may stay a TYPE_CHECKING import
        functools.update_wrapper(command, func)
        command.__signature__ = inspect.Signature([*own, *opts])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in (*own, *opts)}
        return command

    return decorate


def serve_until_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def serve_detector(store: StateStore, launcher: InstanceLauncher | None, cfg: DetectorConfig,
                   service: str | None) -> None:
    """Heartbeat every primary of the steering table (of ``service``, or all) and fail over on
    failure, until SIGINT/SIGTERM; ``launcher`` starts replacement secondaries (None: none)."""
    from nf.failover import FailoverOrchestrator, FailureDetector  # noqa: PLC0415

    orch = FailoverOrchestrator(store, launcher, cfg.lease_ttl_ms)
    with FailureDetector(store, orch, cfg, service):
        serve_until_signal()
