"""``deftctl placement shift``'s pure parts: the traffic profile it sends, how it turns telemetry rows
into per-second series and drop counts, and the report it writes (the lab run itself is in
tests/integration/test_shift_live.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placement.shift import PolicyRun, ShiftConfig, _dropped, _series, profile_doc, write_report
from traffic.profile import profile_from_dict


def test_profile_is_a_valid_load_shift() -> None:
    cfg = ShiftConfig(inventory=Path("inventory/lab"), base_pps=1000, peak_pps=3000, shift_at_s=10,
                      rise_s=5, duration_s=40)  # fmt: skip
    prof = profile_from_dict(profile_doc(cfg))
    assert prof.pattern.kind == "flash_crowd" and prof.duration_s == 40
    assert (prof.pattern.rate_pps, prof.pattern.peak_pps, prof.pattern.at_s) == (1000, 3000, 10)
    # held at the peak to the end: no decay inside the run
    assert prof.pattern.at_s + prof.pattern.rise_s + prof.pattern.hold_s == pytest.approx(40)
    assert prof.method == "udp" and sum(f.count for f in prof.flows) == cfg.flows


@pytest.mark.parametrize(
    ("kw", "what"),
    [({"base_pps": 0}, "rates"), ({"peak_pps": 10}, "rates"), ({"shift_at_s": 90}, "times"),
     ({"small_cpus": 0.001}, "small_cpus"), ({"policies": ()}, "policies")],
)  # fmt: skip
def test_bad_config_is_named(kw: dict[str, object], what: str) -> None:
    with pytest.raises(ValueError, match=what):
        ShiftConfig(inventory=Path("x"), **kw)  # type: ignore[arg-type]


def test_series_sums_instances_per_second_and_drops_use_counters() -> None:
    t0 = 1_000_000  # ms, as `agent query --json` returns times
    rows = [
        {"time": t0 + 100, "instance": "a", "processed_pps": 900.0,
         "drops_pps": 0.0, "input_dropped": 10},
        {"time": t0 + 1100, "instance": "a", "processed_pps": 1000.0,
         "drops_pps": 50.0, "input_dropped": 60},
        {"time": t0 + 1200, "instance": "b", "processed_pps": 20.0,
         "drops_pps": None, "input_dropped": 0},
        {"time": t0 + 2100, "instance": "a", "processed_pps": 1000.0,
         "drops_pps": 40.0, "input_dropped": 100},
    ]
    s = _series(rows, t0)
    assert s["t_s"] == [0.0, 1.0, 2.0]
    assert s["processed_pps"] == [900.0, 1020.0, 1000.0] and s["drops_pps"] == [0.0, 50.0, 40.0]
    assert _dropped(rows) == 90  # a: 100 - 10; b: 0


def test_report_compares_with_static(tmp_path: Path) -> None:
    cfg = ShiftConfig(inventory=Path("inventory/lab"), policies=("static", "rl"), out=tmp_path)
    series = {"t_s": [0.0, 1.0], "processed_pps": [1500.0, 4000.0], "drops_pps": [0.0, 2000.0]}
    runs = [
        PolicyRun("static", sent=1000, delivered=800, lost=200, loss_pct=20.0, series=series),
        PolicyRun("rl", sent=1000, delivered=950, lost=50, loss_pct=5.0, series=series,
                  migrations=[{"t_s": 24.0, "instance": "shift-p1", "to": "nfv3"}]),
        PolicyRun("least-loaded", error="deploy failed"),
        PolicyRun("random", sent=1000, delivered=700, lost=300, loss_pct=30.0, series=series),
    ]  # fmt: skip
    report = write_report(cfg, runs)
    text = report.read_text()
    assert "| static | 1000 | 800 | 200 | 20.00 |" in text
    assert "24 s -> nfv3" in text and "rl: 75 % fewer packets lost than DEFT static" in text
    assert "least-loaded | error: deploy failed" in text
    assert "random: 50 % more packets lost than DEFT static" in text
    assert (tmp_path / "shift.png").stat().st_size > 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [r["policy"] for r in doc["runs"]] == ["static", "rl", "least-loaded", "random"]
