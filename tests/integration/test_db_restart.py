"""The database restarts mid-drain; the same worker process finishes every job by itself.

Each test runs its own private server on a free port (never the shared services on
5432/3306): PostgreSQL through initdb + pg_ctl, restarted with `pg_ctl restart -m
immediate` (a crash restart); MariaDB through mariadb-install-db + mariadbd, killed with
SIGKILL and started again on the same datadir. A second variant keeps the server down
for a few seconds, so that claims, heartbeats and outcome flushes fail for a while.

The worker (`python -m quebec pkg`) drains 1,000 jobs of ~5 ms; each job appends its id
to a file (not the database, which is down part of the time). What must hold: the
worker never exits, every job finishes, none fails, no claim is left, and the time from
the server being back to the first flushed outcome and to the last job is printed.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from integration_support import (
    Procs,
    count,
    engine_for,
    start_worker,
    stop_gracefully,
    until,
    worker_env,
    write_package,
)
from sqlalchemy import func, select

import quebec
from quebec.clock import utcnow
from quebec.schema import build_tables

pytestmark = pytest.mark.slow

JOBS = int(os.environ.get("QUEBEC_TEST_RESTART_JOBS", "1000"))
THREADS = 2
RESTART_AFTER = 150  # jobs run before the server goes away
DRAIN_DEADLINE = 90.0

JOB_PACKAGE = """
import os
import threading
import time

import quebec

_lock = threading.Lock()


class RestartJob(quebec.BaseClass):
    def perform(self, n):
        started = time.time()
        time.sleep(0.005)
        with _lock, open(os.environ["QUEBEC_TEST_RUNS_FILE"], "a", encoding="utf-8") as f:
            f.write(f"{self.id} {os.getpid()} {started:.6f}\\n")
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(argv: list[str], what: str, timeout: float = 60) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (rc={done.returncode}): {' '.join(argv)}\n{done.stdout}\n{done.stderr}")


def _wait_until(check: Callable[[], bool], within: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} not within {within}s\n{tail}")


class PrivatePostgres:
    name = "postgresql"

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
        found = [b for b in bins if os.path.exists(f"{b}/initdb") and os.path.exists(f"{b}/pg_ctl")]
        which = shutil.which("pg_ctl")
        if found:
            self.bin = found[0]
        elif which and shutil.which("initdb"):
            self.bin = os.path.dirname(which)
        else:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no 'postgres' user to run initdb as")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="quebec-pg-"))
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/quebec"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run(
            [
                *self.as_user,
                f"{self.bin}/pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                *args,
            ],
            f"pg_ctl {args[-1]}",
            timeout=90,
        )

    def start(self) -> None:
        _run(
            [
                *self.as_user,
                f"{self.bin}/initdb",
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            "initdb",
            timeout=120,
        )
        self._ctl("start")
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE quebec")

    def restart(self, down: float) -> None:
        if down:
            self._ctl("-m", "immediate", "stop")
            time.sleep(down)  # the outage itself, not synchronisation
            self._ctl("start")
        else:
            self._ctl("-m", "immediate", "restart")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ctl("-m", "immediate", "stop")
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():  # pg_ctl failed: kill the postmaster ourselves
            with contextlib.suppress(Exception):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateMariaDB:
    name = "mariadb"

    def __init__(self) -> None:
        self.server = (
            shutil.which("mariadbd")
            or shutil.which("mysqld")
            or next((p for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld") if os.path.exists(p)), None)
        )
        self.install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not self.server or not self.install:
            pytest.skip("MariaDB server binaries (mariadbd, mariadb-install-db) are not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="quebec-mariadb-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.url = f"mysql://root@127.0.0.1:{self.port}/quebec"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        _run(
            [
                str(self.install),
                "--no-defaults",
                f"--datadir={self.data}",
                f"--user={self.user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            "mariadb-install-db",
            timeout=120,
        )
        self._launch()
        import pymysql

        with (
            contextlib.closing(pymysql.connect(host="127.0.0.1", port=self.port, user="root")) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("CREATE DATABASE quebec")

    def _launch(self) -> None:
        argv = [
            str(self.server),
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.dir}/mysqld.sock",
            f"--pid-file={self.dir}/mysqld.pid",
            "--skip-grant-tables",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=64M",
        ]
        if os.geteuid() == 0:
            argv.append("--user=root")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        import pymysql

        def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"mariadbd exited with {self.proc.returncode}")
            pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2).close()
            return True

        _wait_until(answers, 60, "mariadbd to accept connections", self.log)

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(30)

    def restart(self, down: float) -> None:
        self._kill()
        if down:
            time.sleep(down)  # the outage itself, not synchronisation
        self._launch()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest) -> Iterator[PrivatePostgres | PrivateMariaDB]:
    srv = PrivatePostgres() if request.param == "postgresql" else PrivateMariaDB()
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


def _runs(path: Path) -> list[tuple[int, int, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        job_id, pid, started = line.split()
        out.append((int(job_id), int(pid), float(started)))
    return out


@pytest.mark.timeout(240)
@pytest.mark.parametrize("down", [0.0, 5.0], ids=["restart", "down-5s"])
def test_the_same_worker_finishes_every_job_after_the_database_restarts_mid_drain(
    server: PrivatePostgres | PrivateMariaDB,
    down: float,
    prefix: str,
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = f"restart_jobs_{prefix}"
    write_package(tmp_path, package, JOB_PACKAGE)
    runs_file = tmp_path / "runs.txt"
    qc = quebec.Quebec(server.url, table_name_prefix=prefix)
    engine = engine_for(server.url)
    try:
        qc.create_tables()
        monkeypatch.syspath_prepend(str(tmp_path))
        module = importlib.import_module(package)
        monkeypatch.setitem(sys.modules, package, module)
        job_class = qc.register_job(module.RestartJob)
        ids = {j.id for j in qc.perform_all_later([job_class.build(i) for i in range(JOBS)])}
        assert len(ids) == JOBS
        qc.db.dispose()  # no connection of ours survives the restart

        env = worker_env(
            server.url,
            prefix,
            tmp_path,
            QUEBEC_WORKER_THREADS=str(THREADS),
            QUEBEC_TEST_RUNS_FILE=str(runs_file),
            QUEBEC_LOG_LEVEL="WARNING",
        )
        worker = start_worker(procs, package, env, tmp_path)
        until(lambda: len(_runs(runs_file)) >= RESTART_AFTER, 60, f"{RESTART_AFTER} jobs to run", procs, alive=[worker])

        server.restart(down)
        back_at = utcnow()
        back = time.monotonic()
        ran_before = len(
            {
                job_id
                for job_id, _, started in _runs(runs_file)
                if datetime.fromtimestamp(started, UTC).replace(tzinfo=None) < back_at
            }
        )
        assert ran_before < JOBS, "the queue drained before the restart; the test proved nothing"

        def n(table: str, where: str = "1 = 1") -> int:
            return count(engine, f"SELECT COUNT(*) FROM {prefix}_{table} WHERE {where}")

        until(
            lambda: n("jobs", "finished_at IS NOT NULL") == JOBS,
            DRAIN_DEADLINE,
            f"the same worker to finish all {JOBS} jobs after the restart",
            procs,
            alive=[worker],
        )
        all_done = time.monotonic() - back

        tables = build_tables(prefix)
        with engine.connect() as conn:
            first_flush = conn.execute(
                select(func.min(tables.jobs.c.finished_at)).where(tables.jobs.c.finished_at >= back_at)
            ).scalar_one()
        flushed_after = (first_flush - back_at).total_seconds() if first_flush is not None else float("nan")

        assert n("failed_executions") == 0, "a job failed"
        assert n("claimed_executions") == 0, "claims left behind"
        assert n("ready_executions") == 0
        assert n("jobs") == JOBS
        runs = _runs(runs_file)
        assert {pid for _, pid, _ in runs} == {worker.pid}, "another process ran jobs"
        ran = Counter(job_id for job_id, _, _ in runs)
        assert set(ran) == ids, f"jobs that never ran: {sorted(ids - set(ran))[:10]}"
        duplicates = sum(1 for c in ran.values() if c > 1)

        assert stop_gracefully(worker, procs) == 0, procs.describe()
        assert n("processes") == 0
        print(
            f"\n[{server.name} {'restart' if not down else f'down {down:.0f}s'}] {JOBS} jobs, {ran_before} ran "
            f"before the restart; first outcome written {flushed_after:.2f}s and last job finished "
            f"{all_done:.2f}s after the server was back; {duplicates} jobs ran twice"
        )
    finally:
        procs.kill_all()
        engine.dispose()
        qc.close()
