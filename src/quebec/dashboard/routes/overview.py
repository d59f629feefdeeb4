"""The overview page (counts per state, throughput and failure-rate chart) and /health."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import quebec
from quebec import ops
from quebec.dashboard.charts import throughput_chart
from quebec.dashboard.core import Context, query_int, view
from quebec.dashboard.render import Page, render
from quebec.store import overview as read
from quebec.types import JobState

# The pages of the states, in the order a job goes through them, with their labels.
STATES = [
    (JobState.SCHEDULED, "scheduled", "Scheduled"),
    (JobState.READY, "ready", "Ready"),
    (JobState.BLOCKED, "blocked", "Blocked"),
    (JobState.CLAIMED, "in-progress", "In progress"),
    (JobState.FAILED, "failed", "Failed"),
    (JobState.FINISHED, "finished", "Finished"),
]


def overview(page: Page, ctx: Context) -> Response:
    hours = query_int(page, "hours", 24, 1, 168) or 24
    db = ctx.quebec.db
    counts = db.read(read.state_counts)
    data = db.read(read.throughput, hours=hours)
    procs = ops.process_list(db)
    threshold = ctx.quebec.settings.process_alive_threshold
    alive = [p for p in procs.processes if (procs.as_of - p.last_heartbeat_at).total_seconds() < threshold]
    return render(
        page,
        "overview.html",
        counts=counts,
        states=STATES,
        data=data,
        chart=throughput_chart(data),
        hours=hours,
        finished=sum(b.finished for b in data.buckets),
        failed=sum(b.failed for b in data.buckets),
        alive=len(alive),
        workers=sum(1 for p in alive if p.kind == "Worker"),
        busy=sum(p.running for p in alive),
    )


def health(page: Page, ctx: Context) -> Response:
    """As the wheel's /health: healthy, degraded (a process is dead) or unavailable (no
    process, or no live worker among the registered ones); 503 when unavailable."""
    db = ctx.quebec.db
    counts = db.read(read.state_counts)
    procs = ops.process_list(db)
    threshold = ctx.quebec.settings.process_alive_threshold
    kinds: dict[str, dict[str, int]] = {}
    for p in procs.processes:
        entry = kinds.setdefault(p.kind, {"total": 0, "alive": 0, "busy": 0})
        entry["total"] += 1
        if (procs.as_of - p.last_heartbeat_at).total_seconds() < threshold:
            entry["alive"] += 1
            entry["busy"] += p.running
    workers = kinds.get("Worker", {"total": 0, "alive": 0})
    if not procs.processes or (workers["total"] and not workers["alive"]):
        status = "unavailable"
    elif any(k["alive"] < k["total"] for k in kinds.values()):
        status = "degraded"
    else:
        status = "healthy"

    def since(moment: object) -> float:
        return round((counts.as_of - moment).total_seconds(), 3) if moment is not None else 0.0  # type: ignore[operator]

    body = {
        "status": status,
        "version": quebec.__version__,
        "processes": kinds,
        "latency": {
            "pending_seconds": since(counts.oldest_ready_at),
            "processing_seconds": since(counts.oldest_claim_at),
        },
        "jobs": {
            "ready": counts.counts[JobState.READY],
            "in_progress": counts.counts[JobState.CLAIMED],
            "scheduled": counts.counts[JobState.SCHEDULED],
            "blocked": counts.counts[JobState.BLOCKED],
            "failed": counts.counts[JobState.FAILED],
        },
        "estimated": sorted(s.value for s in counts.estimated),
    }
    return JSONResponse(body, status_code=503 if status == "unavailable" else 200)


routes = [Route("/", view(overview)), Route("/health", view(health))]
