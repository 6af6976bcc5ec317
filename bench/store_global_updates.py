"""Global state updates per second through the StateStore (goal: >= 5k/s).

What a "global update" is: one linearizable change of a ``global/<name>`` key, as an NF does it
every GLOBAL_UPDATE_FREQUENCY packets: ``increment`` (one round trip) or a CAS read-modify-write
(``get`` + ``compare_and_set``, how the NAT pool claims a block). Runs ``threads`` concurrent
clients (each its own connection pool user) for ``seconds`` and prints updates/s and the per-update
latency p50/p99 (ms). By default it starts its own redis-server on 127.0.0.1 (and, with
``--sentinel``, a primary + replica + 3 sentinels with ``WAIT 1``); ``--config`` measures an
existing store from a statestore.yml instead.

    python bench/store_global_updates.py --threads 1 --threads 4
    python bench/store_global_updates.py --sentinel
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from nf.store import StateStore, StoreConfig, load_config, open_store
from nf.store import keys as keyspace
from nf.store.localredis import sentinel_set, single

app = typer.Typer(add_completion=False)


def _run(store_cfg: StoreConfig, mode: str, threads: int, seconds: float) -> tuple[float, float, float]:
    key = keyspace.global_key("bench", mode)
    stores: list[StateStore] = [open_store(store_cfg) for _ in range(threads)]
    lat: list[list[float]] = [[] for _ in range(threads)]
    counts = [0] * threads
    stop = threading.Event()
    start = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        s = stores[i]
        out = lat[i]
        start.wait()
        while not stop.is_set():
            t0 = time.perf_counter()
            if mode == "incr":
                s.increment(key, 1)
            else:
                while True:
                    cur = s.get(key)
                    if s.compare_and_set(key, cur, str(int(cur or b"0") + 1).encode()):
                        break
            out.append(time.perf_counter() - t0)
            counts[i] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    total = sum(counts)
    final = int(stores[0].get(key) or b"0")
    for s in stores:
        s.close()
    if final < total:
        raise RuntimeError(f"lost updates: counter {final} < {total} acknowledged updates")
    all_lat = sorted(x for xs in lat for x in xs)
    p50 = statistics.median(all_lat) * 1000
    p99 = all_lat[int(len(all_lat) * 0.99) - 1] * 1000
    return total / elapsed, p50, p99


@contextlib.contextmanager
def _store_cfg(config: Path | None, sentinel: bool) -> Iterator[tuple[StoreConfig, str]]:
    if config is not None:
        yield load_config(config), str(config)
        return
    with tempfile.TemporaryDirectory(prefix="nc-bench-") as wd:
        if sentinel:
            with sentinel_set(Path(wd)) as ss:
                yield ss.config(wait_replicas=1), "local redis primary+replica+3 sentinels, WAIT 1"
        else:
            with single(Path(wd)) as (_srv, cfg):
                yield cfg, "local standalone redis-server"


@app.command()
def main(
    threads: Annotated[list[int], typer.Option(help="Concurrent clients (repeatable).")] = [1, 4],  # noqa: B006
    seconds: Annotated[float, typer.Option(help="Duration of each run (s).")] = 3.0,
    sentinel: Annotated[bool, typer.Option(help="Through Sentinel with WAIT 1 (durable writes).")] = False,
    config: Annotated[Path | None, typer.Option(help="statestore.yml of an existing store.")] = None,
) -> None:
    with _store_cfg(config, sentinel) as (cfg, what):
        print(f"# store: {cfg.backend} ({what})")
        print(f"{'mode':<6} {'threads':>7} {'updates/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for mode in ("incr", "cas"):
            for n in threads:
                rate, p50, p99 = _run(cfg, mode, n, seconds)
                print(f"{mode:<6} {n:>7} {rate:>10.0f} {p50:>8.3f} {p99:>8.3f}")


if __name__ == "__main__":
    app()
