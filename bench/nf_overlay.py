"""DEFT NF on the multi-host lab overlay: throughput against a bare Python UDP echo on the same path,
failover time and migration downtime. Prints one table; figures are reported, never asserted.

Paths (the lab provisioned by site.yml; the service deployed here by ``playbooks/nf.yml``)::

    echo: client gen ──overlay──> nfv1 python recvfrom/sendto relay ──overlay──> sink
    NF:   client gen ─> TUN ─> stamper ──overlay──> primary container (nfv1) ──raw IP──> sink
                                     └─ OVS copy ──overlay──> secondary container (nfv2)

* throughput: ``--seconds`` of UDP (kernel sockets, 8 flows) offered at ``--rate`` pps; the sink's
  receive rate and the distinct packets delivered. Both paths cross the userspace OVS VXLAN overlay
  (~140 kpps per hop on an idle machine, platform.md) on 2 shared cores, so the NF/echo ratio is the
  meaningful figure. Above the paths' capacity this is an overload figure.
* no-loss throughput (``--no-loss``, RFC 2544 style): per path, the highest offered rate that loses
  at most ``--max-loss`` (0.1 %), bisected in ``--steps`` runs between 0 and ``--rate``; the ratio
  of the two is the capacity ratio. The NF path carries every packet twice across the overlay (to
  the primary and, duplicated by the ingress OVS, to the secondary), the echo once.
* failover: kill -9 of the primary container's process under 2 kpps; time from the kill until the
  steering table (read from the state store every 2 ms) names the promoted secondary = detection
  (FDU heartbeats) + lease CAS + promote + re-steer, as [lower, upper] bounds (from the return and
  from the start of the host command that kills). Also the FDU's own promote/steer log line.
* migration: ``agent migrate`` of the (new) primary to its replacement secondary's host under
  traffic; the agent's report (handover = the downtime of the moved flows, total) and the sink's
  loss/reordering.

Usage: ``python bench/nf_overlay.py --inventory inventory/ig [--rate 10000] [--seconds 5] [--no-loss]``
(``--throughput-only`` skips failover and migration; ``--keep`` leaves the service deployed)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rfc2544  # bench/rfc2544.py, beside this script
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deftctl.playbook import run_playbook  # noqa: E402
from lab import lifecycle  # noqa: E402
from lab.config import STORAGE_ROOT  # noqa: E402
from nf.steering import SteeringTable  # noqa: E402
from nf.store import open_store  # noqa: E402

PY = "/opt/deft/venv/bin/python"
SERVICE = "counter"
RELAY = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
dst = (sys.argv[3], int(sys.argv[4]))
buf = bytearray(2048)
while True:
    n = s.recv_into(buf)
    s.sendto(memoryview(buf)[:n], dst)
"""


class Lab:
    """Commands with a lab host's view, and the hosts' addresses."""

    def __init__(self, inventory: Path, tmp: Path) -> None:
        self.inv = inventory
        self.name = inventory.name
        self.tmp = tmp
        doc = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]
        self.hv: dict[str, dict[str, Any]] = {}
        for grp in doc.values():
            for h, v in ((grp or {}).get("hosts") or {}).items():
                if v:
                    self.hv[h] = v

    def run(self, host: str, *argv: str, timeout_s: float = 120.0) -> str:
        return lifecycle.host_run(self.name, host, list(argv), check=True, timeout_s=timeout_s)

    def popen(self, host: str, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            lifecycle.exec_argv(self.name, host, list(argv)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def deploy(self, *args: str) -> Any:
        return json.loads(self.run("nfv1", PY, "-m", "deploy", *args, "--json"))

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = next(s for s in self.deploy("status") if s["service"] == SERVICE)
        return doc

    def store(self) -> Any:
        return open_store(STORAGE_ROOT / self.name / "nfv1" / "root" / "etc" / "deft" / "statestore.yml")

    def traffic(
        self, tag: str, dst: str, dport: int, rate: int, seconds: float, sink_port: int = 0
    ) -> tuple[Any, Any]:
        """Start sink (sink host) and generator (client); returns both Popen handles + report paths."""
        prof = self.tmp / f"{tag}.yml"
        count = int(rate * seconds)
        prof.write_text(yaml.safe_dump({
            "name": tag, "duration_s": seconds + 5, "count": count, "method": "udp", "nice": -10,
            "flows": [{"proto": "udp", "dport": dport, "sport": 20000, "count": 8, "size_bytes": 64}],
            "pattern": {"kind": "constant", "rate_pps": rate},
            "sink": {"mode": "udp", "idle_timeout_s": 3, "nice": -10},
        }))  # fmt: skip
        sj, gj = self.tmp / f"{tag}-sink.json", self.tmp / f"{tag}-gen.json"
        ready = self.tmp / f"{tag}.ready"
        sink = self.popen(
            "sink",
            sys.executable,
            "-m",
            "traffic",
            "sink",
            "--ports",
            str(sink_port or dport),
            "--duration-s",
            str(seconds + 5),
            "--idle-timeout-s",
            "3",
            "--json-out",
            str(sj),
            "--ready-file",
            str(ready),
        )
        end = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < end:
            time.sleep(0.1)
        gen = self.popen(
            "client",
            sys.executable,
            "-m",
            "traffic",
            "gen",
            "--profile",
            str(prof),
            "--dst",
            dst,
            "--json-out",
            str(gj),
        )
        return (sink, sj), (gen, gj)

    @staticmethod
    def finish(handles: tuple[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        (sink, sj), (gen, gj) = handles
        gen.communicate(timeout=300)
        sink.communicate(timeout=300)
        return json.loads(Path(sj).read_text()), json.loads(Path(gj).read_text())


class Relay:
    """The bare Python UDP echo on nfv1 (the reference path), running while the context is open."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.ip = lab.hv["nfv1"]["overlay_ip"]

    def __enter__(self) -> Relay:
        self.proc = self.lab.popen(
            "nfv1", sys.executable, "-c", RELAY, self.ip, "9999", self.lab.hv["sink"]["overlay_ip"], "7001"
        )
        time.sleep(1.0)
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.kill()
        self.proc.communicate()


def trial(lab: Lab, path: str, rate: int, seconds: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """One constant-rate run of ``path`` ("echo": through the relay, which must be running; "nf":
    through the stamper and the service). Returns the sink's and the generator's reports."""
    if path == "echo":
        relay = lab.hv["nfv1"]["overlay_ip"]
        return lab.finish(lab.traffic("echo", relay, 9999, rate, seconds, sink_port=7001))
    return lab.finish(lab.traffic("nf", lab.hv["sink"]["overlay_ip"], 7000, rate, seconds))


def throughput(lab: Lab, rate: int, seconds: float) -> dict[str, float]:
    """Both paths offered the same ``rate``: the sink's receive rate over its receive period.

    Above a path's capacity this measures its behaviour in overload, not only its capacity: the NF
    path queues (its input buffer, the in-order gate waiting for packets lost upstream), so its
    receive period outlasts the generator's and the rate falls; see :func:`no_loss_rate`."""
    with Relay(lab):
        s, g = trial(lab, "echo", rate, seconds)
    s2, g2 = trial(lab, "nf", rate, seconds)
    return {
        "offered_pps": float(rate),
        "echo_sent_pps": g["achieved_pps"],
        "echo_pps": s["throughput_pps"],
        "echo_delivered": s["unique"] / max(1, g["sent"]),
        "nf_sent_pps": g2["achieved_pps"],
        "nf_pps": s2["throughput_pps"],
        "nf_delivered": s2["unique"] / max(1, g2["sent"]),
        "nf_p50_us": s2["latency_p50_us"],
        "nf_p99_us": s2["latency_p99_us"],
        "ratio": s2["throughput_pps"] / max(1.0, s["throughput_pps"]),
    }


def no_loss_rate(lab: Lab, path: str, hi: int, seconds: float, max_loss: float, steps: int) -> dict[str, Any]:
    """Capacity of one path (``echo`` or ``nf``): :func:`rfc2544.no_loss_rate` over
    :func:`trial` runs of ``seconds`` each."""
    def run(rate: int) -> tuple[float, dict[str, Any]]:
        s, g = trial(lab, path, rate, seconds)
        return s["unique"] / max(1, g["sent"]), {"p99_us": s["latency_p99_us"]}
    return rfc2544.no_loss_rate(run, hi, max_loss, steps)


def capacity(lab: Lab, hi: int, seconds: float, max_loss: float, steps: int) -> dict[str, Any]:
    """:func:`no_loss_rate` of the echo and of the NF path, in the same run."""
    with Relay(lab):
        echo = no_loss_rate(lab, "echo", hi, seconds, max_loss, steps)
    nf = no_loss_rate(lab, "nf", hi, seconds, max_loss, steps)
    for path, res in (("echo", echo), ("nf", nf)):
        if res["at_ceiling"]:
            print(f"{path}: no loss up to the bisection's ceiling {hi} pps: raise --rate", file=sys.stderr)
    return {"max_loss": max_loss, "echo": echo, "nf": nf,
            "ratio": nf["no_loss_pps"] / max(1, echo["no_loss_pps"])}


def failover(lab: Lab) -> dict[str, Any]:
    st = lab.status()
    prim = st["primary"]
    store = lab.store()
    handles = lab.traffic("fo", lab.hv["sink"]["overlay_ip"], 7000, 2000, 10)
    try:
        time.sleep(4)
        pid = lab.run(
            prim["host"], "docker", "inspect", "-f", "{{.State.Pid}}", f"deft-nf-{prim['instance']}"
        ).strip()
        table = SteeringTable(store)
        t0 = time.monotonic()
        lab.run(prim["host"], "kill", "-9", pid)
        t_kill = time.monotonic()
        new = prim["instance"]
        while new == prim["instance"] and time.monotonic() - t0 < 30:
            e = table.get(SERVICE, "0")
            new = e.primary.instance if e else new
            time.sleep(0.002)
        t_steer = time.monotonic()
    finally:
        s, g = lab.finish(handles)
        store.close()
    log = lab.run("nfv1", "tail", "-n", "50", "/var/log/deft/deft-fdu.log")
    line = next((ln for ln in reversed(log.splitlines()) if "after detection" in ln), "")
    return {
        # the kill happens somewhere inside the host command (nsenter/SSH start-up, then kill):
        # from its start is an upper bound, from its return a lower bound
        "kill_to_steering_ms": [(t_steer - t_kill) * 1000.0, (t_steer - t0) * 1000.0],
        "kill_command_ms": (t_kill - t0) * 1000.0,
        "new_primary": new,
        "fdu_log": line.split(": ", 1)[-1],
        "sent": g["sent"],
        "unique": s["unique"],
        "reordered": s["reordered"],
        "duplicates": s["duplicates"],
    }


def migration(lab: Lab) -> dict[str, Any]:
    end = time.monotonic() + 90
    while not lab.status()["secondaries"] and time.monotonic() < end:
        time.sleep(1)
    st = lab.status()
    if not st["secondaries"]:
        return {"error": "no replacement secondary after the failover: nothing to migrate to"}
    prim, sec = st["primary"], st["secondaries"][0]
    handles = lab.traffic("mig", lab.hv["sink"]["overlay_ip"], 7000, 2000, 8)
    try:
        time.sleep(3)
        rep = json.loads(
            lab.run(
                prim["host"],
                PY,
                "-m",
                "agent",
                "migrate",
                "-i",
                prim["instance"],
                "--to",
                sec["host"],
                "--target",
                sec["instance"],
                "--service",
                SERVICE,
                "--json",
            )
        )
    finally:
        s, g = lab.finish(handles)
    r = rep["report"]
    return {
        "handover_ms": r["handover_ms"],
        "total_ms": r["total_ms"],
        "flows": r["flows"],
        "sent": g["sent"],
        "unique": s["unique"],
        "loss": g["sent"] - s["unique"],
        "reordered": s["reordered"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inventory", type=Path, required=True)
    ap.add_argument("--rate", type=int, default=10000, help="offered pps for the throughput runs")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--keep", action="store_true", help="leave the service deployed")
    ap.add_argument("--throughput-only", action="store_true", help="skip failover and migration")
    ap.add_argument("--no-loss", action="store_true",
                    help="also bisect each path's highest rate with at most --max-loss lost (RFC 2544 style)")
    ap.add_argument("--max-loss", type=float, default=0.001, help="loss fraction a no-loss run may have")
    ap.add_argument("--steps", type=int, default=7, help="bisection runs per path (between 0 and --rate)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nf-overlay-", dir="/tmp") as tmp:
        lab = Lab(a.inventory.resolve(), Path(tmp))
        varsfile = Path(tmp) / "svc.yml"
        varsfile.write_text(yaml.safe_dump({"deft_services": [{
            "name": SERVICE, "nf_type": "counter", "instances": 2, "primary_host": "nfv1",
            "secondary_host": "nfv2", "workers": 1, "flow_groups": 16, "batch_size": 32,
            "engine": {"batch_timeout_ms": 2.0, "buffer_size": 200}}]}))  # fmt: skip
        run = run_playbook(lab.inv, "playbooks/nf.yml", "-e", f"@{varsfile}")
        if not run.ok:
            sys.exit(f"playbooks/nf.yml failed:\n{run.output[-3000:]}")
        try:
            res: dict[str, Any] = {"throughput": throughput(lab, a.rate, a.seconds)}
            if a.no_loss:
                res["no_loss"] = capacity(lab, a.rate, a.seconds, a.max_loss, a.steps)
            if not a.throughput_only:
                res["failover"] = failover(lab)
                res["migration"] = migration(lab)
        finally:
            if not a.keep:
                lab.deploy("remove", SERVICE)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
