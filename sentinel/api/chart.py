"""The status page's chart: ``actual_value`` over time as inline SVG, computed server-side so
the page needs no JavaScript library."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sentinel.models import ExecutionRecord

#: How many of the newest numeric values the chart shows.
CHART_POINTS = 100


@dataclass(frozen=True)
class Chart:
    """An SVG polyline of ``actual_value`` over time, in a fixed 640x180 viewBox."""

    points: str
    last: tuple[float, float]
    threshold_y: float | None
    threshold: float | None
    low: float
    high: float
    start: datetime
    end: datetime
    count: int

    WIDTH = 640
    HEIGHT = 180
    LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28


def chart(records: list[ExecutionRecord]) -> Chart | None:
    """The newest ``CHART_POINTS`` numeric values (``records`` newest first), oldest at the left."""
    numeric = [
        r for r in records if r.actual_value is not None and math.isfinite(float(r.actual_value))
    ][:CHART_POINTS]
    if not numeric:
        return None
    numeric.reverse()
    values = [float(r.actual_value or 0.0) for r in numeric]
    raw = numeric[-1].threshold
    threshold = float(raw) if raw is not None and math.isfinite(float(raw)) else None
    bounds = values + ([threshold] if threshold is not None else [])
    low, high = min(bounds), max(bounds)
    if high == low:
        low, high = low - 1, high + 1
    start, end = numeric[0].executed_at, numeric[-1].executed_at
    span = (end - start).total_seconds()
    width = Chart.WIDTH - Chart.LEFT - Chart.RIGHT
    height = Chart.HEIGHT - Chart.TOP - Chart.BOTTOM

    def x(i: int) -> float:
        if span > 0:
            fraction = (numeric[i].executed_at - start).total_seconds() / span
        else:
            fraction = i / (len(numeric) - 1) if len(numeric) > 1 else 0.5
        return round(Chart.LEFT + width * fraction, 1)

    def y(v: float) -> float:
        return round(Chart.TOP + height * (high - v) / (high - low), 1)

    coords = [(x(i), y(v)) for i, v in enumerate(values)]
    return Chart(
        points=" ".join(f"{px},{py}" for px, py in coords),
        last=coords[-1],
        threshold_y=y(threshold) if threshold is not None else None,
        threshold=threshold,
        low=low,
        high=high,
        start=start,
        end=end,
        count=len(values),
    )
