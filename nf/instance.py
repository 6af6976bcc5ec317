"""An NF instance process: ``python -m nf.instance --config FILE`` (also ``deftctl nf run``).

The main process forks ``workers`` worker processes (:class:`nf.engine.Worker`, one per core,
flow group ``g`` -> worker ``g % workers``) and serves the control API (:mod:`nf.control`) on a
Unix socket and optionally TCP. A control command is sent to every worker over its pipe and the
answers are merged. If a worker dies the instance exits non-zero: an instance is fail-stop, so its
secondary takes over (a half-alive primary would be worse than a dead one).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import json
import logging
import multiprocessing as mp
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from deftctl import setup_logging
from deftctl.config import ConfigError, load
from nf import metrics as metricsmod
from nf.control import COMMANDS
from nf.instance_config import InstanceConfig, parse_addr

log = logging.getLogger("nf.instance")

#: read-only queries answered once for all concurrent askers (``Instance._coalesced``)
COALESCED: frozenset[str] = frozenset({"metrics", "status"})


def _open_store(cfg: InstanceConfig) -> Any:
    if not cfg.statestore:
        return None
    from nf.store import open_store  # noqa: PLC0415 - optional dependency of an instance
    return open_store(None if cfg.statestore == "default" else cfg.statestore)


def _worker_main(cfg: InstanceConfig, idx: int, conn: Connection, progress: Any,
                 main_ends: list[Connection]) -> None:
    # fork copied the main process's end of every worker pipe (ours too): close them here, or the
    # main's death (kill -9) never reaches us as EOF on ``conn`` and we outlive it, still bound to
    # the data ports (CI left such orphans behind)
    for c in main_ends:
        c.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from nf.engine import Worker  # noqa: PLC0415 - import after fork keeps the parent light
    store = _open_store(cfg)
    try:
        w = Worker(cfg, idx, conn, store, progress)
    except Exception as exc:
        conn.send((0, False, f"worker {idx}: {type(exc).__name__}: {exc}"))
        raise
    conn.send((0, True, {"ready": idx}))
    w.run()


class _UnixControlServer(socketserver.ThreadingUnixStreamServer):
    #: a deep backlog: clients that kept connecting while the instance was frozen must not fill it
    request_queue_size = 64
    daemon_threads = True


class _TcpControlServer(socketserver.ThreadingTCPServer):
    request_queue_size = 64
    daemon_threads = True
    allow_reuse_address = True


class Instance:
    """Main process: workers + control server."""

    def __init__(self, cfg: InstanceConfig) -> None:
        self.cfg = cfg
        self.ctx = mp.get_context("fork")
        self.procs: list[Any] = []
        self.pipes: list[Connection] = []
        self.locks: list[threading.Lock] = []
        self.stop = threading.Event()
        self.servers: list[socketserver.BaseServer] = []
        self._req = itertools.count(1)
        #: in-flight coalesced queries (``_coalesced``), by (command, arguments)
        self._flights: dict[tuple[str, str], Future[Any]] = {}
        self._flights_lock = threading.Lock()
        #: time.monotonic() of each worker's latest loop iteration (written by the workers)
        self.progress: Any = self.ctx.RawArray("d", max(1, cfg.workers))

    def start(self) -> None:
        for ip in {self.cfg.data_ip, self.cfg.repl_bind}:
            wait_for_address(ip, self.cfg.addr_wait_s)
        for i in range(self.cfg.workers):
            parent, child = self.ctx.Pipe()
            self.progress[i] = time.monotonic()
            p = self.ctx.Process(target=_worker_main,
                                 args=(self.cfg, i, child, self.progress, [*self.pipes, parent]),
                                 name=f"nf-worker-{i}", daemon=True)
            p.start()
            child.close()  # the worker's end lives in the worker only
            self.procs.append(p)
            self.pipes.append(parent)
            self.locks.append(threading.Lock())
        for i, pipe in enumerate(self.pipes):
            if not pipe.poll(30):
                raise RuntimeError(f"worker {i} did not start within 30 s")
            _req, ok, res = pipe.recv()
            if not ok:
                raise RuntimeError(str(res))
        self._serve()
        log.info("instance %s (%s, lease %s epoch %d) up: %d workers, data %s:%d+, repl :%d+, control %s",
                 self.cfg.name, self.cfg.role, self.cfg.lease_name, self.cfg.epoch, self.cfg.workers,
                 self.cfg.data_ip, self.cfg.data_port, self.cfg.repl_port, self.cfg.control_path)

    def _serve(self) -> None:
        inst = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    if not line.strip():
                        continue
                    try:
                        req = json.loads(line)
                        if not isinstance(req, dict) or "cmd" not in req:
                            raise ValueError("request must be a JSON object with a 'cmd' key")
                        ans = {"ok": True, "result": inst.command(str(req.pop("cmd")), req)}
                    except Exception as exc:  # a bad request never stops the server
                        ans = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    self.wfile.write(json.dumps(ans).encode() + b"\n")
                    self.wfile.flush()

        path = Path(self.cfg.control_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        unix = _UnixControlServer(str(path), Handler)
        self.servers.append(unix)
        if self.cfg.control_tcp:
            host, port = parse_addr(self.cfg.control_tcp, "control_tcp")
            tcp = _TcpControlServer((host, port), Handler)
            self.servers.append(tcp)
        for srv in self.servers:
            threading.Thread(target=srv.serve_forever, daemon=True, name="control").start()

    def _ask(self, i: int, cmd: str, args: dict[str, Any], timeout_s: float = 30.0) -> Any:
        with self.locks[i]:
            req = next(self._req)
            self.pipes[i].send((req, cmd, args))
            deadline = time.monotonic() + timeout_s
            while True:  # skip late answers to earlier, timed-out requests
                left = deadline - time.monotonic()
                if left <= 0 or not self.pipes[i].poll(left):
                    raise TimeoutError(f"worker {i}: no answer to {cmd} within {timeout_s:.0f} s")
                rreq, ok, res = self.pipes[i].recv()
                if rreq == req:
                    break
        if not ok:
            raise RuntimeError(f"worker {i}: {res}")
        return res

    def command(self, cmd: str, args: dict[str, Any]) -> Any:
        if cmd not in COMMANDS:
            raise ValueError(f"unknown command {cmd!r} (known: {', '.join(COMMANDS)})")
        if cmd == "ping":
            return self.ping()
        if cmd == "promote" and "epoch" not in args:
            raise ValueError("promote: 'epoch' is required")
        if cmd == "fence" and "epoch" not in args:
            raise ValueError("fence: 'epoch' is required")
        if cmd in ("add_replica", "remove_replica"):
            parse_addr(str(args.get("addr", "")), f"{cmd}.addr")
        if cmd == "handover":
            for k in ("groups", "to", "dup_to"):
                if k not in args:
                    raise ValueError(f"handover: '{k}' is required")
            parse_addr(str(args["to"]), "handover.to")
            parse_addr(str(args["dup_to"]), "handover.dup_to")
        if cmd in COALESCED:
            return self._coalesced(cmd, args)
        return self._fan_out(cmd, args)

    def _coalesced(self, cmd: str, args: dict[str, Any]) -> Any:
        """Answer concurrent identical read-only queries with one fan-out to the workers.

        Why: pollers (the agent every second, ``deftctl``, the failover orchestrator) each ask for
        ``metrics``/``status``; on a CPU-starved instance a worker may take longer than the poll
        interval to answer, and every poll would otherwise add a handler thread and a queued
        request per worker until the process spends its CPU on threads instead of packets."""
        key = (cmd, json.dumps(args, sort_keys=True))
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
        if not leader:
            return flight.result()
        try:
            flight.set_result(self._fan_out(cmd, args))
        except Exception as exc:
            flight.set_exception(exc)
        finally:
            with self._flights_lock:
                del self._flights[key]
        return flight.result()

    def _fan_out(self, cmd: str, args: dict[str, Any]) -> Any:
        """Send ``cmd`` to every worker in parallel and merge the answers."""
        timeout = 60.0 if cmd in ("handover", "drain") else 30.0
        results: list[Any] = [None] * len(self.pipes)
        errors: list[str] = []

        def ask(i: int) -> None:
            try:
                results[i] = self._ask(i, cmd, args, timeout)
            except Exception as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(self.pipes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("; ".join(errors))
        if cmd == "shutdown":
            self.stop.set()
        return self._merge(cmd, results)

    def ping(self) -> dict[str, Any]:
        """Liveness without the data path: answered by this (lightly loaded) main process, never
        queued behind a worker's packets. The instance is fail-stop on a worker's death (``wait``),
        so an answer means every worker process exists; ``progress_age_ms`` is how long ago the
        slowest worker last went round its loop (an idle worker wakes at least every second)."""
        now = time.monotonic()
        ages = [1e3 * (now - self.progress[i]) for i in range(len(self.procs))]
        return {"instance": self.cfg.name, "pid": os.getpid(),
                "workers_alive": sum(1 for p in self.procs if p.is_alive()),
                "workers": len(self.procs), "progress_age_ms": round(max(ages, default=0.0), 1)}

    def _merge(self, cmd: str, results: list[Any]) -> Any:
        if cmd == "metrics":
            raw = metricsmod.merge(results)
            out = metricsmod.summarize(raw)
            return {"instance": self.cfg.name, **out, "raw": raw["counters"]}
        if cmd == "status":
            first = results[0]
            return {
                "instance": self.cfg.name, "pid": os.getpid(), "role": first["role"],
                "lease": first["lease"], "epoch": first["epoch"], "io": first["io"],
                "fenced": any(r["fenced"] for r in results),
                "flows_owned": sum(r["flows_owned"] for r in results),
                "flows_replica": sum(r["flows_replica"] for r in results),
                "inflight_batches": sum(r["inflight_batches"] for r in results),
                "workers": results,
            }
        if cmd == "export_state":
            return {"flows": [f for r in results for f in r["flows"]],
                    "seqs": [s for r in results for s in r["seqs"]]}
        if cmd == "import_state":
            return {"imported": sum(r["imported"] for r in results)}
        if cmd == "handover":
            return {"groups": sorted(g for r in results for g in r["groups"]),
                    "flows": sum(r["flows"] for r in results)}
        if cmd == "promote":
            return {"role": "primary", "epoch": results[0]["epoch"],
                    "flows": sum(r["flows"] for r in results),
                    "replayed": sum(r["replayed"] for r in results)}
        return results[0] if len(results) == 1 else {"workers": results}

    def wait(self) -> int:
        """Block until shutdown or a worker death; returns the exit code."""
        code = 0
        while not self.stop.wait(0.2):
            dead = [p for p in self.procs if not p.is_alive()]
            if dead:
                log.error("worker %s died (exit %s): stopping the instance (fail-stop)",
                          dead[0].name, dead[0].exitcode)
                code = 1
                break
        self.close()
        return code

    def close(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()
        with contextlib.suppress(FileNotFoundError):
            Path(self.cfg.control_path).unlink()
        for i, p in enumerate(self.procs):
            if p.is_alive():
                with contextlib.suppress(OSError, BrokenPipeError):
                    self.pipes[i].send((-1, "shutdown", {}))
        for p in self.procs:
            p.join(2)
            if p.is_alive():
                p.kill()
                p.join(1)


def wait_for_address(ip: str, timeout_s: float) -> None:
    """Until ``ip`` can be bound (it is configured on an interface here); ``OSError`` naming the
    address after ``timeout_s``. The wildcard address returns at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((ip, 0))
                return
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL or time.monotonic() >= deadline:
                    raise OSError(exc.errno, f"{ip} is not configured on any interface "
                                             f"(waited {timeout_s:.0f} s): {exc.strerror}") from exc
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nf.instance", description="Run one DEFT NF instance.")
    ap.add_argument("--config", required=True, help="instance YAML (see nf.instance_config)")
    ap.add_argument("--log-level", default="INFO")
    ns = ap.parse_args(argv)
    setup_logging(ns.log_level.upper())
    try:
        cfg = load(InstanceConfig, ns.config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    return run(cfg)


def run(cfg: InstanceConfig) -> int:
    inst = Instance(cfg)
    signal.signal(signal.SIGTERM, lambda *_: inst.stop.set())
    signal.signal(signal.SIGINT, lambda *_: inst.stop.set())
    try:
        inst.start()
    except (RuntimeError, OSError) as exc:
        log.error("instance %s failed to start: %s", cfg.name, exc)
        inst.close()
        return 1
    return inst.wait()


if __name__ == "__main__":
    sys.exit(main())


_ = socket  # socket families are used by socketserver subclasses
