"""Simulator calibration: the measured (or honestly sourced) constants that tie the model to the lab.

Every number the simulator uses that is not part of a scenario lives in ``placement/calibration.yml``
as ``{value, unit, source, remeasure}``. ``remeasure: true`` marks values that still come from an
estimate or a reference document rather than a measurement on the lab; ``deftctl placement calibrate
--from-bench FILE`` replaces them with bench results (a YAML/JSON mapping
``{key: {value: ..., source: ...}}`` or ``{key: value}``), records the source and clears the flag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from deftctl.config import ConfigError, from_dict, read_yaml, to_dict

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.yml"


@dataclass(frozen=True)
class Constant:
    """One calibrated value with its unit and where it came from."""

    value: float
    unit: str
    source: str
    remeasure: bool = True


@dataclass(frozen=True)
class Calibration:
    """All simulator constants; see ``calibration.yml`` for units and provenance."""

    latency_base_ms: Constant
    buffer_pkts_per_vnf: Constant
    migration_fixed_ms: Constant
    transfer_bytes_per_s: Constant
    failover_ms: Constant
    telemetry_delay_s: Constant
    overload_threshold: Constant
    cost_sla_per_s: Constant
    cost_drop_per_kpkt: Constant
    cost_overload_per_s: Constant
    cost_migration_per_mb: Constant

    def v(self, key: str) -> float:
        """The bare value of constant ``key``."""
        c: Constant = getattr(self, key)
        return c.value


def load_calibration(path: Path | str = CALIBRATION_FILE) -> Calibration:
    """Load the calibration file (errors name the file and key)."""
    return from_dict(Calibration, read_yaml(path), source=str(path))


def apply_bench(cal: Calibration, bench_file: Path | str) -> tuple[Calibration, list[str]]:
    """Return ``cal`` updated from a bench result file and the list of keys changed.

    The bench file maps calibration keys to either a number or ``{value, source}``; unknown keys
    are an error (so a typo in a bench script never silently leaves a constant unmeasured).
    """
    p = Path(bench_file)
    if p.suffix == ".json":
        try:
            data: Any = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{p}: cannot read bench JSON: {exc}") from exc
    else:
        data = read_yaml(p)
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of calibration keys, got {type(data).__name__}")
    known = {f.name for f in fields(Calibration)}
    changes: dict[str, Constant] = {}
    for key, entry in data.items():
        if key not in known:
            raise ConfigError(f"{p}: {key}: unknown calibration key; known: {', '.join(sorted(known))}")
        old: Constant = getattr(cal, key)
        if isinstance(entry, int | float) and not isinstance(entry, bool):
            value, source = float(entry), f"bench file {p.name}"
        elif isinstance(entry, dict) and isinstance(entry.get("value"), int | float):
            value = float(entry["value"])
            source = str(entry.get("source", f"bench file {p.name}"))
        else:
            raise ConfigError(f"{p}: {key}: expected a number or {{value: <number>, source: <text>}}")
        if value < 0:
            raise ConfigError(f"{p}: {key}: must be >= 0, got {value}")
        changes[key] = Constant(value=value, unit=old.unit, source=source, remeasure=False)
    return replace(cal, **changes), sorted(changes)


def save_calibration(cal: Calibration, path: Path | str = CALIBRATION_FILE) -> None:
    """Write ``cal`` back as YAML (keeps the key order of the dataclass)."""
    header = (
        "# Simulator calibration constants. Each value carries its unit and provenance.\n"
        "# `remeasure: true` = NOT yet measured on the lab (see placement/calibration.py).\n"
    )
    Path(path).write_text(header + yaml.safe_dump(to_dict(cal), sort_keys=False), encoding="utf-8")
