"""Periodic per-flow checkpoints in the state store, so any host can rebuild an instance.

Why: primary/secondary replication survives one failure. If both members of a pair die (a double
failure, or a whole-rack outage), the flows' state would be gone; a checkpoint in the replicated
store bounds what is lost to the checkpoint interval. Checkpoints are *not* on the packet path: a
:class:`Checkpointer` thread (run by the host agent next to each primary, or by the FDU) asks the
instance for its state over the control API (``export_state``) every ``interval_ms`` and writes
the flows that changed since the last round to ``checkpoint/<group id>/<flow>``
(:func:`nf.store.keys.checkpoint`) in one batched write; flows that ended are deleted.

``<group id>`` is the instance *group* (its lease name), not the instance name, so a replacement
instance — which has a new name — finds the checkpoints of the group it takes over:
:func:`rebuild` reads them and installs them with ``import_state`` as owned flows.

Value of one flow (JSON, bytes): ``{"g": flow group, "s": state hex (the NF type's dump),
"e": stamper epoch, "n": next expected sequence}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from nf.control import ControlClient, ControlError
from nf.store import keys as keyspace
from nf.store.base import StateStore, StoreError

log = logging.getLogger(__name__)


def records_from_export(export: dict[str, Any]) -> dict[str, bytes]:
    """``export_state`` answer -> ``{flow id: checkpoint value}``."""
    seqs = {s["key"]: s for s in export.get("seqs", [])}
    out: dict[str, bytes] = {}
    for f in export.get("flows", []):
        s = seqs.get(f["key"], {})
        rec = {"g": int(f["group"]), "s": f["state"], "e": int(s.get("epoch", 0)), "n": int(s.get("next", 0))}
        out[f["key"]] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
    return out


def export_from_records(records: dict[str, bytes]) -> dict[str, Any]:
    """Inverse of :func:`records_from_export`: an ``import_state`` argument."""
    flows, seqs = [], []
    for key, raw in records.items():
        rec = json.loads(raw)
        flows.append({"key": key, "group": rec["g"], "state": rec["s"]})
        seqs.append({"key": key, "group": rec["g"], "epoch": rec["e"], "next": rec["n"]})
    return {"flows": flows, "seqs": seqs}


def write_checkpoint(
    store: StateStore, group_id: str, export: dict[str, Any], previous: dict[str, bytes] | None = None
) -> tuple[dict[str, bytes], int, int]:
    """Write the flows of ``export`` that differ from ``previous``; delete flows gone since.

    Returns ``(current records, flows written, flows deleted)``; pass the records back as
    ``previous`` next round.
    """
    cur = records_from_export(export)
    if previous is None:
        stored = store.scan(keyspace.checkpoint_prefix(group_id))
        previous = {keyspace.parse_checkpoint(k)[1]: v for k, v in stored.items()}
    prev = previous
    changed = {keyspace.checkpoint(group_id, k): v for k, v in cur.items() if prev.get(k) != v}
    gone = [keyspace.checkpoint(group_id, k) for k in prev if k not in cur]
    store.put_many(changed)
    if gone:
        store.delete_many(gone)
    return cur, len(changed), len(gone)


def read_checkpoint(store: StateStore, group_id: str) -> dict[str, Any]:
    """The checkpointed flows of ``group_id`` as an ``import_state`` argument."""
    raw = store.scan(keyspace.checkpoint_prefix(group_id))
    return export_from_records({keyspace.parse_checkpoint(k)[1]: v for k, v in raw.items()})


def rebuild(store: StateStore, group_id: str, control: str, timeout_s: float = 30.0) -> int:
    """Install the checkpoints of ``group_id`` into the instance at ``control``; returns flows installed."""
    data = read_checkpoint(store, group_id)
    if not data["flows"]:
        return 0
    with ControlClient(control, timeout_s=timeout_s) as cc:
        res = cc.import_state(data)
    n = int(res.get("imported", 0)) if isinstance(res, dict) else 0
    log.info("rebuilt %d flow(s) of %s from checkpoints into %s", n, group_id, control)
    return n


def clear(store: StateStore, group_id: str) -> int:
    """Delete every checkpoint of ``group_id`` (the group was retired)."""
    return store.delete_many(store.scan(keyspace.checkpoint_prefix(group_id)))


class Checkpointer:
    """Checkpoints one instance every ``interval_ms`` (daemon thread); errors are logged, not fatal."""

    def __init__(self, store: StateStore, group_id: str, control: str, interval_ms: float = 1000.0) -> None:
        self.store = store
        self.group_id = group_id
        self.control = control
        self.interval_s = interval_ms / 1000.0
        self._prev: dict[str, bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoint:{group_id}", daemon=True)
        self.rounds = 0
        self.written = 0
        self.last_ms = 0.0

    def once(self) -> tuple[int, int]:
        """One checkpoint round now; returns (flows written, flows deleted)."""
        t0 = time.perf_counter()
        with ControlClient(self.control, timeout_s=10.0) as cc:
            export = cc.export_state("all")
        self._prev, n_w, n_d = write_checkpoint(self.store, self.group_id, export, self._prev)
        self.rounds += 1
        self.written += n_w
        self.last_ms = (time.perf_counter() - t0) * 1000
        return n_w, n_d

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.once()
            except (ControlError, StoreError) as exc:
                log.warning("checkpoint of %s via %s failed: %s", self.group_id, self.control, exc)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def __enter__(self) -> Checkpointer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
