"""RFC 2544-style throughput: the highest offered rate a path carries with (almost) no loss.

Why: above its capacity a path loses packets, and the NF path also queues (input buffer, the
in-order gate), so a blast measures overload behaviour and the generator's own cost as much as
capacity. The capacity is the highest rate at which a run delivers at least ``1 - max_loss`` of
what was sent. Shared by ``bench/nf_bench.py --no-loss`` (direct veth) and
``bench/nf_overlay.py --no-loss`` (the lab overlay).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def no_loss_rate(trial: Callable[[int], tuple[float, dict[str, Any]]], hi: int, max_loss: float,
                 steps: int) -> dict[str, Any]:
    """Bisect between 0 and ``hi`` (pps) in ``steps`` runs of ``trial(rate)``, which offers
    ``rate`` and returns ``(delivered fraction, extra fields for the report)``.

    A run that fails because of a scheduling hiccup lowers the result, never raises it. Returns
    ``no_loss_pps`` (0 when even the lowest tried rate lost more than ``max_loss``), the runs, and
    ``at_ceiling``: every run passed, so the path may carry more than ``hi`` allowed to find."""
    lo, top, runs = 0, hi, []
    for _ in range(steps):
        mid = (lo + top) // 2
        delivered, extra = trial(mid)
        runs.append({"rate": mid, "delivered": round(delivered, 5), **extra})
        if delivered >= 1.0 - max_loss:
            lo = mid
        else:
            top = mid
    return {"no_loss_pps": lo, "runs": runs, "at_ceiling": top == hi}
