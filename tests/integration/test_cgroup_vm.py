"""cgroup v2 enforcement for real, in a qemu guest: a job past its worker's memory_max is OOM-killed,
fails with ProcessOOMKilledError naming the limit, and the other jobs still finish.

The host's own cgroups are never touched (its memory controller is bound to cgroup v1):
vm_support boots Debian's kernel with the host's root shared read-only, and the guest runs
this tree's python against a SQLite database in its own tmpfs. About 40 s under TCG.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import vm_support

pytestmark = pytest.mark.slow

JOBS = """
import time

import quebec


class Hog(quebec.BaseClass):
    def perform(self):
        hoard = []
        for _ in range(64):  # 512 MiB in 8 MiB pieces, each page touched: far past memory_max
            hoard.append(bytearray(8 * 1024 * 1024))
            time.sleep(0.01)
        return len(hoard)


class Small(quebec.BaseClass):
    def perform(self, n):
        time.sleep(0.05)
        return n
"""

QUEUE_YML = """
workers:
  - queues: "*"
    threads: 1
    processes: 1
    polling_interval: 0.05
    memory_max: 96M
dispatchers:
  - polling_interval: 0.2
"""

# Runs inside the guest, as root, with the guest's cgroup2 mounted at /sys/fs/cgroup.
DRIVER = """
import json, os, signal, sqlite3, subprocess, sys, time

share, work = sys.argv[1], "/tmp/work"
os.makedirs(work)
root = "/sys/fs/cgroup/quebec"
os.mkdir(root)
with open(os.path.join(work, "queue.yml"), "w") as f:
    f.write(open(os.path.join(share, "queue.yml")).read())
os.chdir(work)
sys.path.insert(0, share)
import quebec, oomjobs

url = "sqlite:////tmp/work/q.db"
qc = quebec.Quebec(url)
qc.create_tables()
hog = qc.perform_later(oomjobs.Hog).id  # first, on the one thread: the others wait claimed behind it
smalls = [qc.perform_later(oomjobs.Small, n).id for n in range(6)]
qc.close()

env = dict(os.environ, QUEBEC_SUPERVISOR="1", DATABASE_URL=url, QUEBEC_CGROUP_ROOT=root,
           PYTHONPATH=os.pathsep.join(filter(None, [share, os.environ.get("PYTHONPATH")])),
           PYTHONUNBUFFERED="1", QUEBEC_LOG_LEVEL="INFO")
log = open("/tmp/work/supervisor.log", "wb")
def inside_root():  # the supervisor starts inside the subtree, as under systemd's Delegate=yes
    with open(os.path.join(root, "cgroup.procs"), "w") as f:
        f.write("0")
proc = subprocess.Popen([sys.executable, "-m", "quebec", "oomjobs"], env=env, stdout=log, stderr=subprocess.STDOUT,
                        preexec_fn=inside_root)

db = sqlite3.connect("/tmp/work/q.db", timeout=10)
def state():
    finished = {r[0] for r in db.execute("SELECT id FROM solid_queue_jobs WHERE finished_at IS NOT NULL")}
    failed = dict(db.execute("SELECT job_id, error FROM solid_queue_failed_executions").fetchall())
    return finished, failed
deadline = time.monotonic() + 150
while time.monotonic() < deadline and proc.poll() is None:
    finished, failed = state()
    if hog in failed and set(smalls) <= finished:
        break
    time.sleep(0.2)
finished, failed = state()
layout = sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, _ in os.walk(root) for n in dirs)
def read(*path):
    try:
        return open(os.path.join(root, *path)).read().strip()
    except OSError as err:
        return str(err)
worker_max = read("workers", "memory.max")
leaves = [n for n in layout if n.startswith("workers/worker-")]
leaf_max = [read(n, "memory.max") for n in leaves]
proc.send_signal(signal.SIGTERM)
try:
    code = proc.wait(30)
except subprocess.TimeoutExpired:
    proc.kill()
    code = "killed"
log.close()
print(json.dumps({
    "hog": hog, "smalls": smalls, "finished": sorted(finished),
    "failed": {str(k): json.loads(v) for k, v in failed.items()},
    "layout": layout, "pool_max": worker_max, "leaf_max": leaf_max, "exit": code,
    "log": open("/tmp/work/supervisor.log", errors="replace").read()[-4000:],
}))
"""


def test_a_job_past_memory_max_is_oom_killed_failed_with_the_limit_and_the_rest_finish(tmp_path: Path) -> None:
    guest = vm_support.find_guest()
    if isinstance(guest, str):
        pytest.skip(guest)
    share = tmp_path / "share"
    share.mkdir()
    (share / "oomjobs.py").write_text(textwrap.dedent(JOBS), encoding="utf-8")
    (share / "queue.yml").write_text(QUEUE_YML, encoding="utf-8")
    (share / "driver.py").write_text(textwrap.dedent(DRIVER), encoding="utf-8")
    shared = vm_support.in_guest(share)
    command = f"PYTHONPATH={vm_support.quebec_src()} {sys.executable} {shared}/driver.py {shared}"
    run = vm_support.run_in_guest(guest, command, tmp_path / "vm")
    lines = [line for line in run.output.splitlines() if line.startswith("{")]
    assert lines, f"the driver printed no result:\n{run.output[-6000:]}"
    result = json.loads(lines[-1])
    context = f"supervisor log:\n{result['log']}"

    error = result["failed"].get(str(result["hog"]))
    assert error is not None, context
    assert error["exception_class"] == "ProcessOOMKilledError", context
    assert "was killed by the kernel OOM killer at memory.max=96M while running this job" in error["message"], context
    assert set(result["smalls"]) <= set(result["finished"]), context
    assert set(result["failed"]) == {str(result["hog"])}, context
    assert {"control", "control/supervisor", "control/dispatcher-0", "control/scheduler-0", "workers"} <= set(
        result["layout"]
    ), result["layout"]
    assert result["pool_max"] == "max"
    assert result["leaf_max"] == [str(96 * 1024 * 1024)], context  # the reforked worker, in a fresh leaf
    assert result["exit"] == 0, context
    assert "supervisor.oom_killed" in result["log"], context
