"""Bounded on-disk buffer of line-protocol batches for when InfluxDB is unreachable.

Why segments on disk: an agent that buffers in memory loses everything when it restarts, and the
placement service, dashboards and experiments all want the gap back-filled once InfluxDB returns.
Each failed batch becomes one segment file ``<time_ns>-<pid>-<seq>-<points>.lp`` (written to a temp name and
renamed, so a crash never leaves half a segment). Segments are replayed oldest first, and a segment
is deleted only after InfluxDB acknowledged it: nothing within the bound is lost. (A segment
half-written before a failure is replayed whole; InfluxDB keeps one value per series and
timestamp, so the replay never duplicates points.)

Bound: when adding a segment would exceed ``max_bytes``, the OLDEST segments are discarded and
their points counted in ``dropped_total`` (persisted in the spool dir, reported by the agent as
``agent.spool_dropped_total``). Several processes may share one spool (the daemon and the
``deftctl agent`` commands that emit events): every operation holds an ``flock`` on ``.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SUFFIX = ".lp"
_DROPPED_FILE = "dropped_total"


@dataclass(frozen=True)
class SpoolStats:
    """Snapshot of the spool: segments, points and bytes buffered, points dropped (cumulative)."""

    segments: int
    points: int
    bytes: int
    dropped_total: int


class Spool:
    """A directory of line-protocol segments bounded to ``max_bytes`` (see module doc)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self._seq = 0
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"spool dir {self.dir}: cannot create: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.dir / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _segments(self) -> list[Path]:
        # Names start with a zero-padded time_ns, so lexical order is age order.
        return sorted(p for p in self.dir.iterdir() if p.suffix == _SUFFIX)

    def _read_dropped(self) -> int:
        try:
            return int((self.dir / _DROPPED_FILE).read_text() or 0)
        except (OSError, ValueError):
            return 0

    def _add_dropped(self, n: int) -> None:
        tmp = self.dir / f".{_DROPPED_FILE}.{os.getpid()}"
        tmp.write_text(str(self._read_dropped() + n))
        tmp.replace(self.dir / _DROPPED_FILE)

    def append(self, lines: list[str]) -> int:
        """Buffer ``lines`` as one segment; returns how many points were dropped to make room."""
        if not lines:
            return 0
        data = ("\n".join(lines) + "\n").encode()
        with self._locked():
            dropped = 0
            segs = self._segments()
            total = sum(_size(p) for p in segs)
            if len(data) > self.max_bytes:
                # One batch larger than the whole spool: keep its newest lines that fit.
                keep: list[str] = []
                size = 0
                for line in reversed(lines):
                    size += len(line) + 1
                    if size > self.max_bytes:
                        break
                    keep.append(line)
                dropped += len(lines) - len(keep)
                lines = list(reversed(keep))
                data = ("\n".join(lines) + "\n").encode() if lines else b""
            while segs and total + len(data) > self.max_bytes:
                old = segs.pop(0)
                total -= _size(old)
                dropped += _count_lines(old)
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
            if data:
                self._seq += 1
                name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}-{len(lines)}{_SUFFIX}"
                tmp = self.dir / f".{name}.tmp"
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                tmp.replace(self.dir / name)
            if dropped:
                self._add_dropped(dropped)
                log.warning("spool %s full (%d bytes): dropped %d oldest points", self.dir, self.max_bytes,
                            dropped)
            return dropped

    def drain(self, write: Callable[[list[str]], None], max_points: int, limit_points: int = 0) -> int:
        """Replay segments oldest first through ``write`` (batches of ``max_points``), deleting each
        after success; stops at the first failure (the exception propagates) or once
        ``limit_points`` (> 0) were written. Returns points written."""
        written = 0
        while not limit_points or written < limit_points:
            with self._locked():
                segs = self._segments()
                if not segs:
                    return written
                seg = segs[0]
                try:
                    lines = [ln for ln in seg.read_text().splitlines() if ln]
                except FileNotFoundError:
                    continue
                for i in range(0, len(lines), max_points):
                    write(lines[i : i + max_points])
                with contextlib.suppress(FileNotFoundError):
                    seg.unlink()
                written += len(lines)
        return written

    def stats(self) -> SpoolStats:
        with self._locked():
            segs = self._segments()
            return SpoolStats(
                segments=len(segs),
                points=sum(_count_lines(p) for p in segs),
                bytes=sum(_size(p) for p in segs),
                dropped_total=self._read_dropped(),
            )

    def is_empty(self) -> bool:
        return not any(p.suffix == _SUFFIX for p in self.dir.iterdir())


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


def _count_lines(p: Path) -> int:
    # The point count is the last dash-separated part of the name (no need to read the file).
    with contextlib.suppress(ValueError):
        return int(p.stem.rsplit("-", 1)[1])
    try:
        with open(p, "rb") as fh:
            return sum(1 for ln in fh if ln.strip())
    except FileNotFoundError:
        return 0
