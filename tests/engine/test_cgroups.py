"""cgroup v2 limits (engine/cgroups.py): sizes, settings, the tree's layout, refusals, OOM attribution.

The tree is laid out in a plain directory standing in for cgroupfs (tmp_path), never in
the host's cgroups; real enforcement is tests/integration/test_cgroup_vm.py, in a guest.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from dataclasses import replace
from pathlib import Path

import pytest

import quebec
from quebec.config import Settings, WorkerConfig, load_settings
from quebec.config.sizes import parse_size, show_size
from quebec.engine.cgroup_limits import NONE, LeafLimits, configured_limits
from quebec.engine.cgroups import CgroupTree, CgroupUnusable, oom_verdict, usable_root
from quebec.engine.running import RunningBoard
from quebec.engine.unsupported import refuse_unappliable, unsupported_options
from quebec.errors import ConfigError

MiB = 1024**2


class FakeFs:
    """A cgroup2 mount at <tmp>/cg with this process in /quebec, as /proc would describe it."""

    def __init__(self, tmp_path: Path, *, controllers: str = "cpu memory pids", own: str = "/quebec") -> None:
        self.mount = tmp_path / "cg"
        self.root = self.mount / "quebec"
        self.root.mkdir(parents=True)
        (self.root / "cgroup.controllers").write_text(controllers + "\n")
        (self.root / "cgroup.procs").write_text(f"{os.getpid()}\n")
        (self.root / "cgroup.subtree_control").write_text("")
        self.mounts = tmp_path / "mounts"
        self.mounts.write_text(f"proc /proc proc rw 0 0\ncgroup2 {self.mount} cgroup2 rw,nosuid 0 0\n")
        self.self_cgroup = tmp_path / "self_cgroup"
        self.self_cgroup.write_text(f"0::{own}\n")

    def usable_root(self, settings: Settings) -> str:
        return usable_root(settings, mounts=str(self.mounts), self_cgroup=str(self.self_cgroup), platform="linux")


def fake_rmdir(path: str) -> None:
    """rmdir as cgroupfs does it: refused while the cgroup has members; its files go with it."""
    procs = Path(path, "cgroup.procs")
    if procs.exists() and procs.read_text().split():
        raise OSError(errno.EBUSY, "Device or resource busy", path)
    shutil.rmtree(path)


def read(path: Path) -> str:
    return path.read_text().strip()


# -- sizes and settings ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512M", 512 * MiB),
        ("2G", 2 * 1024 * MiB),
        ("1.5GiB", 1536 * MiB),
        ("256mib", 256 * MiB),
        ("500MB", 500_000_000),
        (268435456, 256 * MiB),
        ("max", "max"),
        (" MAX ", "max"),
    ],
)
def test_sizes_are_read_as_the_kernel_means_them(text: object, size: object) -> None:
    assert parse_size(text, "memory_max") == size


@pytest.mark.parametrize("bad", ["lots", "12X", "M", "-1G", True, 1.5, None])
def test_a_bad_size_is_one_sentence_naming_the_value_and_the_fix(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_size(bad, "queue.yml workers[0].memory_max")
    message = str(err.value)
    assert message.startswith("queue.yml workers[0].memory_max must be a memory size such as 512M, 2G")
    assert message.endswith(f"got {bad!r}")


def test_a_size_without_its_unit_is_refused_as_a_typo() -> None:
    with pytest.raises(ConfigError, match=r"^memory_max is 512, 512 bytes: too small .*give a unit \(e\.g\. 512M"):
        parse_size(512, "memory_max")


def test_sizes_are_shown_the_way_they_are_written() -> None:
    assert [show_size(s) for s in (256 * MiB, 2 * 1024 * MiB, 1536 * 1024, 5 * MiB + 1, "max")] == [
        "256M",
        "2G",
        "1536K",
        str(5 * MiB + 1),
        "max",
    ]


def test_settings_read_the_cgroup_options_from_the_environment_and_queue_yml(tmp_path: Path) -> None:
    (tmp_path / "queue.yml").write_text(
        "workers:\n  - queues: '*'\n    processes: 2\n    memory_max: 256M\n  - queues: mail\n    memory_max: max\n"
        "dispatchers:\n  - memory_max: 128M\n"
        "workers_pool_memory_max: 2G\n"
    )
    env = {"QUEBEC_CGROUP": "1", "QUEBEC_CGROUP_ROOT": "/sys/fs/cgroup/q", "QUEBEC_WORKERS_POOL_MEMORY_MAX": "1G"}
    settings = load_settings({}, env, cwd=str(tmp_path))
    assert (settings.cgroup, settings.cgroup_root, settings.workers_pool_memory_max) == (
        "on",
        "/sys/fs/cgroup/q",
        1024 * MiB,
    )
    assert [w.memory_max for w in settings.workers] == [256 * MiB, "max"]
    assert settings.dispatchers[0].memory_max == 128 * MiB
    assert configured_limits(settings) == [
        "workers[0].memory_max=256M",
        "dispatchers[0].memory_max=128M",
        "workers_pool_memory_max=1G",  # the environment wins over queue.yml's 2G
    ]
    assert load_settings({}, {}, cwd=str(tmp_path)).workers_pool_memory_max == 2 * 1024 * MiB
    assert load_settings({}, {"QUEBEC_CGROUP": "0"}, cwd=str(tmp_path)).cgroup == "off"
    assert load_settings({}, {}, cwd=str(tmp_path / "..")).cgroup == "auto"


def test_bad_cgroup_settings_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^environment variable QUEBEC_CGROUP must be on, off or auto .*got 'maybe'$"
    ):
        load_settings({}, {"QUEBEC_CGROUP": "maybe"}, cwd=str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"^environment variable QUEBEC_WORKERS_POOL_MEMORY_MAX must be a memory size"
    ):
        load_settings({}, {"QUEBEC_WORKERS_POOL_MEMORY_MAX": "a lot"}, cwd=str(tmp_path))
    (tmp_path / "queue.yml").write_text("workers:\n  - memory_max: 12 apples\n")
    with pytest.raises(ConfigError, match=r"^queue.yml workers\[0\].memory_max must be a memory size .*'12 apples'$"):
        load_settings({}, {}, cwd=str(tmp_path))


# -- finding a usable subtree ---------------------------------------------------------------------
def test_the_supervisors_own_cgroup_is_used_when_no_root_is_set(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    assert fs.usable_root(Settings()) == str(fs.root)
    assert fs.usable_root(Settings(cgroup_root=str(fs.root))) == str(fs.root)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no_dir", r"QUEBEC_CGROUP_ROOT=.*/nowhere is not a directory; point it at a delegated cgroup v2 subtree"),
        ("outside", r"QUEBEC_CGROUP_ROOT=.* is not inside a cgroup2 mount"),
        ("no_memory", r"has no memory controller \(cgroup.controllers: cpu pids\); enable it"),
        ("root_cgroup", r"this process is in the root cgroup, which Quebec does not take over"),
        ("no_cgroup2", r"no cgroup2 file system is mounted"),
    ],
)
def test_an_unusable_subtree_says_why(tmp_path: Path, case: str, reason: str) -> None:
    fs = FakeFs(
        tmp_path,
        controllers="cpu pids" if case == "no_memory" else "cpu memory pids",
        own="/" if case == "root_cgroup" else "/quebec",
    )
    settings = Settings()
    if case == "no_dir":
        settings = Settings(cgroup_root=str(fs.mount / "nowhere"))
    if case == "outside":
        settings = Settings(cgroup_root=str(tmp_path))
    if case == "no_cgroup2":
        fs.mounts.write_text("proc /proc proc rw 0 0\n")
    with pytest.raises(CgroupUnusable, match=reason):
        fs.usable_root(settings)


def test_cgroups_are_linux_only(tmp_path: Path) -> None:
    with pytest.raises(CgroupUnusable, match=r"^cgroups exist only on Linux, and this is darwin$"):
        usable_root(Settings(), platform="darwin")


# -- the layout -----------------------------------------------------------------------------------
def test_prepare_lays_out_control_and_workers_like_the_wheel(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    tree = CgroupTree(str(fs.root), 1024 * MiB, rmdir=fake_rmdir)
    tree.prepare()
    assert read(fs.root / "control" / "supervisor" / "cgroup.procs") == str(os.getpid())
    for inner in (fs.root, fs.root / "control", fs.root / "workers"):
        assert read(inner / "cgroup.subtree_control") == "+memory"
    assert read(fs.root / "workers" / "memory.max") == str(1024 * MiB)
    assert read(fs.root / "workers" / "memory.oom.group") == "0"

    worker = tree.new_leaf("worker", 0, LeafLimits(256 * MiB))
    assert worker.path == str(fs.root / "workers" / "worker-0")
    assert read(Path(worker.path) / "memory.max") == str(256 * MiB)
    assert read(Path(worker.path) / "memory.oom.group") == "1"
    dispatcher = tree.new_leaf("dispatcher", 0, NONE)
    assert dispatcher.path == str(fs.root / "control" / "dispatcher-0")
    assert sorted(os.listdir(dispatcher.path)) == []  # no limit asked, none written
    assert tree.new_leaf("scheduler", 0, NONE).path == str(fs.root / "control" / "scheduler-0")


def test_prepare_removes_the_empty_leaves_a_dead_supervisor_left_and_keeps_busy_ones(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    for leaf, procs in (("workers/worker-0", ""), ("workers/worker-1.2", ""), ("workers/worker-3", "99\n")):
        (fs.root / leaf).mkdir(parents=True)
        (fs.root / leaf / "cgroup.procs").write_text(procs)
    (fs.root / "control" / "dispatcher-0").mkdir(parents=True)
    (fs.root / "workers" / "notes").mkdir()  # not a leaf name of ours: left alone
    CgroupTree(str(fs.root), rmdir=fake_rmdir).prepare()
    assert sorted(p.name for p in (fs.root / "workers").iterdir() if p.is_dir()) == ["notes", "worker-3"]
    assert sorted(p.name for p in (fs.root / "control").iterdir() if p.is_dir()) == ["supervisor"]


def test_a_supervisor_started_outside_the_root_stays_where_it_is(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    (fs.root / "cgroup.procs").write_text("")
    CgroupTree(str(fs.root)).prepare()
    assert not (fs.root / "control" / "supervisor").exists()
    assert read(fs.root / "control" / "cgroup.subtree_control") == "+memory"


def test_no_pool_limit_writes_max_so_an_old_one_does_not_linger(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    (fs.root / "workers").mkdir()
    (fs.root / "workers" / "memory.max").write_text("999999999")
    CgroupTree(str(fs.root)).prepare()
    assert read(fs.root / "workers" / "memory.max") == "max"


def test_every_child_gets_a_fresh_leaf_so_its_counters_start_at_zero(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    tree = CgroupTree(str(fs.root), rmdir=fake_rmdir)
    tree.prepare()
    first = tree.new_leaf("worker", 0, LeafLimits(64 * MiB))
    Path(first.path, "cgroup.procs").write_text("4242\n")  # still running (a HUP's old copy)
    second = tree.new_leaf("worker", 0, LeafLimits(64 * MiB))
    assert second.path == first.path + ".2"
    Path(first.path, "cgroup.procs").write_text("")
    Path(first.path, "memory.events").write_text("oom_kill 1\n")  # a dead predecessor's counters
    tree.remove(first)
    third = tree.new_leaf("worker", 0, LeafLimits(64 * MiB))
    assert third.path == first.path
    assert not Path(third.path, "memory.events").exists()


def test_a_root_shared_with_other_processes_is_a_clear_error_and_nothing_moves(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    (fs.root / "cgroup.procs").write_text(f"1\n{os.getpid()}\n77\n")
    with pytest.raises(CgroupUnusable, match=r"still holds other processes \(1, 77\).*Delegate=yes"):
        CgroupTree(str(fs.root)).prepare()
    assert sorted(os.listdir(fs.root)) == ["cgroup.controllers", "cgroup.procs", "cgroup.subtree_control"]


# -- OOM attribution ------------------------------------------------------------------------------
def test_an_oom_kill_fails_what_the_worker_had_started_and_names_the_limit(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    tree = CgroupTree(str(fs.root), rmdir=fake_rmdir)
    tree.prepare()
    leaf = tree.new_leaf("worker", 0, LeafLimits(256 * MiB))
    board = RunningBoard(4)
    board.started(11)
    board.started(12)
    board.ended(12)
    Path(leaf.path, "memory.events").write_text("low 0\nhigh 0\nmax 41\noom 1\noom_kill 1\noom_group_kill 1\n")

    verdict = oom_verdict(tree, leaf, board, 4321, -signal.SIGKILL)
    assert verdict is not None
    assert verdict.running == {11}
    assert verdict.complete
    assert verdict.error.exception_class == "ProcessOOMKilledError"
    assert verdict.error.message == (
        "worker-0 (pid 4321) was killed by the kernel OOM killer at memory.max=256M while running this job; "
        "raise its queue.yml entry's memory_max or make the job use less memory"
    )
    assert oom_verdict(tree, leaf, board, 4321, 1) is None  # it exited: not the OOM killer
    Path(leaf.path, "memory.events").write_text("max 0\noom_kill 0\n")
    assert oom_verdict(tree, leaf, board, 4321, -signal.SIGKILL) is None  # kill -9, not an OOM


def test_a_pool_oom_says_the_job_may_be_a_bystander(tmp_path: Path) -> None:
    fs = FakeFs(tmp_path)
    tree = CgroupTree(str(fs.root), 512 * MiB, rmdir=fake_rmdir)
    tree.prepare()
    leaf = tree.new_leaf("worker", 1, LeafLimits(400 * MiB))
    Path(fs.root, "workers", "memory.events.local").write_text("max 3\noom_kill 1\n")
    Path(leaf.path, "memory.events").write_text("max 0\noom_kill 1\n")
    verdict = oom_verdict(tree, leaf, None, 99, -signal.SIGKILL)
    assert verdict is not None and not verdict.complete
    assert "when the workers pool reached its memory.max=512M (QUEBEC_WORKERS_POOL_MEMORY_MAX)" in verdict.error.message
    assert "may be a bystander" in verdict.error.message


def test_the_running_board_is_shared_with_a_forked_child(tmp_path: Path) -> None:
    board = RunningBoard(3)
    pid = os.fork()
    if pid == 0:
        for job_id in (1, 2, 3):
            board.started(job_id)
        board.ended(2)
        board.started(4)
        board.started(5)  # no cell left: counted as an overflow
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.running() == {1, 3, 4}
    assert board.overflowed
    board.close()


# -- refusing what cannot be applied ---------------------------------------------------------------
LIMITED = Settings(workers=(WorkerConfig(memory_max=256 * MiB),))


def test_a_limit_without_the_fork_supervisor_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^workers\[0\].memory_max=256M applies to the fork supervisor's child"):
        refuse_unappliable(LIMITED, forking=False)


def test_a_limit_with_cgroups_off_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^workers\[0\].memory_max=256M .* but QUEBEC_CGROUP=off turns cgroups off"):
        refuse_unappliable(replace(LIMITED, cgroup="off"), forking=True)


def test_a_limit_that_cannot_be_applied_is_a_start_up_error(tmp_path: Path) -> None:
    settings = replace(LIMITED, cgroup_root=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"^workers\[0\].memory_max=256M cannot be applied: QUEBEC_CGROUP_ROOT="):
        refuse_unappliable(settings, forking=True)
    pool = Settings(workers_pool_memory_max=MiB * 1024, cgroup_root=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"^workers_pool_memory_max=1G cannot be applied"):
        refuse_unappliable(pool, forking=True)
    with pytest.raises(ConfigError, match=r"^QUEBEC_CGROUP=on cannot be applied"):
        refuse_unappliable(Settings(cgroup="on", cgroup_root=str(tmp_path / "missing")), forking=True)


def test_nothing_configured_is_best_effort_and_refuses_nothing(tmp_path: Path) -> None:
    refuse_unappliable(Settings(cgroup_root=str(tmp_path / "missing")), forking=True)
    refuse_unappliable(Settings(workers=(WorkerConfig(memory_max="max"),)), forking=False)
    refuse_unappliable(Settings(), forking=False)


def test_qc_start_with_a_memory_limit_refuses_to_start_rather_than_run_unlimited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "queue.yml").write_text("workers:\n  - memory_max: 1G\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUEBEC_SUPERVISOR", raising=False)
    qc = quebec.Quebec(f"sqlite:///{tmp_path}/q.db?mode=rwc")
    try:
        for start in (qc.start, qc.run):
            with pytest.raises(quebec.ConfigError, match=r"^workers\[0\].memory_max=1G applies to the fork supervisor"):
                start(spawn=["worker"])
        assert qc.db.read(lambda tx: tx.conn.execute(tx.tables.processes.select()).all()) == []
    finally:
        qc.close()


def test_a_one_shot_run_says_its_limit_has_no_effect() -> None:
    sentences = unsupported_options(LIMITED, spawn=None, environ={})
    assert sentences == [
        "workers[0].memory_max=256M has no effect here: cgroup limits apply to the fork supervisor's children "
        "(QUEBEC_SUPERVISOR=1)"
    ]
    assert unsupported_options(LIMITED, spawn=None, environ={"QUEBEC_SUPERVISOR": "1"}) == []
