"""Server-side SVG charts: the overview's throughput bars and failure-rate line, as
coordinates the template draws (no chart script)."""

from __future__ import annotations

from dataclasses import dataclass

from quebec.store.overview import Throughput

WIDTH, HEIGHT, PAD = 720, 140, 4


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    failure_points: str  # an SVG polyline's points
    peak: int
    width: int = WIDTH
    height: int = HEIGHT


def throughput_chart(data: Throughput) -> Chart:
    count = max(1, len(data.buckets))
    slot = WIDTH / count
    peak = max((b.finished + b.failed for b in data.buckets), default=0)
    scale = (HEIGHT - 2 * PAD) / peak if peak else 0.0
    bars, points = [], []
    for i, b in enumerate(data.buckets):
        h = (b.finished + b.failed) * scale
        title = f"{b.start:%m-%d %H:%M}: {b.finished} finished, {b.failed} failed ({b.failure_rate:.0%})"
        bars.append(Bar(i * slot + 1, HEIGHT - PAD - h, max(1.0, slot - 2), h, title))
        y = HEIGHT - PAD - b.failure_rate * (HEIGHT - 2 * PAD)
        points.append(f"{i * slot + slot / 2:.1f},{y:.1f}")
    return Chart(bars, " ".join(points), peak)
