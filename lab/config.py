"""Lab configuration (:class:`LabConfig`) and the address plan derived from it (:class:`HostPlan`).

A lab called ``<name>`` with ``hosts = N`` has N NFV hosts ``nfv1..nfvN`` plus the traffic hosts
``client`` and ``sink``. Every host gets a 1-based, unique ``host_index`` (``nfv<i>`` = i, ``client`` =
N+1, ``sink`` = N+2) and every address is derived from it, Mininet style, so that nothing has to be
allocated or remembered:

=================  ===========================================  ==================================
what               value                                        example (lab ``lab``, ``nfv2``)
=================  ===========================================  ==================================
namespace          ``<name>-<host>``                            ``lab-nfv2``
management IP      ``<mgmt_subnet>.(10 + host_index)`` on eth0   ``10.77.0.12``
data (underlay)    ``<data_subnet>.(10 + host_index)`` on eth1   ``10.78.0.12``
overlay IP         ``10.80.<host_index>.1``                     ``10.80.2.1``
root-side veths    ``<name>-<host>-m`` / ``<name>-<host>-d``     ``lab-nfv2-m``
root bridges       ``<name>-mgmt`` (holds ``.1``) / ``<name>-data``
private storage    ``<storage_root>/<name>/<host>/``             ``/var/lib/deft-lab/lab/nfv2/``
=================  ===========================================  ==================================

Interface names are limited to 15 bytes, which is why lab names are at most 6 characters.
Changing N moves ``client``/``sink`` to new indices (and so new addresses); ``lab up`` re-addresses
them in place.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout the lab package lives in (editable install): default home of ``inventory/<name>``."""

STORAGE_ROOT = Path("/var/lib/deft-lab")
"""Root-namespace directory holding every lab's private per-host storage and its state record."""

HOST_IP_OFFSET = 10  # host i gets <subnet>.(10 + i); .1 is the root bridge
TRAFFIC_HOSTS: tuple[tuple[str, str], ...] = (("client", "client"), ("sink", "sink"))  # (host, traffic_role)
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")


@dataclass(frozen=True)
class LabConfig:
    """Everything ``deftctl lab up`` needs; loadable from YAML through :mod:`deftctl.config`.

    ``hosts`` is the number of NFV hosts (traffic hosts come on top). ``data_mtu`` is the underlay
    MTU in bytes: 1600 leaves an inner MTU of 1500 after the 50-byte VXLAN header.
    """

    name: str = "lab"
    hosts: int = 3
    mgmt_subnet: str = "10.77.0.0/24"
    data_subnet: str = "10.78.0.0/24"
    inventory_dir: Path | None = None
    hazelcast_archive: Path | None = None
    storage_root: Path = STORAGE_ROOT
    data_mtu: int = 1600
    overlay_subnet: str = "10.80.0.0/16"
    overlay_vni: int = 4242
    extra_vars: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(
                f"name: {self.name!r} must be 1-6 lowercase letters/digits starting with a letter "
                "(interface names like '<name>-client-m' must fit in 15 bytes)"
            )
        if not 1 <= self.hosts <= 200:
            raise ValueError(f"hosts: {self.hosts} must be between 1 and 200")
        nets = {}
        for key in ("mgmt_subnet", "data_subnet"):
            try:
                net = ipaddress.IPv4Network(getattr(self, key), strict=True)
            except ValueError as exc:
                raise ValueError(f"{key}: {getattr(self, key)!r} is not an IPv4 network: {exc}") from exc
            needed = HOST_IP_OFFSET + self.hosts + len(TRAFFIC_HOSTS) + 1
            if net.num_addresses < needed + 1:
                raise ValueError(
                    f"{key}: {net} has {net.num_addresses} addresses; "
                    f"{self.hosts} NFV hosts need {needed + 1}"
                )
            nets[key] = net
        if nets["mgmt_subnet"].overlaps(nets["data_subnet"]):
            raise ValueError(f"mgmt_subnet {self.mgmt_subnet} overlaps data_subnet {self.data_subnet}")
        try:
            ipaddress.IPv4Network(self.overlay_subnet, strict=True)
        except ValueError as exc:
            raise ValueError(f"overlay_subnet: {self.overlay_subnet!r}: {exc}") from exc
        if not 576 <= self.data_mtu <= 9000:
            raise ValueError(f"data_mtu: {self.data_mtu} bytes is outside 576..9000")
        if self.hazelcast_archive is not None and not Path(self.hazelcast_archive).is_file():
            raise ValueError(f"hazelcast_archive: {self.hazelcast_archive} is not a file")

    @property
    def mgmt_net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.mgmt_subnet)

    @property
    def data_net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.data_subnet)

    @property
    def mgmt_gateway(self) -> str:
        """The ``.1`` address the ``<name>-mgmt`` bridge holds: every host's default gateway."""
        return str(self.mgmt_net.network_address + 1)

    @property
    def mgmt_bridge(self) -> str:
        return f"{self.name}-mgmt"

    @property
    def data_bridge(self) -> str:
        return f"{self.name}-data"

    @property
    def lab_dir(self) -> Path:
        """Root-namespace directory of this lab: state record, SSH client key, per-host storage."""
        return Path(self.storage_root) / self.name

    @property
    def inventory_path(self) -> Path:
        return Path(self.inventory_dir) if self.inventory_dir else REPO_ROOT / "inventory" / self.name

    @property
    def state_backend(self) -> str:
        """``hazelcast`` when an offline Hazelcast archive is given, else ``redis`` (see platform.md)."""
        return "hazelcast" if self.hazelcast_archive else "redis"

    def plan(self) -> list[HostPlan]:
        """All hosts of the lab in index order: ``nfv1..nfvN``, ``client``, ``sink``."""
        nfv = range(1, self.hosts + 1)
        names: list[tuple[str, str, str | None]] = [(f"nfv{i}", "nfv", None) for i in nfv]
        names += [(host, "traffic", role) for host, role in TRAFFIC_HOSTS]
        return [
            HostPlan(
                lab=self.name,
                host=host,
                group=group,
                index=i,
                mgmt_ip=str(self.mgmt_net.network_address + HOST_IP_OFFSET + i),
                data_ip=str(self.data_net.network_address + HOST_IP_OFFSET + i),
                prefixlen=self.mgmt_net.prefixlen,
                data_prefixlen=self.data_net.prefixlen,
                traffic_role=role,
                storage=self.lab_dir / host,
                overlay_ip=str(ipaddress.IPv4Network(self.overlay_subnet).network_address + 256 * i + 1),
            )
            for i, (host, group, role) in enumerate(names, start=1)
        ]


@dataclass(frozen=True)
class HostPlan:
    """One lab host's identity and addresses, all derived from its ``index`` (see module docstring)."""

    lab: str
    host: str
    group: str  # "nfv" | "traffic"
    index: int
    mgmt_ip: str
    data_ip: str
    prefixlen: int
    data_prefixlen: int
    traffic_role: str | None
    storage: Path
    overlay_ip: str

    @property
    def ns(self) -> str:
        return f"{self.lab}-{self.host}"

    @property
    def mgmt_veth(self) -> str:
        return f"{self.lab}-{self.host}-m"

    @property
    def data_veth(self) -> str:
        return f"{self.lab}-{self.host}-d"
