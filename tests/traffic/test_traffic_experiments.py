"""Experiment runner: every experiment's smoke sweep produces a CSV, PNG plots and a report from
real measurements on the NF chain; bad arguments give a clear error."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from traffic.experiments.catalog import EXPERIMENTS
from traffic.experiments.cli import app
from traffic.experiments.runner import points

runner = CliRunner()


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_smoke_run_writes_csv_plots_report(name: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces)")
    out = tmp_path / name
    r = runner.invoke(app, ["run", name, "--smoke", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    exp = EXPERIMENTS[name]
    assert len(rows) == len(points(exp, True, {}))
    for row in rows:
        assert row["error"] == "", row["error"]
        assert int(row["sent"]) > 0 and int(row["delivered"]) > 0
        assert int(row["delivered"]) + int(row["loss"]) == int(row["sent"])
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == len(exp.metrics) and all(p.stat().st_size > 1000 for p in pngs)
    md = (out / "report.md").read_text()
    assert exp.title in md and all(p.name in md for p in pngs)


def test_list_shows_every_experiment() -> None:
    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0
    assert all(name in r.output for name in EXPERIMENTS)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "no_such"], "no experiment 'no_such'; available: batch_rate"),
        (["run", "batch_rate", "--set", "bogus=1"], "expected KEY=VALUE with KEY one of"),
        (["run", "batch_rate", "--set", "rate_pps=fast"], "'fast' is not a float"),
        (["run", "batch_rate", "--set", "nf_count=20"], "nf_count must be 1..8"),
        (["run", "batch_rate", "--trials", "-1"], "--trials -1 must be >= 0"),
    ],
)
def test_bad_arguments_name_the_problem(args: list[str], needle: str) -> None:
    if os.geteuid() != 0 and "no_such" not in args[1] and "--trials" not in args:
        pytest.skip("the root check comes first without root")
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert needle in r.output


def test_refuses_non_empty_output_dir(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the root check comes first without root")
    (tmp_path / "old.csv").write_text("x")
    r = runner.invoke(app, ["run", "batch_rate", "--smoke", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "is not empty" in r.output
