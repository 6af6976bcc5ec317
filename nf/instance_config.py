"""Configuration of one NF instance (YAML -> these dataclasses through ``deftctl.config``).

Example (``deftctl nf run --config fw1.yml``)::

    name: fw-1                 # instance id (control socket /run/deft/nf/fw-1.sock)
    lease: fw                  # primary role this instance serves or backs up (default: name)
    role: primary              # or secondary (buffers duplicated input, applies deltas)
    epoch: 1                   # lease epoch to start with (nf-control takes it from the store)
    data_ip: 10.80.1.11
    data_port: 9000            # worker i receives stamped input on data_port + i
    dup_port: 9100             # ... and duplicated (replica) input on dup_port + i
    repl_port: 9200            # ... and replication channels on repl_port + i
    workers: 2                 # worker processes; flow group g is handled by worker g % workers
    flow_groups: 64            # must equal the stamper's
    replicas: ["10.80.2.11:9200"]   # base replication addresses of the secondary/cluster members
    statestore: /etc/deft/statestore.yml   # or null (no global state, no store fencing)
    engine: {batch_size: 32, batch_timeout_ms: 2, buffer_size: 10}
    nf: {type: firewall, firewall: {inside: ["10.80.0.0/16"]}}

Every instance of a replication pair/cluster must use the same ``workers`` and ``flow_groups``
(checked in the HELLO of every channel).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from nf.types import KINDS
from nf.types.counter import CounterConfig
from nf.types.firewall import FirewallConfig
from nf.types.lb import LbConfig
from nf.types.nat import NatConfig


@dataclass(frozen=True)
class EngineConfig:
    """DEFT's knobs. ``batch_size``: packets per batch (BATCH_SIZE); ``batch_timeout_ms``: a batch
    closes this long after its first packet even when not full, so low rates never wait forever;
    ``buffer_size``: input buffer in batches (BUFFER_SIZE; limit = buffer_size x batch_size packets,
    tail drop beyond); ``max_inflight``: closed batches waiting for acks before processing pauses
    (pipelining depth: it must cover the replica's round trip *including scheduling delay*, or
    throughput collapses to ``max_inflight x batch_size / RTT`` — 8 gave 9 kpps on a loaded
    2-core host, 64 gave 37 kpps); ``reorder_max``: out-of-order packets held per flow;
    ``reorder_timeout_ms``: a sequence gap is given up (packet lost upstream) after this long;
    ``handover_grace_ms``: after taking flows over in a handover, their gaps are kept at least this
    long (the source forwards its stragglers, late on a loaded host);
    ``handover_release_hold_ms``: after taking flows over in a handover, the target releases no
    output for this long, so the source's last released packets (possibly still queued in the
    source host's switch) reach the sink first (0 = off; adds to those packets' latency, not to
    the move's downtime, during which the moved flows are not processed at all);
    ``replica_log_max``: duplicated input a replica buffers per worker (packets);
    ``heartbeat_ms``: idle-channel heartbeat period; ``recv_burst``: datagrams read per poll wake-up;
    ``flow_idle_timeout_s``: forget flows idle this long (0 = never; the stamper's must be larger);
    ``snapshot_chunk_flows``: flows a primary puts into a joining replica's snapshot per loop turn
    (the snapshot is streamed between packet bursts, so a 10k-flow pre-copy stalls forwarding for
    one chunk at a time, not for the whole dump)."""

    batch_size: int = 32
    batch_timeout_ms: float = 2.0
    buffer_size: int = 10
    max_inflight: int = 64
    reorder_max: int = 1024
    reorder_timeout_ms: float = 50.0
    handover_grace_ms: float = 500.0
    handover_release_hold_ms: float = 20.0
    replica_log_max: int = 262144
    heartbeat_ms: float = 50.0
    recv_burst: int = 256
    rcvbuf_bytes: int = 8 * 1024 * 1024
    flow_idle_timeout_s: float = 0.0
    snapshot_chunk_flows: int = 1024

    def __post_init__(self) -> None:
        for name in ("batch_size", "buffer_size", "max_inflight", "reorder_max", "replica_log_max",
                     "recv_burst", "snapshot_chunk_flows"):
            if getattr(self, name) < 1:
                raise ValueError(f"engine.{name}: must be >= 1, got {getattr(self, name)}")
        if self.batch_timeout_ms <= 0 or self.reorder_timeout_ms <= 0 or self.heartbeat_ms <= 0:
            raise ValueError("engine: batch_timeout_ms, reorder_timeout_ms, heartbeat_ms must be > 0")
        if self.handover_grace_ms < 0 or self.handover_release_hold_ms < 0:
            raise ValueError("engine: handover_grace_ms, handover_release_hold_ms must be >= 0")


@dataclass(frozen=True)
class NFSection:
    """Which NF logic runs (``type``) and its section."""

    type: str = "counter"
    counter: CounterConfig = field(default_factory=CounterConfig)
    firewall: FirewallConfig = field(default_factory=FirewallConfig)
    nat: NatConfig | None = None
    lb: LbConfig | None = None

    def __post_init__(self) -> None:
        if self.type not in KINDS:
            raise ValueError(f"nf.type: {self.type!r} is not one of {', '.join(KINDS)}")
        if self.type == "nat" and self.nat is None:
            raise ValueError("nf.nat: required when nf.type is nat")
        if self.type == "lb" and self.lb is None:
            raise ValueError("nf.lb: required when nf.type is lb")

    def section(self) -> object:
        return {"counter": self.counter, "firewall": self.firewall, "nat": self.nat, "lb": self.lb}[self.type]


@dataclass(frozen=True)
class InstanceConfig:
    """One NF instance; see the module docstring for an example and the meaning of each key."""

    name: str
    lease: str = ""
    role: str = "primary"
    epoch: int = 1
    data_ip: str = "0.0.0.0"
    data_port: int = 9000
    dup_port: int = 9100
    repl_ip: str = ""
    repl_port: int = 9200
    workers: int = 1
    flow_groups: int = 64
    replicas: list[str] = field(default_factory=list)
    control_socket: str = ""
    control_tcp: str = ""
    statestore: str | None = None
    #: seconds to wait at start until data_ip (and repl_ip) is configured on an interface: a Docker
    #: instance gets its overlay port from the agent only after the container has started
    addr_wait_s: float = 30.0
    engine: EngineConfig = field(default_factory=EngineConfig)
    nf: NFSection = field(default_factory=NFSection)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"name: {self.name!r} must be non-empty without '/'")
        if self.role not in ("primary", "secondary"):
            raise ValueError(f"role: {self.role!r} must be primary or secondary")
        if self.workers < 1 or self.flow_groups < self.workers:
            raise ValueError(f"workers ({self.workers}) must be >= 1 and <= flow_groups ({self.flow_groups})")
        ipaddress.IPv4Address(self.data_ip)
        for r in self.replicas:
            parse_addr(r, "replicas")
        if self.control_tcp:
            parse_addr(self.control_tcp, "control_tcp")
        for p in (self.data_port, self.dup_port, self.repl_port):
            if not (p > 0 and p + self.workers < 65536):
                raise ValueError(f"port {p}: out of range for {self.workers} workers")

    @property
    def lease_name(self) -> str:
        return self.lease or self.name

    @property
    def repl_bind(self) -> str:
        return self.repl_ip or self.data_ip

    @property
    def control_path(self) -> str:
        return self.control_socket or f"/run/deft/nf/{self.name}.sock"


def parse_addr(text: str, what: str = "address") -> tuple[str, int]:
    """``"ip:port"`` -> ``(ip, port)``; ``ValueError`` naming ``what`` when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: {text!r} is not ip:port")
    try:
        ipaddress.IPv4Address(host)
    except ValueError as exc:
        raise ValueError(f"{what}: {text!r}: {host!r} is not an IPv4 address") from exc
    return host, int(port)
