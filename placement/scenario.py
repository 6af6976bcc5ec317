"""Placement scenarios: what the cluster looks like and how its load moves, as YAML -> dataclasses.

A scenario is the *exogenous* half of a placement experiment: the hosts (groups of identical
servers with a packet-processing capacity in pps), the VNFs (groups with a mean offered load in
pps, per-flow state size in bytes, arrival and departure times) and the load processes acting on
them (diurnal sine, flash crowds, gradual drift, host failures). The simulator
(:mod:`placement.simulator`) expands a scenario for a given seed into numpy traces once, so every
policy sees exactly the same world for the same seed.

Files live in ``placement/scenarios/*.yml`` and are loaded through the one config loader
(:mod:`deftctl.config`), so an unknown key, a missing key or a wrong type is reported as
``<file>: <key path>: ...``. Cross-field checks (a failure naming a host that does not exist,
negative rates, ...) are done here and name the file and key the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deftctl.config import ConfigError, from_dict, read_yaml

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


@dataclass(frozen=True)
class HostGroup:
    """``count`` identical servers named ``<name>-1`` .. ``<name>-<count>``."""

    name: str
    capacity_pps: float  # packets/s the host's NF cores can process in total
    count: int = 1


@dataclass(frozen=True)
class VnfGroup:
    """``count`` VNF instances of one type, each with its own random load share."""

    name: str
    rate_pps: float  # mean offered load of one instance (pps)
    count: int = 1
    rate_spread: float = 0.3  # relative std-dev of per-instance mean rate (lognormal), 0 = identical
    state_bytes: float = 1.0e6  # per-instance state moved on migration (bytes)
    arrive_s: float = 0.0  # instance becomes active at this time (s)
    depart_s: float = -1.0  # instance leaves at this time (s); < 0 = never
    arrival_spread_s: float = 0.0  # arrivals/departures are jittered uniformly by +- this (s)


@dataclass(frozen=True)
class Diurnal:
    """Sinusoidal load: rate * (1 + amplitude * sin(2 pi (t / period_s + phase)))."""

    amplitude: float = 0.0  # 0..1
    period_s: float = 600.0
    phase_spread: float = 1.0  # per-VNF phase drawn uniformly from [0, phase_spread) periods


@dataclass(frozen=True)
class FlashCrowd:
    """A fraction of VNFs see their load multiplied during [start_s, start_s + duration_s)."""

    start_s: float
    duration_s: float
    multiplier: float
    fraction: float = 0.2  # share of active VNFs hit (chosen by seed)
    ramp_s: float = 5.0  # linear ramp up/down time (s)


@dataclass(frozen=True)
class Drift:
    """Gradual drift: log-rate random walk per VNF (std-dev per sqrt(s)), plus a common trend."""

    sigma_per_sqrt_s: float = 0.0
    trend_per_hour: float = 0.0  # relative growth of all rates per hour (0.5 = +50 %/h)


@dataclass(frozen=True)
class HostFailure:
    """Host ``host`` (full name, e.g. ``h-2``) is down in [at_s, until_s); until_s < 0 = forever."""

    host: str
    at_s: float
    until_s: float = -1.0


@dataclass(frozen=True)
class Scenario:
    """One placement experiment world; see the module docstring."""

    name: str
    hosts: list[HostGroup]
    vnfs: list[VnfGroup]
    description: str = ""
    step_s: float = 1.0  # simulated seconds per decision step
    steps: int = 300  # episode length (decision steps)
    sla_ms: float = 10.0  # per-packet latency objective (ms)
    noise: float = 0.05  # relative white noise on every rate sample
    diurnal: Diurnal = field(default_factory=Diurnal)
    flash: list[FlashCrowd] = field(default_factory=list)
    drift: Drift = field(default_factory=Drift)
    failures: list[HostFailure] = field(default_factory=list)

    @property
    def host_names(self) -> list[str]:
        """Expanded host names in index order (``<group>-<k>``, k from 1)."""
        return [f"{g.name}-{k}" for g in self.hosts for k in range(1, g.count + 1)]

    @property
    def n_hosts(self) -> int:
        return sum(g.count for g in self.hosts)

    @property
    def n_vnfs(self) -> int:
        return sum(g.count for g in self.vnfs)

    @property
    def vnf_names(self) -> list[str]:
        return [f"{g.name}-{k}" for g in self.vnfs for k in range(1, g.count + 1)]


def validate(sc: Scenario, source: str) -> Scenario:
    """Cross-field checks; raises :class:`ConfigError` naming ``source`` and the key."""

    def bad(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {msg}")

    if not sc.hosts:
        raise bad("hosts", "at least one host group is required")
    if not sc.vnfs:
        raise bad("vnfs", "at least one VNF group is required")
    for i, h in enumerate(sc.hosts):
        if h.count < 1:
            raise bad(f"hosts[{i}].count", f"must be >= 1, got {h.count}")
        if h.capacity_pps <= 0:
            raise bad(f"hosts[{i}].capacity_pps", f"must be > 0, got {h.capacity_pps}")
    for i, v in enumerate(sc.vnfs):
        if v.count < 1:
            raise bad(f"vnfs[{i}].count", f"must be >= 1, got {v.count}")
        if v.rate_pps < 0:
            raise bad(f"vnfs[{i}].rate_pps", f"must be >= 0, got {v.rate_pps}")
        if v.rate_spread < 0:
            raise bad(f"vnfs[{i}].rate_spread", f"must be >= 0, got {v.rate_spread}")
        if v.state_bytes < 0:
            raise bad(f"vnfs[{i}].state_bytes", f"must be >= 0, got {v.state_bytes}")
        if 0 <= v.depart_s <= v.arrive_s:
            raise bad(f"vnfs[{i}].depart_s", f"must be after arrive_s ({v.arrive_s}), got {v.depart_s}")
    if sc.step_s <= 0:
        raise bad("step_s", f"must be > 0, got {sc.step_s}")
    if sc.steps < 1:
        raise bad("steps", f"must be >= 1, got {sc.steps}")
    if sc.sla_ms <= 0:
        raise bad("sla_ms", f"must be > 0, got {sc.sla_ms}")
    if not 0 <= sc.diurnal.amplitude <= 1:
        raise bad("diurnal.amplitude", f"must be in [0, 1], got {sc.diurnal.amplitude}")
    if sc.diurnal.period_s <= 0:
        raise bad("diurnal.period_s", f"must be > 0, got {sc.diurnal.period_s}")
    for i, f in enumerate(sc.flash):
        if f.multiplier <= 0:
            raise bad(f"flash[{i}].multiplier", f"must be > 0, got {f.multiplier}")
        if not 0 < f.fraction <= 1:
            raise bad(f"flash[{i}].fraction", f"must be in (0, 1], got {f.fraction}")
        if f.duration_s <= 0:
            raise bad(f"flash[{i}].duration_s", f"must be > 0, got {f.duration_s}")
    names = set(sc.host_names)
    for i, fl in enumerate(sc.failures):
        if fl.host not in names:
            raise bad(f"failures[{i}].host", f"unknown host {fl.host!r}; hosts are {sorted(names)}")
        if 0 <= fl.until_s <= fl.at_s:
            raise bad(f"failures[{i}].until_s", f"must be after at_s ({fl.at_s}), got {fl.until_s}")
    if len(sc.failures) and len({f.host for f in sc.failures}) >= sc.n_hosts:
        raise bad("failures", "every host fails at some point; at least one must stay up")
    return sc


def load_scenario(path: Path | str) -> Scenario:
    """Load and validate a scenario file; a bare name is looked up in ``placement/scenarios``."""
    p = Path(path)
    if not p.exists() and not p.suffix:
        p = SCENARIO_DIR / f"{p.name}.yml"
    sc = from_dict(Scenario, read_yaml(p), source=str(p))
    return validate(sc, str(p))


def builtin_scenarios() -> list[Path]:
    """All scenario files shipped with the package, sorted by name."""
    return sorted(SCENARIO_DIR.glob("*.yml"))
