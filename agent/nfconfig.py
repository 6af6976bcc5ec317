"""Build the instance config (``nf/instance_config.py`` YAML) for an NF instance the agent starts.

Layers, later wins: the host's base file (``nf_defaults`` in agent.yml) -> the caller's file
(``--nf-config``) -> ``--set key.sub=value`` pairs (values parsed as YAML, so ``engine.batch_size=64``
is an int and ``replicas=["10.80.2.11:9200"]`` a list) -> what the agent owns: ``name``, ``role``,
``nf.type``, the control API address/socket, and for local processes the data-plane ports
(instance k gets ``port_base + k*port_stride``, dup +32, repl +64, so instances of one host never
collide). The result is validated with the NF engine's own dataclass before anything starts, so a
bad knob is a clear error naming the key, not a crashed instance.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from agent.config import AgentConfig
from agent.registry import InstanceRecord
from deftctl.config import ConfigError, from_dict, read_yaml, to_dict


def parse_sets(sets: dict[str, str]) -> dict[str, Any]:
    """``{"engine.batch_size": "64"}`` -> ``{"engine": {"batch_size": 64}}`` (values as YAML)."""
    out: dict[str, Any] = {}
    for key, raw in sets.items():
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}={raw!r}: not a YAML value: {exc}") from exc
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {p!r} is not a section")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``over`` wins."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _load(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level")
    return data


def build(conf: AgentConfig, draft: InstanceRecord, nf_config: Path | None, sets: dict[str, str],
          in_container: bool) -> tuple[dict[str, Any], InstanceRecord]:
    """The validated instance config dict and the draft record completed with ports/paths."""
    from nf.instance_config import InstanceConfig  # noqa: PLC0415 - the NF engine is optional on a host

    data = deep_merge(deep_merge(_load(conf.nf_defaults), _load(nf_config)), parse_sets(sets))
    data["name"] = draft.instance
    data["role"] = draft.role
    data["nf"] = {**(data.get("nf") or {}), "type": draft.nf_type}
    if in_container:
        data.setdefault("data_ip", draft.overlay_ip)
        data["control_tcp"] = f"{draft.overlay_ip}:{conf.control_port_base}"
    else:
        base = conf.port_base + conf.port_stride * draft.index
        data.setdefault("data_ip", conf.data_ip)
        data.setdefault("data_port", base)
        data.setdefault("dup_port", base + 32)
        data.setdefault("repl_port", base + 64)
        data["control_tcp"] = draft.control
        data["control_socket"] = str(conf.state_dir / "run" / f"{draft.instance}.sock")
    cfg = from_dict(InstanceConfig, data, source=f"instance {draft.instance} config")
    doc = to_dict(cfg)
    return doc, replace(draft, data_port=cfg.data_port, dup_port=cfg.dup_port, repl_port=cfg.repl_port,
                      workers=cfg.workers, data_ip=cfg.data_ip)


def write(conf: AgentConfig, instance: str, doc: dict[str, Any]) -> Path:
    """Write the instance config under ``<state_dir>/instances/<instance>.yml``."""
    d = conf.state_dir / "instances"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{instance}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
