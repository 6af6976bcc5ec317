"""tcpreplay as a send path: write the crafted packets to a pcap (scapy), let tcpreplay pace them.

Why: tcpreplay (C) paces exactly and sends ~1 Mpps per core here, 3x what Python reaches, and it
replays captured traffic (pattern ``pcap``). Limits: one constant rate (``--pps``) or the capture's
own timing (``--multiplier``); stamps in a pcap are frozen at write time, so ``tx_ns`` is 0 and the
sink reports no latency; when the run needs more packets than the pcap holds, tcpreplay loops it
and the repeated sequence numbers count as duplicates at the sink.

The run is bounded by ``--limit`` (packets) and ``--duration`` (seconds) and, as a backstop, by
killing tcpreplay ``duration_s + 5`` seconds after the start.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from traffic import packets
from traffic.patterns import flow_weights, stride_sequence
from traffic.profile import TrafficProfile
from traffic.results import FlowSent, GeneratorReport

log = logging.getLogger(__name__)

MAX_PCAP_PACKETS = 1_000_000
KILL_MARGIN_S = 5.0


def write_pcap(templates: list[packets.Template], n: int, order: list[int], path: Path) -> list[int]:
    """Write ``n`` packets (flows in stride order, per-flow seq) to ``path``; returns per-flow counts."""
    from scapy.utils import PcapWriter  # noqa: PLC0415 - scapy only when writing a pcap

    seqs = [0] * len(templates)
    with PcapWriter(str(path), linktype=1, sync=False) as w:
        for k in range(n):
            i = order[k % len(order)]
            tpl = templates[i]
            packets.patch(tpl, seqs[i], 0)
            seqs[i] += 1
            w.write(bytes(tpl.buf))
    return seqs


def run_tcpreplay(
    profile: TrafficProfile,
    templates: list[packets.Template],
    iface: str,
    count: int,
    stop: threading.Event,
) -> GeneratorReport:
    exe = shutil.which("tcpreplay")
    if not exe:
        raise FileNotFoundError("tcpreplay is not installed (apt-get install tcpreplay)")
    pat = profile.pattern
    with tempfile.TemporaryDirectory(prefix="tg-replay-") as tmp:
        per_flow: list[int] = []
        if pat.kind == "pcap":
            pcap = Path(pat.pcap)
            if not pcap.is_file():
                raise FileNotFoundError(f"pattern.pcap: {pcap} does not exist")
            loops = 1
        else:
            pcap = Path(tmp) / "flows.pcap"
            n = min(count, MAX_PCAP_PACKETS)
            weights = flow_weights([t.flow.weight for t in templates], profile.distribution, profile.zipf_s)
            per_flow = write_pcap(templates, n, stride_sequence(weights), pcap)
            loops = math.ceil(count / n)
        cmd = [exe, "-i", iface, f"--duration={max(1, math.ceil(profile.duration_s))}"]
        cmd += [f"--limit={count}"] if count else []
        cmd += [f"--loop={loops}"] if loops > 1 else []
        cmd += [f"--pps={pat.rate_pps:g}"] if pat.rate_pps > 0 else [f"--multiplier={pat.multiplier:g}"]
        cmd.append(str(pcap))
        log.info("tcpreplay: %s", " ".join(cmd))
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = t0 + profile.duration_s + KILL_MARGIN_S
        reason = "tcpreplay"
        while proc.poll() is None:
            if stop.is_set() or time.perf_counter() > deadline:
                reason = "signal" if stop.is_set() else "duration"
                proc.terminate()
                break
            time.sleep(0.02)
        out, err = proc.communicate(timeout=10)
        elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, -15) and reason == "tcpreplay":
        raise RuntimeError(f"tcpreplay failed ({proc.returncode}): {err.strip() or out.strip()}")
    m = re.search(r"Actual:\s+(\d+) packets .*? in ([\d.]+) seconds", out)
    sent = int(m.group(1)) if m else 0
    dur = float(m.group(2)) if m else elapsed
    failed = re.search(r"Failed packets:\s+(\d+)", out)
    if per_flow and sent < sum(per_flow) * loops:
        per_flow = _first_n(per_flow, sent, templates, profile)
    return GeneratorReport(
        profile=profile.name,
        method="tcpreplay",
        host=socket.gethostname(),
        started_ns=time.time_ns() - int(elapsed * 1e9),
        duration_s=dur,
        sent=sent,
        target_pps=pat.rate_pps,
        achieved_pps=sent / dur if dur > 0 else 0.0,
        send_errors=int(failed.group(1)) if failed else 0,
        stop_reason=reason,
        flows=[
            FlowSent(t.flow.flow_id, t.flow.five_tuple(), n)
            for t, n in zip(templates, per_flow, strict=False)
        ],
    )


def _first_n(
    per_flow: list[int], sent: int, templates: list[packets.Template], profile: TrafficProfile
) -> list[int]:
    """Per-flow counts of the first ``sent`` packets of the (possibly looped) pcap."""
    weights = flow_weights([t.flow.weight for t in templates], profile.distribution, profile.zipf_s)
    order = stride_sequence(weights)
    total = max(1, sum(per_flow))
    loops_done, rest = divmod(sent, total)
    counts = [loops_done * p for p in per_flow]
    for k in range(rest):
        counts[order[k % len(order)]] += 1
    return counts
