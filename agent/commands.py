"""THE agent command interface: what the placement service runs on a host over SSH.

Each command is a plain function returning a JSON-able dict (the CLI prints it with ``--json``),
raising :class:`CommandError` for anything the caller did wrong or the host cannot do (unknown
instance, launcher failure, unreachable state store) — the CLI turns that into a message and a
non-zero exit. Every state-changing command records an ``event`` point (Grafana annotation) through
:mod:`agent.events`, also when it fails.

| CLI | function |
|---|---|
| ``deftctl agent status --json`` | :func:`status` |
| ``deftctl agent nf start -i X -t T [--role R] [--nf-config F] [--set k.sub=v]`` | :func:`nf_start` |
| ``deftctl agent nf stop --instance X`` | :func:`nf_stop` |
| ``deftctl agent nf list --json`` | :func:`nf_list` |
| ``deftctl agent migrate -i X --to HOST [--target Y] [--flows G,...]`` | :func:`migrate` |
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

from agent import nfconfig
from agent.config import AgentConfig
from agent.events import emit, event_point
from agent.launcher import DockerLauncher, LaunchError, make_launcher
from agent.registry import InstanceRecord, Registry, RegistryError, check_instance_name
from agent.spool import Spool
from deftctl.config import ConfigError, from_dict

log = logging.getLogger(__name__)

STATUS_FILE = "agent.status.json"


class CommandError(RuntimeError):
    """A command cannot be carried out; the message is for the operator (and the placement log)."""


def _registry(conf: AgentConfig) -> Registry:
    return Registry(conf.state_dir)


def _record_json(conf: AgentConfig, rec: InstanceRecord, alive: bool) -> dict[str, Any]:
    d = asdict(rec)
    d["command"] = list(rec.command)
    d["alive"] = alive
    d["endpoint"] = _registry(conf).endpoint(rec, conf.hostname, conf.host_index)
    return d


def nf_start(conf: AgentConfig, instance: str, nf_type: str, role: str = "primary", service: str = "",
             sets: dict[str, str] | None = None, nf_config: Path | None = None,
             launcher: str | None = None, ready_timeout_s: float = 15.0) -> dict[str, Any]:
    """Start NF ``instance`` of ``nf_type`` on this host and register it.

    The instance gets the smallest free index k: control API on ``control_host:control_port_base+k``
    (process launcher) or on its overlay IP ``10.80.<host_index>.(10+k)`` (docker launcher). Its
    config is built and validated by :mod:`agent.nfconfig` (``nf_config`` file + ``sets``) before
    anything starts. Waits until the control API accepts connections (``ready_timeout_s``).
    """
    try:
        check_instance_name(instance)
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc
    if role not in ("primary", "secondary"):
        raise CommandError(f"bad role {role!r} (primary | secondary)")
    try:
        impl = make_launcher(conf, launcher)
    except LaunchError as exc:
        raise CommandError(str(exc)) from exc
    kind: Literal["process", "docker"] = "docker" if isinstance(impl, DockerLauncher) else "process"
    reg = _registry(conf)
    t0 = time.monotonic()
    with reg.transaction() as recs:
        if instance in recs:
            raise CommandError(f"instance {instance!r} already exists on {conf.hostname}")
        k = reg.next_index(recs)
        overlay_ip = f"10.80.{conf.host_index}.{10 + k}" if conf.host_index else ""
        if kind == "docker":
            control = f"{overlay_ip}:{conf.control_port_base}"
        else:
            control = f"{conf.control_host}:{conf.control_port_base + k}"
        draft = InstanceRecord(instance=instance, nf_type=nf_type, launcher=kind, control=control,
                               index=k, role=role, service=service, overlay_ip=overlay_ip,
                               extra=dict(sets or {}))
        try:
            doc, draft = nfconfig.build(conf, draft, nf_config, dict(sets or {}), kind == "docker")
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        draft = replace(draft, config_path=str(nfconfig.write(conf, instance, doc)))
        # Reserve the name and index before the (slow) launch so concurrent starts cannot collide.
        recs[instance] = draft
    try:
        rec = impl.start(draft, ready_timeout_s)
    except LaunchError as exc:
        with reg.transaction() as recs:
            recs.pop(instance, None)
        _event(conf, "nf_start", f"start {instance} failed", str(exc), instance, False, t0)
        raise CommandError(str(exc)) from exc
    with reg.transaction() as recs:
        recs[instance] = rec
    if conf.register_in_store:
        try:
            register_in_store(conf, rec, doc)
        except CommandError as exc:
            _stop_quietly(conf, rec)
            with reg.transaction() as recs:
                recs.pop(instance, None)
            _event(conf, "nf_start", f"start {instance} failed", str(exc), instance, False, t0)
            raise
    _event(conf, "nf_start", f"started {instance} ({nf_type}, {role})",
           f"{kind} launcher, control {rec.control}", instance, True, t0)
    return _record_json(conf, rec, True)


def _stop_quietly(conf: AgentConfig, rec: InstanceRecord) -> None:
    try:
        make_launcher(conf, rec.launcher).stop(rec, 2.0)
    except LaunchError as exc:
        log.warning("could not stop %s: %s", rec.instance, exc)


def nf_stop(conf: AgentConfig, instance: str, grace_s: float = 5.0) -> dict[str, Any]:
    """Stop ``instance`` and remove it from the registry (error if this host does not run it)."""
    reg = _registry(conf)
    try:
        rec = reg.get(instance)
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc
    t0 = time.monotonic()
    try:
        make_launcher(conf, rec.launcher).stop(rec, grace_s)
    except LaunchError as exc:
        _event(conf, "nf_stop", f"stop {instance} failed", str(exc), instance, False, t0)
        raise CommandError(str(exc)) from exc
    with reg.transaction() as recs:
        recs.pop(instance, None)
    if conf.register_in_store:
        unregister_from_store(conf, instance)
    _event(conf, "nf_stop", f"stopped {instance}", f"{rec.launcher} launcher", instance, True, t0)
    return {"instance": instance, "stopped": True}


def unregister_from_store(conf: AgentConfig, instance: str) -> None:
    """Drop a stopped instance's ``instance/<id>`` entry (only if it names this host): migration and
    failover pick targets from that registry, and a stale entry would make them pick a dead one. A
    store that cannot be reached is logged, not raised: the instance is stopped either way."""
    from nf.launcher import forget_instance, lookup_instance  # noqa: PLC0415
    from nf.store.base import StoreError  # noqa: PLC0415

    try:
        with _open_store(conf) as store:
            found = lookup_instance(store, instance)
            if found is not None and found[1].host == conf.hostname:
                forget_instance(store, instance)
    except (CommandError, StoreError) as exc:
        log.warning("stopped %s, but could not unregister it from the state store: %s", instance, exc)


def nf_list(conf: AgentConfig) -> list[dict[str, Any]]:
    """Registered instances with liveness (``alive``: process/container still running)."""
    out = []
    for rec in _registry(conf).all():
        try:
            alive = make_launcher(conf, rec.launcher).alive(rec)
        except LaunchError:
            alive = False
        out.append(_record_json(conf, rec, alive))
    return out


def status(conf: AgentConfig) -> dict[str, Any]:
    """Host, daemon heartbeat (from its status file), instances and spool in one document."""
    st_path = conf.state_dir / STATUS_FILE
    daemon: dict[str, Any] = {"running": False}
    try:
        daemon = json.loads(st_path.read_text())
        age = time.time() - float(daemon.get("last_tick_unix", 0))
        daemon["running"] = age < max(5.0, 5 * conf.interval_s)
        daemon["last_tick_age_s"] = round(age, 3)
    except (OSError, ValueError):
        pass
    try:
        sp = Spool(conf.spool_dir, conf.spool_max_bytes).stats()
        spool = asdict(sp)
    except OSError as exc:
        spool = {"error": str(exc)}
    try:
        instances = nf_list(conf)
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc
    return {"host": conf.hostname, "host_index": conf.host_index, "daemon": daemon,
            "instances": instances, "spool": spool}


def _store_error(conf: AgentConfig, exc: Exception) -> CommandError:
    return CommandError(f"state store unreachable ({conf.statestore or 'default config'}): {exc}")


def _open_store(conf: AgentConfig) -> Any:
    """The cluster's state store (``statestore`` of agent.yml, else /etc/deft/statestore.yml)."""
    from nf.store import open_store  # noqa: PLC0415 - NF control side, loaded only for migrations

    try:
        return open_store(conf.statestore)
    except Exception as exc:  # ConfigError, connection refused, timeouts: one clear message
        raise _store_error(conf, exc) from exc


def _target_endpoint(store: Any, to_host: str, target: str | None, exclude: str) -> Any:
    """Endpoint of the destination instance on ``to_host`` (from the store's instance registry)."""
    from nf.launcher import lookup_instance  # noqa: PLC0415
    from nf.steering import Endpoint  # noqa: PLC0415
    from nf.store import keys as keyspace  # noqa: PLC0415

    if target:
        found = lookup_instance(store, target)
        if found is None:
            raise CommandError(f"target instance {target!r} is not registered in the state store")
        ep = found[1]
        if ep.host != to_host:
            raise CommandError(f"target instance {target!r} runs on {ep.host}, not on {to_host}")
        return ep
    cands = []
    for raw in store.scan(keyspace.instance_prefix()).values():
        doc = json.loads(raw)
        ep = from_dict(Endpoint, doc["endpoint"], "instance registry")
        if ep.host == to_host and ep.instance != exclude:
            cands.append(ep)
    if len(cands) != 1:
        names = ", ".join(sorted(c.instance for c in cands)) or "none"
        raise CommandError(f"--to {to_host}: need exactly one registered instance there to migrate to "
                           f"(found: {names}); start one with `deftctl agent nf start` or pass --target")
    return cands[0]


def migrate(conf: AgentConfig, instance: str, to_host: str, flows: list[str] | None = None,
            timeout_s: float = 30.0, target: str | None = None, service: str | None = None) -> dict[str, Any]:
    """Move flow groups of ``instance`` (all it serves, or ``flows``) to an instance on ``to_host``.

    Loss-free and order-preserving through ``nf.migration.migrate_groups`` (pre-copy, cooperative
    handover, steering switch). The service is ``service``, else the instance's service, else its
    instance name (the lease). Records a ``migration`` event with the report. Errors (unknown
    instance, unreachable store, no target, a failed step) raise :class:`CommandError`.
    """
    if not to_host:
        raise CommandError("--to: destination host required")
    try:
        rec = _registry(conf).get(instance)
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc
    from nf.migration import MigrationError, migrate_groups  # noqa: PLC0415
    from nf.steering import SteeringTable  # noqa: PLC0415
    from nf.store.base import StoreError  # noqa: PLC0415

    svc = service or rec.service or instance
    t0 = time.monotonic()
    store = _open_store(conf)
    try:
        try:
            dst = _target_endpoint(store, to_host, target, instance)
            served = [e.group for e in SteeringTable(store).entries(svc) if e.primary.instance == instance]
        except StoreError as exc:
            raise _store_error(conf, exc) from exc
        groups = flows or served
        if not groups:
            raise CommandError(f"{instance} serves no flow group of service {svc!r} (nothing to migrate)")
        try:
            rep = migrate_groups(store, svc, groups, dst, timeout_s=timeout_s)
        except (MigrationError, StoreError, OSError, RuntimeError) as exc:
            _event(conf, "migration", f"migrate {instance} -> {to_host} failed",
                   f"{type(exc).__name__}: {exc}", instance, False, t0, src_host=conf.hostname,
                   dst_host=to_host)
            raise CommandError(f"migration of {instance} to {to_host} failed: {exc}") from exc
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()
    out: dict[str, Any] = {"instance": instance, "from_host": conf.hostname, "to_host": to_host,
                           "target": dst.instance, "service": svc, "report": asdict(rep)}
    _event(conf, "migration", f"migrated {instance} -> {dst.instance}@{to_host}",
           f"groups {','.join(map(str, groups))}: handover {rep.handover_ms:.1f} ms, "
           f"total {rep.total_ms:.1f} ms",
           instance, True, t0, src_host=conf.hostname, dst_host=to_host, flows=int(rep.flows))
    return out


def register_in_store(conf: AgentConfig, rec: InstanceRecord, doc: dict[str, Any]) -> None:
    """Record an agent-started instance in the store's instance registry (``instance/<id>``), where
    failover, migration and the balancer look instances up (nf/launcher.py ``record_instance``)."""
    from nf.launcher import LaunchSpec, record_instance  # noqa: PLC0415
    from nf.steering import Endpoint  # noqa: PLC0415
    from nf.store.base import StoreError  # noqa: PLC0415

    store = _open_store(conf)
    try:
        spec = LaunchSpec(name=rec.instance, lease=str(doc.get("lease") or rec.instance), role=rec.role,
                          epoch=int(doc.get("epoch", 1)), workers=rec.workers,
                          flow_groups=int(doc.get("flow_groups", 64)),
                          replicas=tuple(doc.get("replicas") or ()), nf=dict(doc.get("nf") or {}),
                          engine=dict(doc.get("engine") or {}), statestore=doc.get("statestore"))
        try:
            ep = from_dict(Endpoint, _registry(conf).endpoint(rec, conf.hostname, conf.host_index),
                           f"{rec.instance} endpoint")
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        try:
            record_instance(store, spec, ep)
        except StoreError as exc:
            raise _store_error(conf, exc) from exc
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def _event(conf: AgentConfig, kind: str, title: str, text: str, instance: str, ok: bool, t0: float,
           **extra: Any) -> None:
    try:
        emit([event_point(conf.hostname, kind, title, text, instance, ok,
                          (time.monotonic() - t0) * 1000.0, **extra)], conf)
    except Exception as exc:  # recording must never turn a done action into a failure
        log.warning("could not record %s event: %s", kind, exc)


def update_record(conf: AgentConfig, instance: str, **changes: Any) -> InstanceRecord:
    """Change fields of a registered instance (e.g. ``role`` after a failover promotion)."""
    with _registry(conf).transaction() as recs:
        if instance not in recs:
            raise CommandError(f"unknown instance {instance!r} on {conf.hostname}")
        recs[instance] = replace(recs[instance], **changes)
        return recs[instance]
