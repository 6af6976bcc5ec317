"""Throw-away Redis servers (primary, replicas, Sentinels) for tests, benchmarks and the lab.

Why here and not in a test file: the contract tests, the failover tests, ``bench/`` and the
``deftctl nf`` commands all need "a real Redis on a free port under a temp dir that is gone
afterwards". Each server binds to ``bind`` only (127.0.0.1 by default, or a namespace address when
``ns`` is given), has persistence off, and is stopped (process group SIGTERM, then SIGKILL) by
:meth:`LocalRedis.stop` / the context manager, even when the body raised.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis

from lab.netns import popen, stop_process
from nf.store import StoreConfig

REDIS_SERVER = "redis-server"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class LocalRedis:
    """One ``redis-server`` (or Sentinel when ``sentinel_of`` is set) in ``workdir``."""

    workdir: Path
    port: int = 0
    bind: str = "127.0.0.1"
    replica_of: tuple[str, int] | None = None
    #: ``(master_name, host, port, quorum)`` makes this process a Sentinel monitoring that primary
    sentinel_of: tuple[str, str, int, int] | None = None
    #: Sentinel: ms without reply before the primary is subjectively down
    down_after_ms: int = 500
    ns: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.bind}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        if not self.port:
            self.port = free_port(self.bind) if self.ns is None else _random_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / f"redis-{self.port}.conf"
        lines = [
            f"port {self.port}",
            f"bind {self.bind}",
            "protected-mode no",
            f"dir {self.workdir}",
            'save ""',
            "appendonly no",
            "daemonize no",
            f"logfile {self.workdir / f'redis-{self.port}.log'}",
        ]
        if self.replica_of:
            lines.append(f"replicaof {self.replica_of[0]} {self.replica_of[1]}")
        args = [REDIS_SERVER, str(conf)]
        if self.sentinel_of:
            name, host, port, quorum = self.sentinel_of
            lines = [ln for ln in lines if not ln.startswith(("save", "appendonly"))]
            lines += [
                f"sentinel monitor {name} {host} {port} {quorum}",
                f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
                f"sentinel failover-timeout {name} 5000",
                f"sentinel parallel-syncs {name} 1",
            ]
            args.append("--sentinel")
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.proc = popen(args, ns=self.ns, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_up(timeout_s)
        return self

    def _wait_up(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                log = self.workdir / f"redis-{self.port}.log"
                tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
                raise RuntimeError(f"redis-server on {self.endpoint} exited ({self.proc.returncode}): {tail}")
            if self.ns is not None:
                # the address may only be reachable inside the namespace: ask from there
                cli = ["redis-cli", "-h", self.bind, "-p", str(self.port), "ping"]
                cp = subprocess.run(
                    ["ip", "netns", "exec", self.ns, *cli],
                    capture_output=True, text=True, check=False, timeout=5,
                )
                if cp.stdout.strip() == "PONG":
                    return
                last = RuntimeError(cp.stderr.strip() or cp.stdout.strip())
                time.sleep(0.05)
                continue
            try:
                with redis.Redis(host=self.bind, port=self.port, socket_timeout=0.5) as r:
                    r.ping()
                return
            except redis.RedisError as exc:
                last = exc
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on {self.endpoint} not up after {timeout_s} s: {last}")

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.bind, port=self.port, socket_timeout=2.0)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL (crash) the server, as a failure test wants."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=5)
            self.proc = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _random_port() -> int:
    # Inside a fresh namespace every port is free; stay clear of the ephemeral range.
    return 20000 + int(time.monotonic_ns() // 1000) % 20000


@contextlib.contextmanager
def single(workdir: Path | None = None, bind: str = "127.0.0.1") -> Iterator[tuple[LocalRedis, StoreConfig]]:
    """One standalone primary and the :class:`StoreConfig` that reaches it."""
    with contextlib.ExitStack() as stack:
        wd = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deft-redis-")))
        srv = stack.enter_context(LocalRedis(wd, bind=bind))
        yield srv, StoreConfig(backend="redis", endpoints=(srv.endpoint,), timeout_ms=2000, retry_ms=3000)


@dataclass
class SentinelSet:
    """A primary, ``replicas`` replicas and ``sentinels`` Sentinels (quorum = majority)."""

    primary: LocalRedis
    replicas: list[LocalRedis]
    sentinels: list[LocalRedis]
    master_name: str

    def config(self, wait_replicas: int = 0) -> StoreConfig:
        return StoreConfig(
            backend="redis",
            endpoints=(self.primary.endpoint,),
            sentinels=tuple(s.endpoint for s in self.sentinels),
            master_name=self.master_name,
            wait_replicas=wait_replicas,
            timeout_ms=1000,
            retry_ms=20000,
        )


@contextlib.contextmanager
def sentinel_set(
    workdir: Path | None = None, replicas: int = 1, sentinels: int = 3, master_name: str = "deft"
) -> Iterator[SentinelSet]:
    """Start a Sentinel-managed primary/replica set on 127.0.0.1; everything stops on exit."""
    with contextlib.ExitStack() as stack:
        wd = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deft-sentinel-")))
        primary = stack.enter_context(LocalRedis(wd / "primary"))
        reps = [
            stack.enter_context(LocalRedis(wd / f"replica{i}", replica_of=(primary.bind, primary.port)))
            for i in range(replicas)
        ]
        _wait_replicas_online(primary, replicas)
        quorum = sentinels // 2 + 1
        sents = [
            stack.enter_context(
                LocalRedis(wd / f"sentinel{i}", sentinel_of=(master_name, primary.bind, primary.port, quorum))
            )
            for i in range(sentinels)
        ]
        _wait_sentinels_ready(sents, master_name, replicas)
        _wait_ack(primary, replicas)
        yield SentinelSet(primary, reps, sents, master_name)


def _wait_sentinels_ready(sents: list[LocalRedis], name: str, replicas: int, timeout_s: float = 15.0) -> None:
    """Every Sentinel knows the replicas and the other Sentinels (needed for a quorum and an election)."""
    deadline = time.monotonic() + timeout_s
    for s in sents:
        with s.client() as r:
            while True:
                raw = r.execute_command("SENTINEL", "MASTER", name)
                pairs = zip(raw[::2], raw[1::2], strict=True) if isinstance(raw, list) else raw.items()
                info = {_s(k): _s(v) for k, v in pairs}
                others = int(info.get("num-other-sentinels", "0"))
                slaves = int(info.get("num-slaves", "0"))
                if others >= len(sents) - 1 and slaves >= replicas:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sentinel {s.endpoint}: sees {others} sentinels, {slaves} replicas")
                time.sleep(0.1)


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _wait_ack(primary: LocalRedis, n: int, timeout_s: float = 10.0) -> None:
    """A probe write is acknowledged by ``n`` replicas (``WAIT``), so replication is flowing."""
    deadline = time.monotonic() + timeout_s
    with primary.client() as r:
        while time.monotonic() < deadline:
            r.set("_v/probe", b"1")
            if int(r.wait(n, 200)) >= n:
                r.delete("_v/probe")
                return
    raise RuntimeError(f"{primary.endpoint}: writes not acknowledged by {n} replica(s) after {timeout_s} s")


def _wait_replicas_online(primary: LocalRedis, n: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    with primary.client() as r:
        while time.monotonic() < deadline:
            info = r.info("replication")
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            if sum(1 for s in online if s.get("state") == "online") >= n:
                return
            time.sleep(0.05)
    raise RuntimeError(f"{n} replica(s) of {primary.endpoint} not online after {timeout_s} s")
