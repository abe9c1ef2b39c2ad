"""Settings > Usage in the browser: calls, tokens, cost, errors and latency over a period.

The charts are inline SVG drawn on the server (no script, no chart library); each has a title,
a description and the same numbers in a table beside it for screen readers and for copying.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from invocations import usage
from tenants.web import workspace_page

# The palette of static/css/app.css (--primary, --bad and a lighter primary).
BLUE, RED, LIGHT_BLUE = "#2563eb", "#dc2626", "#93c5fd"

LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 28


@dataclass(frozen=True, slots=True)
class Frame:
    """A chart's drawing area in viewBox units, and how many x-axis labels fit in it. The page
    draws each chart twice, wide and narrow, and CSS shows the one that fits: scaled down to a
    phone, the wide one's 11-unit text would be about 5 px high."""

    width: int
    height: int
    x_labels: int
    font_size: int


WIDE = Frame(width=720, height=220, x_labels=8, font_size=11)
NARROW = Frame(width=360, height=240, x_labels=4, font_size=13)  # about 1:1 on a 390 px phone


@dataclass(frozen=True, slots=True)
class Series:
    attr: str  # a Bucket attribute
    label: str
    color: str


def _nice_ticks(highest: int) -> list[int]:
    """0 and 2 to 5 evenly spaced round numbers (1, 2 or 5 times a power of ten) up to at least
    `highest`."""
    if highest <= 0:
        return [0, 1]
    raw = highest / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    top = math.ceil(highest / step) * step
    return list(range(0, top + step, step))


def _compact(n: int) -> str:
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".removesuffix(".0") + suffix
    return str(n)


def _bucket_label(bucket: usage.Bucket, *, hourly: bool, long: bool = False) -> str:
    """ "Nov 27" / "11月27日" (the language's MONTH_DAY_FORMAT, see config/formats), "14:00",
    or both for an hour's long label."""
    local = timezone.localtime(bucket.start)
    day = formats.date_format(local, "MONTH_DAY_FORMAT")
    if hourly:
        hour = formats.time_format(local, "H:i")
        return f"{day} {hour}" if long else hour
    return day


def _bar_chart(*, chart_id: str, **drawing: Any) -> dict[str, Any]:
    """A chart's wide drawing, whose keys it shares, and under "drawings" that one and a narrow
    one for phones."""
    wide = _draw_bars(chart_id=chart_id, frame=WIDE, **drawing)
    narrow = _draw_bars(chart_id=f"{chart_id}-narrow", frame=NARROW, **drawing)
    return {**wide, "drawings": [wide, narrow]}


def _draw_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    buckets: Sequence[usage.Bucket],
    series: Sequence[Series],
    hourly: bool,
    frame: Frame,
) -> dict[str, Any]:
    """Geometry for a stacked bar chart, one bar per bucket, `series` stacked bottom up."""
    plot_w, plot_h = frame.width - LEFT - RIGHT, frame.height - TOP - BOTTOM
    highest = max((sum(getattr(b, s.attr) for s in series) for b in buckets), default=0)
    ticks = _nice_ticks(highest)
    top = ticks[-1]
    slot = plot_w / max(len(buckets), 1)
    bar_w = max(slot * 0.7, 1)
    label_every = max(1, math.ceil(len(buckets) / frame.x_labels))
    baseline = TOP + plot_h
    bars, x_labels = [], []
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = baseline
        segments = []
        for s in series:
            value = getattr(bucket, s.attr)
            height = plot_h * value / top
            if value:
                y -= height
                segments.append({"y": round(y, 2), "height": round(height, 2), "fill": s.color})
        when = _bucket_label(bucket, hourly=hourly, long=True)
        parts = "; ".join(
            _("%(label)s: %(value)s") % {"label": s.label, "value": getattr(bucket, s.attr)}
            for s in series
        )
        bars.append(
            {
                "x": round(x, 2),
                "width": round(bar_w, 2),
                "segments": segments,
                "title": f"{when} — {parts}",
            }
        )
        if i % label_every == 0:
            x_labels.append(
                {"x": round(x + bar_w / 2, 2), "label": _bucket_label(bucket, hourly=hourly)}
            )
    y_ticks = [{"y": round(baseline - plot_h * t / top, 2), "label": _compact(t)} for t in ticks]
    return {
        "id": chart_id,
        "title": title,
        "description": description,
        "width": frame.width,
        "height": frame.height,
        "font_size": frame.font_size,
        "left": LEFT,
        "right": frame.width - RIGHT,
        "baseline": baseline,
        "label_y": frame.height - 8,
        "bars": bars,
        "x_labels": x_labels,
        "y_ticks": y_ticks,
        "legend": [{"label": s.label, "color": s.color} for s in series],
    }


@require_safe
@workspace_page
def usage_page(request: HttpRequest) -> HttpResponse:
    filters = usage.UsageFilters.from_params(request.GET)
    now = timezone.now()
    summary = usage.usage_summary(tenant=request.tenant, filters=filters, now=now)
    choices = usage.filter_choices(tenant=request.tenant)
    hourly = filters.hourly
    calls_chart = _bar_chart(
        chart_id="calls-chart",
        title=_("Calls per hour") if hourly else _("Calls per day"),
        description=_(
            "Stacked bars: calls that did not fail at the bottom, failed calls on top. "
            "The table after the charts has the same numbers."
        ),
        buckets=summary.buckets,
        series=[
            Series("succeeded_or_other", _("Calls without error"), BLUE),
            Series("errors", _("Failed calls"), RED),
        ],
        hourly=hourly,
    )
    tokens_chart = _bar_chart(
        chart_id="tokens-chart",
        title=_("Tokens per hour") if hourly else _("Tokens per day"),
        description=_(
            "Stacked bars: prompt tokens at the bottom, completion tokens on top. "
            "The table after the charts has the same numbers."
        ),
        buckets=summary.buckets,
        series=[
            Series("prompt_tokens", _("Prompt tokens"), BLUE),
            Series("completion_tokens", _("Completion tokens"), LIGHT_BLUE),
        ],
        hourly=hourly,
    )
    providers = list(choices.providers)
    if filters.provider and filters.provider not in providers:
        providers.append(filters.provider)
    models = list(choices.models)
    if filters.model and filters.model not in models:
        models.append(filters.model)
    bucket_rows = [
        {"label": _bucket_label(b, hourly=hourly, long=True), "bucket": b} for b in summary.buckets
    ]
    return render(
        request,
        "settings/usage.html",
        {
            "filters": filters,
            "periods": [
                ("24h", _("Last 24 hours")),
                ("7d", _("Last 7 days")),
                ("30d", _("Last 30 days")),
            ],
            "no_api_key": usage.NO_API_KEY,
            "providers": providers,
            "models": models,
            "api_keys": choices.api_keys,
            "summary": summary,
            "total": summary.total,
            "charts": [calls_chart, tokens_chart],
            "bucket_rows": bucket_rows,
            "recent": usage.recent_invocations(tenant=request.tenant, filters=filters, now=now),
        },
    )
