"""The calibration file loads with provenance, and bench results update it (errors name the key)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deftctl.config import ConfigError
from placement.calibration import CALIBRATION_FILE, apply_bench, load_calibration, save_calibration


def test_every_constant_has_unit_and_source() -> None:
    cal = load_calibration()
    for name in cal.__dataclass_fields__:
        c = getattr(cal, name)
        assert c.unit and c.source, name


def test_bench_file_updates_values_and_provenance(tmp_path: Path) -> None:
    path = tmp_path / "calibration.yml"
    shutil.copy(CALIBRATION_FILE, path)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"migration_fixed_ms": {"value": 12.5, "source": "bench/nf_migration.py"},
                                 "failover_ms": 300}))
    cal, changed = apply_bench(load_calibration(path), bench)
    assert changed == ["failover_ms", "migration_fixed_ms"]
    save_calibration(cal, path)
    again = load_calibration(path)
    assert again.migration_fixed_ms.value == 12.5 and not again.migration_fixed_ms.remeasure
    assert again.migration_fixed_ms.source == "bench/nf_migration.py"
    assert again.failover_ms.value == 300.0


def test_unknown_bench_key_is_named(tmp_path: Path) -> None:
    bench = tmp_path / "bench.yml"
    bench.write_text("migration_downtime_typo: 3\n")
    with pytest.raises(ConfigError, match="migration_downtime_typo: unknown calibration key"):
        apply_bench(load_calibration(), bench)
