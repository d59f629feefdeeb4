"""What ``run.py`` measures: the backends, the implementations and the metrics, with the
facts about each that the orchestration (``run.py``) and the table (``report.py``) both need."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_URLS = {
    "sqlite": "sqlite:///{tmpdir}/bench.db?mode=rwc",  # {tmpdir} is absolute -> 4-slash absolute form
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}


BACKENDS = list(DEFAULT_URLS)


@dataclass(frozen=True)
class Metric:
    key: str  # result key in the JSON file
    label: str  # row label in the table
    scenario: str  # workload --scenario
    field: str  # field of the workload result shown in the table
    unit: str
    higher_is_better: bool
    threads: int = 0
    jobs_arg: str = "jobs"  # which CLI count applies: jobs | drain_jobs | one_by_one | latency_jobs


METRICS: list[Metric] = [
    Metric("enqueue_one", "enqueue one-by-one", "enqueue_one", "jobs_per_s", "jobs/s", True, 0, "one_by_one"),
    Metric("enqueue_bulk", "bulk enqueue", "enqueue_bulk", "jobs_per_s", "jobs/s", True),
    Metric("drain_1", "drain, 1 thread", "drain", "jobs_per_s", "jobs/s", True, 1, "drain_jobs"),
    Metric("drain_8", "drain, 8 threads", "drain", "jobs_per_s", "jobs/s", True, 8, "drain_jobs"),
    Metric("latency", "pickup, same process", "latency", "p50_ms", "ms", False, 0, "latency_jobs"),
    Metric("latency_xproc", "pickup, other process", "latency_xproc", "p50_ms", "ms", False, 0, "latency_jobs"),
]
# Latency scenarios yield two rows (p50 and p99); see report.rows_for().
FLOOR_NOTES = {
    "enqueue_one": "autocommit INSERT per job",
    "enqueue_bulk": "executemany in one transaction",
    "drain_1": "claim+delete 1 per transaction, 1 thread",
    "drain_8": "claim+delete 100 per transaction (SKIP LOCKED where supported), 8 threads",
}


@dataclass(frozen=True)
class Impl:
    key: str
    label: str
    backends: tuple[str, ...] = tuple(BACKENDS)
    metrics: tuple[str, ...] = tuple(m.key for m in METRICS)
    slow_drain: bool = False  # drains --slow-drain-jobs instead of --drain-jobs
    peer: bool = True  # counted in "best peer"


IMPLS: dict[str, Impl] = {
    i.key: i
    for i in (
        Impl("ours", "ours", peer=False),
        Impl("rust", "the wheel", slow_drain=True),
        Impl("pgqueuer", "PgQueuer", backends=("postgres",)),
        Impl("procrastinate", "Procrastinate", backends=("postgres",), slow_drain=True),
        Impl("floor", "raw SQL floor", metrics=tuple(FLOOR_NOTES), peer=False),
    )
}
