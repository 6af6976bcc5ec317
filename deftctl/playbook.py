"""Run ``ansible-playbook`` from the repository root and read its PLAY RECAP.

Why a module: the operator (``deftctl``), the tests and the benchmarks all provision hosts the same
way - ``ansible-playbook -i <inventory> site.yml`` with the repo's ``ansible.cfg`` - and all of them
need the same facts afterwards: did it succeed, how long did it take (wall time, seconds), and what
did each host report (ok / changed / unreachable / failed task counts). A second run of ``site.yml``
must report ``changed=0`` on every host; :attr:`PlaybookRun.changed_hosts` is how that is checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

_RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class HostRecap:
    """One host's PLAY RECAP counters (numbers of tasks)."""

    ok: int
    changed: int
    unreachable: int
    failed: int


def parse_recap(output: str) -> dict[str, HostRecap]:
    """Host -> counters from ``ansible-playbook`` output (a later recap line for a host wins)."""
    return {
        m["host"]: HostRecap(int(m["ok"]), int(m["changed"]), int(m["unreachable"]), int(m["failed"]))
        for m in _RECAP.finditer(output)
    }


@dataclass(frozen=True)
class PlaybookRun:
    """Result of one ``ansible-playbook`` invocation."""

    argv: tuple[str, ...]
    returncode: int
    output: str  # stdout followed by stderr
    wall_s: float  # wall-clock duration, seconds
    recap: dict[str, HostRecap] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Exit status 0 and no host failed or unreachable."""
        return self.returncode == 0 and all(r.failed == 0 and r.unreachable == 0 for r in self.recap.values())

    @property
    def changed_hosts(self) -> dict[str, int]:
        """Hosts whose recap shows changed > 0 (empty for an idempotent re-run)."""
        return {h: r.changed for h, r in self.recap.items() if r.changed}

    @property
    def changed_lines(self) -> list[str]:
        """The ``changed: [host]`` result lines, to say *which* tasks changed."""
        return [line for line in self.output.splitlines() if line.startswith("changed:")]

    def tail(self, lines: int = 60) -> str:
        """Last ``lines`` lines of the output (for error messages)."""
        return "\n".join(self.output.splitlines()[-lines:])


def run_playbook(
    inventory: Path | str, playbook: str = "site.yml", *args: str, timeout_s: float = 3600.0
) -> PlaybookRun:
    """``ansible-playbook -i inventory playbook *args`` in the repo root with the repo's ansible.cfg."""
    argv = ("ansible-playbook", "-i", str(inventory), playbook, *args)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["ANSIBLE_CONFIG"] = str(REPO_ROOT / "ansible.cfg")
    t0 = time.monotonic()
    cp = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    out = cp.stdout + cp.stderr
    return PlaybookRun(argv, cp.returncode, out, time.monotonic() - t0, parse_recap(out))
