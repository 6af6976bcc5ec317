"""THE key layout of the state store (one place; every part builds keys with these functions).

Keys are ``/``-separated paths whose first segment is a *namespace*::

    steering/<service>/<flow group>   -> steering entry (JSON, nf.steering.SteeringEntry): primary,
                                         secondaries, their overlay IP/MAC/port, epoch
    lease/<instance group>            -> ownership lease of an instance group (backend-internal
                                         record: owner, epoch, expiry); the epoch fences old primaries
    instance/<instance id>            -> registry of a running instance (JSON, nf.steering.InstanceInfo):
                                         host, control address, overlay IP/MAC, NF port
    cluster/<cluster name>            -> members of a replication cluster (JSON list of instance ids)
    checkpoint/<instance>/<flow>      -> periodic per-flow state checkpoint (bytes from the NF type)
    global/<name>[/<sub>...]          -> global NF state: counters (decimal ASCII ints), NAT pools
    stamper/<stamper id>/epoch        -> the stamper's current epoch (decimal ASCII int)
    _v/<namespace>                    -> change counter of a watched namespace (see base.StateStore.version)

Why paths with typed builders: a typo in a key silently splits state in two; a builder that
validates each segment (non-empty, no ``/``, no whitespace) turns it into an immediate error.
"""

from __future__ import annotations

import re

STEERING = "steering"
LEASE = "lease"
INSTANCE = "instance"
CLUSTER = "cluster"
CHECKPOINT = "checkpoint"
GLOBAL = "global"
STAMPER = "stamper"
VERSION = "_v"

NAMESPACES: frozenset[str] = frozenset({STEERING, LEASE, INSTANCE, CLUSTER, CHECKPOINT, GLOBAL, STAMPER})
#: namespaces whose mutations bump ``_v/<namespace>`` so watchers (steering programmers, FDU) see them.
#: Checkpoints and global counters are hot paths and are not watched.
WATCHED_NAMESPACES: frozenset[str] = frozenset({STEERING, LEASE, INSTANCE, CLUSTER})

_SEGMENT = re.compile(r"^[A-Za-z0-9._:@+,=\-\[\]]+$")


class KeySegmentError(ValueError):
    """A key segment is malformed; the message names the segment and why."""


def segment(value: str | int, what: str) -> str:
    """Validate one path segment (``what`` names it in the error)."""
    s = str(value)
    if not s:
        raise KeySegmentError(f"{what}: empty key segment")
    if not _SEGMENT.match(s):
        raise KeySegmentError(f"{what}: {s!r} may only contain letters, digits and . _ : @ + , = - [ ]")
    return s


def steering(service: str, group: str | int) -> str:
    return f"{STEERING}/{segment(service, 'service')}/{segment(group, 'flow group')}"


def steering_prefix(service: str | None = None) -> str:
    return f"{STEERING}/" if service is None else f"{STEERING}/{segment(service, 'service')}/"


def parse_steering(key: str) -> tuple[str, str]:
    """``steering/<service>/<group>`` -> ``(service, group)``."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != STEERING:
        raise KeySegmentError(f"not a steering key: {key!r}")
    return parts[1], parts[2]


def lease(instance_group: str) -> str:
    return f"{LEASE}/{segment(instance_group, 'instance group')}"


def instance(instance_id: str) -> str:
    return f"{INSTANCE}/{segment(instance_id, 'instance id')}"


def instance_prefix() -> str:
    return f"{INSTANCE}/"


def cluster(name: str) -> str:
    return f"{CLUSTER}/{segment(name, 'cluster')}"


def checkpoint(instance_id: str, flow: str) -> str:
    return f"{CHECKPOINT}/{segment(instance_id, 'instance id')}/{segment(flow, 'flow')}"


def checkpoint_prefix(instance_id: str) -> str:
    return f"{CHECKPOINT}/{segment(instance_id, 'instance id')}/"


def parse_checkpoint(key: str) -> tuple[str, str]:
    """``checkpoint/<instance>/<flow>`` -> ``(instance, flow)``."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != CHECKPOINT:
        raise KeySegmentError(f"not a checkpoint key: {key!r}")
    return parts[1], parts[2]


def global_key(name: str, *sub: str | int) -> str:
    """``global/<name>/<sub>...`` e.g. ``global_key("natpool", "pool1", 40000)``."""
    parts = [segment(name, "global name"), *(segment(s, "global sub-key") for s in sub)]
    return f"{GLOBAL}/" + "/".join(parts)


def stamper_epoch(stamper_id: str) -> str:
    return f"{STAMPER}/{segment(stamper_id, 'stamper id')}/epoch"


def version_key(namespace: str) -> str:
    return f"{VERSION}/{namespace}"


def namespace_of(key_or_prefix: str) -> str:
    """First path segment (the namespace) of a key or prefix."""
    return key_or_prefix.split("/", 1)[0]


def flow_id(proto: int, src_ip: str, src_port: int, dst_ip: str, dst_port: int) -> str:
    """Canonical key segment of a 5-tuple: ``<proto>-<src ip>-<src port>-<dst ip>-<dst port>``.

    IPv6 addresses contain ``:`` which is allowed; the ``-`` separators never occur in an address.
    """
    return f"{proto}-{src_ip}-{src_port}-{dst_ip}-{dst_port}"
