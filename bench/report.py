"""``run.py``'s results made readable: each cell's runs reduced to medians, and one Markdown
table per backend with ours set against the best peer and the raw-SQL floor."""

from __future__ import annotations

import statistics
from typing import Any

from matrix import FLOOR_NOTES, IMPLS, Metric


def rows_for(metric: Metric) -> list[tuple[str, str, str, bool]]:
    """(row label, result field, unit, higher_is_better) rows shown for a metric."""
    if metric.unit == "ms":
        return [
            (f"{metric.label} p50", "p50_ms", "ms", False),
            (f"{metric.label} p99", "p99_ms", "ms", False),
        ]
    return [(metric.label, metric.field, metric.unit, metric.higher_is_better)]


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each numeric field over the runs that succeeded (the first error if none did)."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return {"error": runs[0]["error"], "runs": len(runs)}
    out: dict[str, Any] = {"runs": len(good), "failed_runs": len(runs) - len(good)}
    for field in ("jobs_per_s", "p50_ms", "p99_ms", "max_ms", "jobs"):
        values = [r[field] for r in good if isinstance(r.get(field), int | float)]
        if values:
            out[field] = statistics.median(values)
    return out


def fmt_value(result: dict[str, Any] | None, field: str) -> str:
    if result is None:
        return "–"
    if "error" in result:
        msg = str(result["error"]).replace("|", "/").replace("\n", " ")
        return msg if len(msg) <= 40 else msg[:37] + "..."
    value = result.get(field)
    if not isinstance(value, int | float):
        return "?"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def value_of(result: dict[str, Any] | None, field: str) -> float | None:
    if not result or "error" in result:
        return None
    v = result.get(field)
    return float(v) if isinstance(v, int | float) and v > 0 else None


def ratio(ours: float | None, other: float | None, higher: bool) -> str:
    """> 1 means ours is better: ours/other for throughput, other/ours for latency."""
    if ours is None or other is None:
        return "–"
    return f"{(ours / other if higher else other / ours):.2f}"


def render_table(
    backend: str,
    cells: dict[str, dict[str, dict[str, Any]]],
    impls: list[str],
    metrics: list[Metric],
    labels: dict[str, str],
) -> str:
    shown = [i for i in impls if backend in IMPLS[i].backends]
    peer_cols = [i for i in shown if IMPLS[i].peer]
    header = ["metric", "unit", *(labels[i] for i in shown)]
    if "ours" in shown and peer_cols:
        header.append("ours vs best peer")
    if "ours" in shown and "floor" in shown:
        header.append("ours vs floor")
    lines = [f"### {backend}", "", "| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for metric in metrics:
        for label, field, unit, higher in rows_for(metric):
            row = [label, unit]
            for impl in shown:
                cell = cells.get(impl, {}).get(metric.key)
                row.append("—" if cell is None and metric.key not in IMPLS[impl].metrics else fmt_value(cell, field))
            ours = value_of(cells.get("ours", {}).get(metric.key), field)
            if "ours" in shown and peer_cols:
                vals = [v for i in peer_cols if (v := value_of(cells.get(i, {}).get(metric.key), field)) is not None]
                best = (max(vals) if higher else min(vals)) if vals else None
                row.append(ratio(ours, best, higher))
            if "ours" in shown and "floor" in shown:
                row.append(ratio(ours, value_of(cells.get("floor", {}).get(metric.key), field), higher))
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    peers = f"; best peer = the best of {', '.join(labels[i] for i in peer_cols)}" if peer_cols else ""
    lines.append(f"Ratios > 1 mean ours is better (ours/other for jobs/s, other/ours for ms){peers}.")
    if "floor" in shown:
        notes = "; ".join(f"{m.label}: {FLOOR_NOTES[m.key]}" for m in metrics if m.key in FLOOR_NOTES)
        lines.append(f"Floor rows: {notes}.")
    return "\n".join(lines)
