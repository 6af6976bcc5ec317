"""The one config loader: YAML (or a dict) -> a typed, frozen dataclass, with errors that name the key.

Why one loader: every part of DEFT-RL (lab, NF engine, agent, traffic, placement scenarios) is
configured with dataclasses. Loading them all through :func:`load` means unknown keys, missing
required keys and wrong types are rejected the same way, and the message always names the file and
the offending key (``scenario.yml: hosts[2].capacity_pps: expected int, got str``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import dacite
import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or mapping does not match its dataclass; the message names source and key."""


def read_yaml(path: Path | str) -> Any:
    """Parse a YAML file, raising :class:`ConfigError` that names the file on any problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from exc


def from_dict(cls: type[T], data: Mapping[str, Any] | None, source: str = "<config>") -> T:
    """Build dataclass ``cls`` from ``data`` strictly (no unknown keys, types checked).

    ``source`` is only used in error messages (a file name or a CLI flag).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at top level, got {type(data).__name__}")
    try:
        return dacite.from_dict(
            data_class=cls,
            data=dict(data),
            config=dacite.Config(strict=True, cast=[tuple, Path], type_hooks={float: _to_float}),
        )
    except dacite.UnexpectedDataError as exc:
        raise ConfigError(f"{source}: unknown key(s): {', '.join(sorted(exc.keys))}") from exc
    except dacite.MissingValueError as exc:
        raise ConfigError(f"{source}: missing required key: {exc.field_path}") from exc
    except dacite.WrongTypeError as exc:
        raise ConfigError(
            f"{source}: {exc.field_path}: expected {_type_name(exc.field_type)}, "
            f"got {type(exc.value).__name__} ({exc.value!r})"
        ) from exc
    except dacite.DaciteError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except (ValueError, TypeError) as exc:  # raised by dataclass __post_init__ validation
        raise ConfigError(f"{source}: {exc}") from exc


def load(cls: type[T], path: Path | str) -> T:
    """Load YAML file ``path`` into dataclass ``cls``; see :func:`from_dict`."""
    return from_dict(cls, read_yaml(path), source=str(path))


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (Paths as strings), the inverse of :func:`from_dict` for YAML/JSON dumps."""
    def conv(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        return v

    return {k: conv(v) for k, v in dataclasses.asdict(obj).items()}


def _to_float(value: Any) -> Any:
    # YAML writes 1 for 1.0; accept ints where floats are declared, but never bools.
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))
