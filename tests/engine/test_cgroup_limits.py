"""queue.yml's memory_high, memory_swap_max, memory_oom_group (cgroup v2 files of each child's
leaf) and memory_recycle_at (a per-entry recycle threshold), read as the wheel reads them.

The leaves are plain directories standing in for cgroupfs (tests/engine/test_cgroups.py's
FakeFs); real enforcement is tests/integration/test_cgroup_vm.py, in a guest.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from test_cgroups import FakeFs, MiB, fake_rmdir, read

from quebec.config import DispatcherConfig, Settings, WorkerConfig, load_settings
from quebec.engine.cgroup_limits import LeafLimits, configured_limits, files, require_swap_accounting
from quebec.engine.cgroups import CgroupTree, CgroupUnusable
from quebec.engine.memory import recycle_limit_mb
from quebec.engine.unsupported import refuse_unappliable, unsupported_options
from quebec.errors import ConfigError

QUEUE_YML = """\
development:
  workers:
    - queues: "*"
      processes: 2
      memory_max: 512M
      memory_high: 400M
      memory_swap_max: 0
      memory_oom_group: false
      memory_recycle_at: 300M
    - queues: mail
      memory_swap_max: 1M
      memory_high: max
      memory_recycle_at: 256M
  dispatchers:
    - memory_high: 100M
      memory_oom_group: true
"""
RS_PYTHON = os.environ.get("QUEBEC_RS_PYTHON", "")


def settings_from(tmp_path: Path, text: str = QUEUE_YML, env: dict[str, str] | None = None) -> Settings:
    (tmp_path / "queue.yml").write_text(text)
    return load_settings({}, env or {}, cwd=str(tmp_path))


def test_the_keys_are_read_per_entry(tmp_path: Path) -> None:
    s = settings_from(tmp_path)
    first, mail = s.workers
    assert (first.memory_max, first.memory_high, first.memory_swap_max, first.memory_oom_group) == (
        512 * MiB,
        400 * MiB,
        0,
        False,
    )
    assert (first.memory_recycle_at, mail.memory_recycle_at) == (300 * MiB, 256 * MiB)
    assert (mail.memory_high, mail.memory_swap_max, mail.memory_oom_group) == ("max", MiB, None)
    assert (s.dispatchers[0].memory_high, s.dispatchers[0].memory_oom_group) == (100 * MiB, True)


@pytest.mark.skipif(not os.access(RS_PYTHON or "/nonexistent", os.X_OK), reason="QUEBEC_RS_PYTHON not set")
def test_the_values_are_the_wheels(tmp_path: Path) -> None:
    (tmp_path / "queue.yml").write_text(QUEUE_YML)
    script = (
        "import json, quebec; qc = quebec.Quebec('sqlite:///' + 'x.db?mode=rwc'); "
        "print(json.dumps(qc.supervisor_resource_limits_from_config()))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_")}
    done = subprocess.run([RS_PYTHON, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    wheel = json.loads(done.stdout.strip().splitlines()[-1])
    ours = settings_from(tmp_path)
    slots = [w for w in ours.workers for _ in range(w.processes)]
    keys = ("memory_max", "memory_high", "memory_swap_max", "memory_oom_group")
    assert [[slot[k] for k in keys] for slot in wheel["worker"]] == [[getattr(w, k) for k in keys] for w in slots]
    assert [slot["worker_max_rss_bytes"] for slot in wheel["worker"]] == [w.memory_recycle_at for w in slots]
    assert [[slot[k] for k in keys] for slot in wheel["dispatcher"]] == [
        [getattr(d, k) for k in keys] for d in ours.dispatchers
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("memory_oom_group: maybe", r"workers\[0\]\.memory_oom_group .*'maybe'"),
        ("memory_swap_max: lots", r"workers\[0\]\.memory_swap_max must be a memory size .*got 'lots'"),
        ("memory_high: 512", r"workers\[0\]\.memory_high is 512, 512 bytes: too small .*give a unit"),
        ("memory_recycle_at: 2", r"workers\[0\]\.memory_recycle_at is 2, 2 bytes: too small"),
    ],
)
def test_a_bad_value_is_one_sentence_naming_it(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from(tmp_path, f"workers:\n  - {entry}\n")


def test_memory_recycle_at_belongs_to_workers_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dispatchers\[0\] has an unknown key 'memory_recycle_at'"):
        settings_from(tmp_path, "dispatchers:\n  - memory_recycle_at: 100M\n")


def test_each_numeric_limit_or_explicit_oom_group_is_a_promise_and_max_is_not(tmp_path: Path) -> None:
    assert configured_limits(settings_from(tmp_path)) == [
        "workers[0].memory_max=512M",
        "workers[0].memory_high=400M",
        "workers[0].memory_swap_max=0",
        "workers[0].memory_oom_group=false",
        "workers[1].memory_swap_max=1M",
        "dispatchers[0].memory_high=100M",
        "dispatchers[0].memory_oom_group=true",
    ]
    assert configured_limits(Settings(workers=(WorkerConfig(memory_high="max", memory_recycle_at=300 * MiB),))) == []


def test_a_limit_without_the_fork_supervisor_is_refused() -> None:
    high = Settings(workers=(WorkerConfig(memory_high=400 * MiB),))
    with pytest.raises(ConfigError, match=r"^workers\[0\]\.memory_high=400M applies to the fork supervisor's child"):
        refuse_unappliable(high, forking=False)
    with pytest.raises(ConfigError, match=r"^dispatchers\[0\]\.memory_oom_group=false .* QUEBEC_CGROUP=off"):
        refuse_unappliable(
            Settings(dispatchers=(DispatcherConfig(memory_oom_group=False),), cgroup="off"), forking=True
        )


# -- what a leaf gets ---------------------------------------------------------------------------------
def leaf_dir(tmp_path: Path, *, swap_accounting: bool = True) -> str:
    path = tmp_path / "leaf"
    path.mkdir(parents=True)
    if swap_accounting:
        (path / "memory.swap.max").write_text("max\n")
    return str(path)


def test_memory_max_alone_brings_no_swap_and_the_whole_process_oom_kill(tmp_path: Path) -> None:
    assert files(LeafLimits(256 * MiB), leaf_dir(tmp_path)) == [
        ("memory.swap.max", "0"),
        ("memory.oom.group", "1"),
        ("memory.max", str(256 * MiB)),
    ]


def test_explicit_values_win_over_those_defaults(tmp_path: Path) -> None:
    limits = LeafLimits(256 * MiB, memory_high=200 * MiB, memory_swap_max=64 * MiB, memory_oom_group=False)
    assert files(limits, leaf_dir(tmp_path)) == [
        ("memory.high", str(200 * MiB)),
        ("memory.swap.max", str(64 * MiB)),
        ("memory.oom.group", "0"),
        ("memory.max", str(256 * MiB)),
    ]


def test_without_memory_max_only_what_is_asked_is_written(tmp_path: Path) -> None:
    assert files(LeafLimits(memory_high=100 * MiB), leaf_dir(tmp_path)) == [("memory.high", str(100 * MiB))]
    assert files(LeafLimits(memory_oom_group=True, memory_swap_max=0), leaf_dir(tmp_path / "b")) == [
        ("memory.swap.max", "0"),
        ("memory.oom.group", "1"),
    ]
    assert files(LeafLimits("max", memory_high="max", memory_swap_max="max"), leaf_dir(tmp_path / "c")) == []


def test_new_leaf_writes_them(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    tree = CgroupTree(str(fs.root), rmdir=fake_rmdir)
    tree.prepare()
    leaf = tree.new_leaf("dispatcher", 0, LeafLimits(memory_high=100 * MiB, memory_oom_group=True))
    assert read(Path(leaf.path) / "memory.high") == str(100 * MiB)
    assert read(Path(leaf.path) / "memory.oom.group") == "1"
    assert not Path(leaf.path, "memory.max").exists()


def test_a_swap_limit_the_kernel_cannot_apply_is_refused_and_no_leaf_is_left(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)  # a fresh leaf here has no memory.swap.max: as a kernel without swap accounting
    tree = CgroupTree(str(fs.root), rmdir=fake_rmdir)
    tree.prepare()
    with pytest.raises(CgroupUnusable, match=r"memory_swap_max=0 needs .*memory\.swap\.max.*no swap accounting"):
        tree.new_leaf("worker", 0, LeafLimits(256 * MiB, memory_swap_max=0))
    assert not (fs.root / "workers" / "worker-0").exists()
    tree.new_leaf("worker", 0, LeafLimits(256 * MiB))  # the implied swap 0 is best-effort, as before


# -- memory_recycle_at ------------------------------------------------------------------------------
def test_memory_recycle_at_is_the_entrys_recycle_threshold(tmp_path: Path) -> None:
    s = settings_from(tmp_path, env={"QUEBEC_WORKER_MAX_RSS_MB": "1000"})
    assert recycle_limit_mb(replace(s, workers=(s.workers[0],))) == 300  # a fork child runs one entry
    assert recycle_limit_mb(replace(s, workers=(WorkerConfig(),))) == 1000  # none: the environment's
    assert recycle_limit_mb(s) == 256  # one process running both recycles at the lower
    assert recycle_limit_mb(replace(s, workers=(WorkerConfig(memory_recycle_at="max"),))) == 0  # never
    assert recycle_limit_mb(Settings()) == 0


def test_memory_recycle_at_alone_gives_the_memory_companions_an_effect(tmp_path: Path) -> None:
    lone = Settings(workers=(WorkerConfig(memory_recycle_at=300 * MiB),), worker_memory_check_interval=1.0)
    assert unsupported_options(lone, spawn=None, environ={}) == []
    (warning,) = unsupported_options(replace(lone, workers=(WorkerConfig(),)), spawn=None, environ={})
    assert "QUEBEC_WORKER_MAX_RSS_MB or a queue.yml workers[].memory_recycle_at" in warning


def test_a_swap_limit_without_swap_accounting_is_refused_at_start_up(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    tree = CgroupTree(str(fs.root), rmdir=fake_rmdir)
    tree.prepare()  # a plain directory: workers/ has no memory.swap.max, as without swap accounting
    swap = Settings(workers=(WorkerConfig(), WorkerConfig(memory_swap_max=0)))
    with pytest.raises(ConfigError, match=r"^workers\[1\]\.memory_swap_max=0 needs memory\.swap\.max, which .*workers"):
        require_swap_accounting(swap, tree.workers)
    require_swap_accounting(replace(swap, workers=(WorkerConfig(memory_swap_max="max"),)), tree.workers)
    Path(tree.workers, "memory.swap.max").write_text("max\n")
    require_swap_accounting(swap, tree.workers)
