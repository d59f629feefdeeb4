"""cgroup memory limits cannot be applied by this version: starting is refused in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

import quebec


@pytest.mark.parametrize("variable", ["QUEBEC_CGROUP", "QUEBEC_CGROUP_ROOT", "QUEBEC_WORKERS_POOL_MEMORY_MAX"])
def test_a_cgroup_limit_refuses_to_start_rather_than_run_unlimited(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "1G")
    qc = quebec.Quebec(f"sqlite:///{tmp_path}/q.db?mode=rwc")
    try:
        for start in (qc.start, qc.run):
            with pytest.raises(quebec.ConfigError, match=rf"^{variable}=1G asks for cgroup v2 memory limits"):
                start(spawn=["worker"])
        assert qc.db.read(lambda tx: tx.conn.execute(tx.tables.processes.select()).all()) == []
    finally:
        qc.close()
