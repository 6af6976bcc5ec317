"""Traffic profile: the YAML file that says what to send, how fast, for how long, and how to sink it.

Loaded with the one config loader (``deftctl.config.load``), so unknown keys, missing keys and wrong
types are rejected with the file and key named. Semantic checks (ranges, names, per-pattern required
fields) live in ``__post_init__`` and raise ``ValueError``, which the loader reports the same way.

Units are in the field names: ``_s`` seconds, ``_pps`` packets per second, ``_bytes`` bytes.
Frame sizes are Ethernet frames *including* the 4-byte FCS, the convention of "64 B packets".

Every run is bounded twice: ``duration_s`` (wall time) and ``count`` (packets; 0 means "what the
pattern yields over duration_s"), whichever comes first ends the run.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path

from deftctl import config
from traffic.stamp import STAMP_LEN

METHODS = ("packet", "raw", "udp", "tcpreplay")
PATTERNS = ("constant", "ramp", "on_off", "diurnal", "flash_crowd", "pcap")
DISTRIBUTIONS = ("uniform", "zipf")
PROTOS = ("udp", "tcp")
SINK_MODES = ("udp", "packet")

ETH_FCS = 4
L2_HDR = 14
IP_HDR = 20
L4_HDR = {"udp": 8, "tcp": 20}
MAX_FRAME = 9018  # jumbo frame incl. FCS
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_FLOWS = 65536


def min_frame(proto: str) -> int:
    """Smallest frame (incl. FCS) that still holds a full stamp for ``proto``."""
    return max(64, L2_HDR + IP_HDR + L4_HDR[proto] + STAMP_LEN + ETH_FCS)


def _check_ip(value: str, what: str) -> None:
    if value:
        try:
            ipaddress.IPv4Address(value)
        except ValueError as exc:
            raise ValueError(f"{what}: {value!r} is not an IPv4 address") from exc


def _check_port(value: int, what: str) -> None:
    if not 1 <= value <= 65535:
        raise ValueError(f"{what}: {value} is not a port (1..65535)")


@dataclass(frozen=True)
class FlowSpec:
    """One flow, or ``count`` flows that differ only in source port (``sport``, ``sport+1``, ...)."""

    dst: str = ""  # destination IPv4; "" = filled in by `--dst` or by `traffic run` (sink host)
    dport: int = 9000
    proto: str = "udp"
    src: str = ""  # source IPv4; "" = the address the kernel routes from
    sport: int = 10000
    count: int = 1
    size_bytes: int = 0  # Ethernet frame incl. FCS; 0 = the smallest that holds a stamp (64 UDP, 76 TCP)
    weight: float = 1.0  # relative share of the aggregate rate (multiplied by the Zipf weight)

    def __post_init__(self) -> None:
        if self.proto not in PROTOS:
            raise ValueError(f"flows: proto {self.proto!r} is not one of {', '.join(PROTOS)}")
        _check_ip(self.dst, "flows: dst")
        _check_ip(self.src, "flows: src")
        _check_port(self.dport, "flows: dport")
        _check_port(self.sport, "flows: sport")
        if self.count < 1 or self.sport + self.count - 1 > 65535:
            raise ValueError(f"flows: count {self.count} must be >= 1 and keep sport+count-1 <= 65535")
        lo = min_frame(self.proto)
        if self.size_bytes == 0:
            object.__setattr__(self, "size_bytes", lo)
        if not lo <= self.size_bytes <= MAX_FRAME:
            raise ValueError(
                f"flows: size_bytes {self.size_bytes} out of range {lo}..{MAX_FRAME} for {self.proto}"
            )
        if self.weight <= 0:
            raise ValueError(f"flows: weight {self.weight} must be > 0")

    @property
    def payload_bytes(self) -> int:
        """L4 payload size (stamp + padding) for this frame size."""
        return self.size_bytes - ETH_FCS - L2_HDR - IP_HDR - L4_HDR[self.proto]


@dataclass(frozen=True)
class PatternSpec:
    """Aggregate offered rate over time. Which fields matter depends on ``kind``:

    - constant: ``rate_pps``
    - ramp: ``start_pps`` -> ``end_pps`` linearly over the run's ``duration_s``
    - on_off: ``rate_pps`` for ``on_s``, then 0 for ``off_s``, repeated
    - diurnal: ``rate_pps * (1 + amplitude * sin(2 pi t / period_s))`` (a compressed day)
    - flash_crowd: ``rate_pps`` until ``at_s``, linear rise to ``peak_pps`` over ``rise_s``, hold
      ``hold_s``, linear decay back over ``decay_s``
    - pcap: replay ``pcap`` with tcpreplay at ``rate_pps`` (> 0) or at ``multiplier`` x its own timing
    """

    kind: str = "constant"
    rate_pps: float = 1000.0
    start_pps: float = 0.0
    end_pps: float = 0.0
    on_s: float = 1.0
    off_s: float = 1.0
    period_s: float = 60.0
    amplitude: float = 0.5
    peak_pps: float = 0.0
    at_s: float = 0.0
    rise_s: float = 0.0
    hold_s: float = 0.0
    decay_s: float = 0.0
    pcap: str = ""
    multiplier: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in PATTERNS:
            raise ValueError(f"pattern: kind {self.kind!r} is not one of {', '.join(PATTERNS)}")
        for name in ("rate_pps", "start_pps", "end_pps", "peak_pps", "on_s", "off_s", "at_s",
                     "rise_s", "hold_s", "decay_s", "multiplier"):
            if getattr(self, name) < 0:
                raise ValueError(f"pattern: {name} must be >= 0, got {getattr(self, name)}")
        if self.kind == "on_off" and self.on_s + self.off_s <= 0:
            raise ValueError("pattern: on_off needs on_s + off_s > 0")
        if self.kind == "diurnal" and (self.period_s <= 0 or not 0 <= self.amplitude <= 1):
            raise ValueError("pattern: diurnal needs period_s > 0 and 0 <= amplitude <= 1")
        if self.kind == "flash_crowd" and self.peak_pps <= 0:
            raise ValueError("pattern: flash_crowd needs peak_pps > 0")
        if self.kind == "ramp" and max(self.start_pps, self.end_pps) <= 0:
            raise ValueError("pattern: ramp needs start_pps or end_pps > 0")
        if self.kind == "pcap" and not self.pcap:
            raise ValueError("pattern: pcap needs `pcap: <file>`")
        if self.kind == "pcap" and self.rate_pps == 0 and self.multiplier == 0:
            raise ValueError("pattern: pcap needs rate_pps > 0 or multiplier > 0")


@dataclass(frozen=True)
class SinkSpec:
    """How the sink receives: ``udp`` (a UDP socket per port: fast, UDP only) or ``packet``
    (AF_PACKET on ``interface``: sees UDP and TCP, needed for TCP flows)."""

    mode: str = "udp"
    interface: str = ""  # packet mode; "" = all interfaces
    bind: str = "0.0.0.0"
    ports: list[int] = field(default_factory=list)  # [] = every dport of the profile's flows
    idle_timeout_s: float = 2.0  # stop this long after the last packet (once traffic started)
    grace_s: float = 3.0  # the sink runs at most duration_s + grace_s after the first packet
    first_packet_timeout_s: float = 60.0  # give up if no packet arrives this long after start
    max_packets: int = 0  # 0 = no packet bound beyond the time bound
    rcvbuf_bytes: int = 8 * 1024 * 1024
    nice: int = 0  # CPU priority of the sink process (-20..19; < 0 needs root)

    def __post_init__(self) -> None:
        if not -20 <= self.nice <= 19:
            raise ValueError(f"sink: nice {self.nice} must be in -20..19")
        if self.mode not in SINK_MODES:
            raise ValueError(f"sink: mode {self.mode!r} is not one of {', '.join(SINK_MODES)}")
        _check_ip(self.bind, "sink: bind")
        for p in self.ports:
            _check_port(p, "sink: ports")
        if self.idle_timeout_s <= 0 or self.first_packet_timeout_s <= 0:
            raise ValueError("sink: idle_timeout_s and first_packet_timeout_s must be > 0")
        if self.grace_s < 0 or self.max_packets < 0:
            raise ValueError("sink: grace_s and max_packets must be >= 0")


@dataclass(frozen=True)
class TrafficProfile:
    """A complete traffic run: flows, pattern, bounds, send method and sink settings."""

    name: str
    duration_s: float
    flows: list[FlowSpec]
    pattern: PatternSpec = field(default_factory=PatternSpec)
    count: int = 0  # packet bound; 0 = what the pattern yields over duration_s
    method: str = "packet"  # packet (AF_PACKET frames) | raw (IP_HDRINCL) | udp (kernel UDP) | tcpreplay
    interface: str = ""  # packet/tcpreplay: "" = the route's device towards the first dst
    dst_mac: str = ""  # packet/tcpreplay: "" = resolved from the neighbour table
    distribution: str = "uniform"  # uniform | zipf (rank r gets weight 1 / r**zipf_s)
    zipf_s: float = 1.0
    tick_ms: float = 1.0  # pacing tick: packets due in a tick are sent back to back
    max_burst: int = 512  # packets per tick at most (bounds catch-up bursts after a stall)
    flow_id_base: int = 0  # first flow id; distinct per generator when several feed one sink
    nice: int = 0  # CPU priority of the generator process (-20..19; < 0 needs root) on busy hosts
    sink: SinkSpec = field(default_factory=SinkSpec)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration_s {self.duration_s} must be in (0, {MAX_DURATION_S:.0f}]")
        if self.count < 0:
            raise ValueError(f"count {self.count} must be >= 0")
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r} is not one of {', '.join(METHODS)}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution {self.distribution!r} is not one of {', '.join(DISTRIBUTIONS)}")
        if not self.flows and self.pattern.kind != "pcap":
            raise ValueError("flows: at least one flow is required")
        if sum(f.count for f in self.flows) > MAX_FLOWS:
            raise ValueError(f"flows: more than {MAX_FLOWS} flows in total")
        if not 0.05 <= self.tick_ms <= 100:
            raise ValueError(f"tick_ms {self.tick_ms} must be in [0.05, 100]")
        if not -20 <= self.nice <= 19:
            raise ValueError(f"nice {self.nice} must be in -20..19")
        if self.max_burst < 1 or self.zipf_s < 0 or self.flow_id_base < 0:
            raise ValueError("max_burst must be >= 1, zipf_s and flow_id_base >= 0")
        if self.pattern.kind == "pcap" and self.method != "tcpreplay":
            raise ValueError("pattern kind pcap needs method: tcpreplay")
        if self.method == "tcpreplay" and self.pattern.kind not in ("constant", "pcap"):
            raise ValueError("method tcpreplay paces at one rate: use pattern constant or pcap")
        if self.method == "udp" and any(f.proto == "tcp" for f in self.flows):
            raise ValueError("method udp cannot send TCP flows: use packet or raw")

    @property
    def dports(self) -> list[int]:
        """Ports the sink listens on: ``sink.ports`` or every flow's dport."""
        return sorted(set(self.sink.ports) or {f.dport for f in self.flows})

    def with_dst(self, dst: str) -> TrafficProfile:
        """The same profile with every flow's empty ``dst`` set to ``dst`` (used by --dst / run)."""
        _check_ip(dst, "dst")
        return replace(self, flows=[f if f.dst else replace(f, dst=dst) for f in self.flows])


def load_profile(path: Path | str) -> TrafficProfile:
    """Read a traffic profile YAML (see ``traffic/profiles/``); raises ``ConfigError`` naming the key."""
    return config.load(TrafficProfile, path)


def profile_from_dict(data: dict[str, object], source: str = "<profile>") -> TrafficProfile:
    return config.from_dict(TrafficProfile, data, source=source)
