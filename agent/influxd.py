"""A private InfluxDB 1.x server (Debian's ``influxd`` 1.6.7) for tests, benchmarks and demos.

Why here: the agent tests, the dashboards tests, the placement service's tests and
``bench/agent_cpu.py`` all need a real InfluxDB on a free port with its data in a throw-away
directory, and they must be able to stop it and start it again on the SAME port and data (the
outage test). Production hosts get InfluxDB from the ``influxdb`` Ansible role instead.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType

from agent.config import TelemetryConfig

log = logging.getLogger(__name__)

_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"

[coordinator]
  log-queries-after = "0s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{bind_host}:{http_port}"
  auth-enabled = false
  log-enabled = false

[continuous_queries]
  enabled = false
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class InfluxdServer:
    """``influxd`` with config, data and log under ``root``, HTTP on ``bind_host:http_port``
    (127.0.0.1 by default; a lab's management bridge address to serve lab hosts).

    ``start()``/``stop()`` may be called repeatedly (same port, same data) to simulate outages.
    """

    def __init__(self, root: Path, http_port: int | None = None, database: str = "deft",
                 bind_host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.bind_host = bind_host
        self.http_port = http_port or free_port()
        self.rpc_port = free_port()
        self.database = database
        self.proc: subprocess.Popen[bytes] | None = None
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.root / "influxdb.conf"
        self.conf_path.write_text(
            _CONF.format(root=self.root, http_port=self.http_port, rpc_port=self.rpc_port,
                         bind_host=self.bind_host))

    @property
    def url(self) -> str:
        return f"http://{self.bind_host}:{self.http_port}"

    def telemetry_config(self) -> TelemetryConfig:
        """The ``/etc/deft/telemetry.yml`` equivalent for this server."""
        return TelemetryConfig(url=self.url, flavor="v1", database=self.database, timeout_s=2.0)

    def start(self, timeout_s: float = 30.0) -> None:
        """Start influxd and wait until ``/ping`` answers and the database exists."""
        if self.proc and self.proc.poll() is None:
            return
        exe = shutil.which("influxd")
        if exe is None:
            raise RuntimeError("influxd not installed (apt-get install influxdb)")
        logf = open(self.root / "influxd.log", "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen([exe, "-config", str(self.conf_path)], stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log_path = self.root / "influxd.log"
                raise RuntimeError(f"influxd exited ({self.proc.returncode}); see {log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"influxd did not answer on {self.url} within {timeout_s:.0f} s")
        self.create_database(self.database)

    def create_database(self, name: str, drop_first: bool = False) -> None:
        """``CREATE DATABASE`` (optionally dropping it first, for a clean test database).

        The response body is read to its end and checked: influxd 1.x sends the 200 header
        before it runs the statement and aborts the statement when the client hangs up, so a
        caller that closed the connection on the header could find the database missing later
        (seen as "database not found" on the first write).
        """
        stmts = ([f'DROP DATABASE "{name}"'] if drop_first else []) + [f'CREATE DATABASE "{name}"']
        for q in stmts:
            data = urllib.parse.urlencode({"q": q}).encode()
            req = urllib.request.Request(f"{self.url}/query", data=data)
            with urllib.request.urlopen(req, timeout=10) as r:
                body = json.loads(r.read() or b"{}")
            errors = [res["error"] for res in body.get("results", []) if "error" in res]
            if "error" in body or errors:
                raise RuntimeError(f"influxd {self.url}: {q}: {body.get('error') or errors[0]}")

    def stop(self) -> None:
        """SIGTERM influxd (SIGKILL after 10 s) and wait; data stays for the next start()."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> InfluxdServer:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
