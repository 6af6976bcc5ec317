"""What a lab host keeps to itself: private directories, cgroup mounts, and the boot script.

Lab hosts share the machine's filesystem (``/usr``, ``/etc``, the dpkg database), which is what makes
a 5-host lab cost almost nothing. What a *server* must own - its configuration, data, logs and
runtime sockets for OVS, Docker, Redis, InfluxDB, Grafana, Hazelcast and DEFT itself - is listed in
:data:`PRIVATE_DIRS`: inside the host's mount namespace each of those paths is a bind mount of a
directory under the host's private storage (``/var/lib/deft-lab/<lab>/<host>/root/<path>``), and
``/run`` is a fresh tmpfs. Two hosts therefore never see each other's ``/etc/deft`` or
``/var/lib/docker``, while ``apt install`` on one host installs binaries for all of them.

``ip netns exec`` remounts ``/sys`` and so hides the cgroup hierarchies; dockerd then refuses to
start (``Devices cgroup isn't mounted``). The boot script therefore mounts a tmpfs on
``/sys/fs/cgroup`` and every cgroup v1 hierarchy of :data:`CGROUP_V1` again. The hierarchies are the
machine's (cgroups are not namespaced here): dockerd in each host must use its own
``--cgroup-parent``.

The script ends by ``exec``-ing a *keeper* (``sleep infinity``): the process that holds the host's
mount and UTS namespaces. sshd and everything else are started by ``nsenter`` into the keeper's
namespaces, so sshd can be restarted (after a crash or a re-addressing) without losing the mounts
that running daemons see.
"""

from __future__ import annotations

import shlex
from pathlib import Path

PRIVATE_DIRS: tuple[str, ...] = (
    "/etc/deft", "/var/lib/deft", "/var/log/deft", "/opt/deft/run", "/var/tmp/deft",
    "/etc/openvswitch", "/var/lib/openvswitch", "/var/log/openvswitch",
    "/etc/docker", "/var/lib/docker", "/var/lib/containerd",
    "/etc/redis", "/var/lib/redis", "/var/log/redis",
    "/etc/influxdb", "/var/lib/influxdb", "/var/log/influxdb",
    "/etc/grafana", "/var/lib/grafana", "/var/log/grafana",
    "/etc/hazelcast", "/var/lib/hazelcast", "/var/log/hazelcast",
    "/var/log/supervisor",
)  # fmt: skip
"""Paths every lab host owns privately (bind mounts of per-host directories). ``/run`` is a
per-host tmpfs on top of these (so ``/run/sshd``, ``/run/docker``, ``/run/openvswitch`` ... are private)."""

TMPFS_DIRS: tuple[str, ...] = ("/run",)
"""Paths that get a fresh, empty tmpfs in every host (runtime state that must not survive a restart)."""

CGROUP_V1: tuple[tuple[str, str], ...] = (
    ("cpu", "cpu"), ("cpuacct", "cpuacct"), ("cpuset", "cpuset"), ("memory", "memory"),
    ("devices", "devices"), ("freezer", "freezer"), ("blkio", "blkio"), ("pids", "pids"),
    ("systemd", "none,name=systemd"),
)  # fmt: skip
"""(mount point under /sys/fs/cgroup, mount options) of each cgroup v1 hierarchy dockerd needs."""

KEEPER_ARGV0 = "deft-lab-keeper"


def private_source(storage: Path, path: str) -> Path:
    """Per-host directory bind-mounted onto ``path`` (``<storage>/root/etc/deft`` for ``/etc/deft``)."""
    return storage / "root" / path.lstrip("/")


def boot_script(hostname: str, storage: Path, keeper_pidfile: Path, ready_file: Path) -> str:
    """Shell script run by ``ip netns exec <ns> unshare --uts`` that builds the host's view.

    Mount order matters: ``/run`` first (tmpfs), then the bind mounts, so a private dir below
    ``/run`` would not be hidden. Any failing step aborts (``set -e``) before the keeper starts, and
    the caller reports the script's stderr.
    """
    lines = ["set -eu", f"hostname {shlex.quote(hostname)}"]
    for path in TMPFS_DIRS:
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(path)}")
    lines.append("mkdir -p /run/sshd /run/lock && chmod 0755 /run/sshd")
    for path in PRIVATE_DIRS:
        src = shlex.quote(str(private_source(storage, path)))
        lines.append(f"mount --bind {src} {shlex.quote(path)}")
    lines.append("mount -t tmpfs -o mode=0755 cgroup_root /sys/fs/cgroup")
    for mnt, opts in CGROUP_V1:
        lines.append(
            f"mkdir -p /sys/fs/cgroup/{mnt} && mount -t cgroup -o {opts} cgroup /sys/fs/cgroup/{mnt}"
        )
    lines.append(f"echo $$ > {shlex.quote(str(keeper_pidfile))}")
    lines.append(f": > {shlex.quote(str(ready_file))}")
    lines.append(f"exec -a {KEEPER_ARGV0} sleep infinity")
    return "\n".join(lines) + "\n"
