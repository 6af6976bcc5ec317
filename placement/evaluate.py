"""Evaluation: every policy x scenario x seed on the simulator -> composite cost with each term shown.

All seeds of one (policy, scenario) pair run as one simulator batch, so every policy sees exactly
the same worlds. Outputs: a list of :class:`Result` rows (``--json``), a rich table, a markdown
report and matplotlib PNGs (stacked cost terms per scenario and policy). The summary compares RL
to the best heuristic per scenario and to the ILP where the ILP is run (small instances only:
``n_hosts * n_vnfs <= ilp_max_binaries``). Seeds default to 0..N-1, which training never uses.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from placement.calibration import Calibration, load_calibration
from placement.observation import pair_mask
from placement.policies import BASELINES, make_policy
from placement.policies.lookahead import DEFAULT_LOOKAHEAD, LookaheadConfig
from placement.scenario import Scenario
from placement.simulator import COST_TERMS, ClusterSim

log = logging.getLogger(__name__)
HEURISTICS = tuple(p for p in BASELINES if p not in ("static", "random"))


@dataclass(frozen=True)
class Result:
    """Outcome of one policy on one scenario and seed (costs in cost units, see calibration.yml)."""

    scenario: str
    policy: str
    seed: int
    cost: float
    sla_s: float
    drops_kpkt: float
    overload_s: float
    migration_mb: float
    migrations: int
    migration_downtime_s: float
    failovers: int
    invalid_actions: int
    drop_rate: float  # dropped / offered packets
    decision_ms: float  # mean wall time of one decide() call for the whole seed batch / batch size


def run_policy(
    policy_name: str,
    sc: Scenario,
    seeds: list[int],
    cal: Calibration,
    model: Path | None = None,
    lookahead: LookaheadConfig | None = DEFAULT_LOOKAHEAD,
) -> list[Result]:
    """Run one policy on one scenario for all ``seeds`` (one batch); ``lookahead`` is the RL
    policy's decision-time search (None = off)."""
    pol = make_policy(policy_name, model=model, seed=seeds[0] if seeds else 0, lookahead=lookahead)
    sim = ClusterSim(sc, seeds, cal)
    pol.reset(sim.B)
    obs = sim.observe()
    spent = 0.0
    while not sim.done:
        t0 = time.perf_counter()
        moves = pol.decide(obs, pair_mask(obs))
        spent += time.perf_counter() - t0
        sim.step(moves)
        obs = sim.observe()
    m = sim.metrics
    terms = m.cost_terms(cal)
    total = m.cost(cal)
    dec_ms = 1e3 * spent / sc.steps / max(sim.B, 1)
    return [
        Result(
            scenario=sc.name,
            policy=policy_name,
            seed=s,
            cost=float(total[i]),
            **{k: float(terms[k][i]) for k in COST_TERMS},
            migrations=int(m.migrations[i]),
            migration_downtime_s=float(m.migration_downtime_s[i]),
            failovers=int(m.failovers[i]),
            invalid_actions=int(m.invalid_actions[i]),
            drop_rate=float(m.drops_pkt[i] / max(m.offered_pkt[i], 1.0)),
            decision_ms=dec_ms,
        )
        for i, s in enumerate(seeds)
    ]


def evaluate(
    scenarios: list[Scenario],
    policies: list[str],
    seeds: list[int],
    model: Path | None = None,
    cal: Calibration | None = None,
    ilp_max_binaries: int = 200,
    lookahead: LookaheadConfig | None = DEFAULT_LOOKAHEAD,
) -> list[Result]:
    """Every policy x scenario x seed (ILP skipped, with a log line, on instances too large)."""
    cal = cal or load_calibration()
    out: list[Result] = []
    for sc in scenarios:
        for p in policies:
            if p == "ilp" and sc.n_hosts * sc.n_vnfs > ilp_max_binaries:
                log.info(
                    "ilp skipped on %s: %d binaries > %d", sc.name, sc.n_hosts * sc.n_vnfs, ilp_max_binaries
                )
                continue
            t0 = time.time()
            out.extend(run_policy(p, sc, seeds, cal, model, lookahead))
            log.info("%s / %s: %d seeds in %.1f s", sc.name, p, len(seeds), time.time() - t0)
    return out


def aggregate(results: list[Result]) -> dict[tuple[str, str], dict[str, float]]:
    """Mean of every numeric field per (scenario, policy), plus ``cost_std``."""
    groups: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for r in results:
        groups[(r.scenario, r.policy)].append(r)
    agg: dict[tuple[str, str], dict[str, float]] = {}
    for key, rows in groups.items():
        d = {
            k: float(np.mean([getattr(r, k) for r in rows]))
            for k in asdict(rows[0])
            if k not in ("scenario", "policy", "seed")
        }
        d["cost_std"] = float(np.std([r.cost for r in rows]))
        d["n"] = float(len(rows))
        agg[key] = d
    return agg


def summary(results: list[Result]) -> dict[str, dict[str, float | str]]:
    """Per scenario: best heuristic, its cost, RL cost, RL/best ratio, ILP cost and RL/ILP ratio."""
    agg = aggregate(results)
    out: dict[str, dict[str, float | str]] = {}
    for sc in dict.fromkeys(r.scenario for r in results):
        heur = {p: agg[(sc, p)]["cost"] for p in HEURISTICS if (sc, p) in agg}
        row: dict[str, float | str] = {}
        if heur:
            best = min(heur, key=lambda p: heur[p])
            row.update(best_heuristic=best, best_heuristic_cost=heur[best])
        if (sc, "rl") in agg:
            row["rl_cost"] = agg[(sc, "rl")]["cost"]
            if heur:
                row["rl_vs_best"] = agg[(sc, "rl")]["cost"] / max(heur[best], 1e-9)
        if (sc, "ilp") in agg:
            row["ilp_cost"] = agg[(sc, "ilp")]["cost"]
            if (sc, "rl") in agg:
                row["rl_vs_ilp"] = agg[(sc, "rl")]["cost"] / max(agg[(sc, "ilp")]["cost"], 1e-9)
        if (sc, "static") in agg:
            row["static_cost"] = agg[(sc, "static")]["cost"]
        out[sc] = row
    return out


def markdown_report(results: list[Result], plots: list[Path]) -> str:
    """The markdown report: per-scenario table with every cost term, then the RL summary."""
    agg = aggregate(results)
    seeds = sorted({r.seed for r in results})
    lines = [
        "# Placement evaluation",
        "",
        f"Seeds: {seeds[0]}..{seeds[-1]} ({len(seeds)}; held out from training). "
        "Cost = SLA-violation VNF-seconds + kpkts dropped + overloaded host-seconds + 0.1/MB migrated "
        "(weights and calibration provenance: placement/calibration.yml).",
        "",
        "| scenario | policy | cost (mean ± sd) | SLA s | drops kpkt | overload s | migr. MB cost "
        "| #migr. | drop rate | decide ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (sc, p), d in agg.items():
        lines.append(
            f"| {sc} | {p} | {d['cost']:.1f} ± {d['cost_std']:.1f} | {d['sla_s']:.1f} | "
            f"{d['drops_kpkt']:.1f} | {d['overload_s']:.1f} | {d['migration_mb']:.1f} | "
            f"{d['migrations']:.1f} | {d['drop_rate']:.2%} | "
            f"{d['decision_ms']:.3f} |"
        )
    summ = summary(results)
    if any("rl_cost" in r for r in summ.values()):
        lines += [
            "",
            "## RL vs best heuristic and ILP",
            "",
            "| scenario | best heuristic | its cost | RL cost | RL / best | ILP cost | RL / ILP |",
            "|---|---|---|---|---|---|---|",
        ]
        for sc, r in summ.items():

            def f(k: str, r: dict[str, float | str] = r) -> str:
                v = r.get(k)
                return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))

            lines.append(
                f"| {sc} | {f('best_heuristic')} | {f('best_heuristic_cost')} | {f('rl_cost')} | "
                f"{f('rl_vs_best')} | {f('ilp_cost')} | {f('rl_vs_ilp')} |"
            )
        ratios = [float(r["rl_vs_best"]) for r in summ.values() if "rl_vs_best" in r]
        if ratios:
            gm = float(np.exp(np.mean(np.log(np.maximum(ratios, 1e-9)))))
            lines += ["", f"Geometric mean RL / best heuristic over {len(ratios)} scenarios: **{gm:.2f}**"]
    lines += ["", *[f"![{p.stem}]({p.name})" for p in plots]]
    return "\n".join(lines) + "\n"


def plot(results: list[Result], out_dir: Path) -> list[Path]:
    """One PNG per scenario: stacked cost terms per policy. Returns the files written."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    agg = aggregate(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for sc in dict.fromkeys(r.scenario for r in results):
        pols = [p for (s, p) in agg if s == sc]
        fig, ax = plt.subplots(figsize=(1.2 * len(pols) + 2, 3.5))
        bottom = np.zeros(len(pols))
        for term in COST_TERMS:
            vals = np.array([agg[(sc, p)][term] for p in pols])
            ax.bar(pols, vals, bottom=bottom, label=term)
            bottom += vals
        ax.set_title(f"{sc}: composite cost (lower is better)")
        ax.set_ylabel("cost units")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out_dir / f"cost-{sc}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
    return paths
