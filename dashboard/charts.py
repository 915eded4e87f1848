"""Server-rendered SVG charts for the dashboard.

The dashboard's CSP forbids inline styles, so colours come from classes in ``dashboard.css``
(``.chart .bar``, ``.bar.ok``, ``.bar.fail``...) and geometry from SVG attributes. Every chart is
an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that state its figures; pages also
show them as text or in a table. Every text is escaped (``format_html``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


@dataclass(frozen=True)
class Segment:
    value: int
    css: str  # classes of the rect: "bar", "bar ok", "bar fail", "bar alt"
    label: str  # what the value counts, for the tooltip ("emails sent")


@dataclass(frozen=True)
class Group:
    """One x-axis position (a day): bars side by side, each a stack of segments."""

    label: str
    bars: Sequence[Sequence[Segment]]


@dataclass(frozen=True)
class Meter:
    label: str
    used: int
    limit: int

    @property
    def percent(self) -> int:
        """Used share of the limit, rounded down (100 only when fully used); 0 if no limit."""
        if self.limit <= 0:
            return 100 if self.used else 0
        return math.floor(100 * self.used / self.limit)

    @property
    def level(self) -> str:
        """``ok`` below 80%, ``warn`` from 80%, ``over`` at or past the limit."""
        if self.percent >= 100:
            return "over"
        return "warn" if self.percent >= 80 else "ok"


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 x 10^n at or above ``value`` (at least 4), for round gridlines."""
    value = max(value, 4)
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # unreachable


def _number(value: int) -> str:
    return f"{value:,}"


def bar_chart(groups: Sequence[Group], *, title: str, description: str) -> SafeString:
    """Grouped, stacked vertical bars with four gridlines (0 to a round maximum)."""
    width, height = 640, 240
    left, right, top, bottom = 44, 8, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    tallest = max((sum(s.value for s in bar) for g in groups for bar in g.bars), default=0)
    ceiling = _nice_ceiling(tallest)

    parts: list[SafeString] = []
    for i in range(5):
        value = ceiling * i // 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            format_html(
                '<line class="grid-line" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
                '<text x="{}" y="{}" text-anchor="end">{}</text>',
                left,
                width - right,
                f"{y:.1f}",
                f"{y:.1f}",
                left - 6,
                f"{y + 4:.1f}",
                _number(value),
            )
        )

    slot = plot_w / max(len(groups), 1)
    bars_per_group = max((len(g.bars) for g in groups), default=1)
    bar_w = min(28.0, slot * 0.7 / bars_per_group)
    for index, group in enumerate(groups):
        x0 = left + slot * index + (slot - bar_w * len(group.bars)) / 2
        for b, bar in enumerate(group.bars):
            x = x0 + b * bar_w
            base = top + plot_h
            for segment in bar:
                if segment.value <= 0:
                    continue
                h = max(1.0, plot_h * segment.value / ceiling)
                base -= h
                parts.append(
                    format_html(
                        '<rect class="{}" x="{}" y="{}" width="{}" height="{}" rx="2">'
                        "<title>{}: {} {}</title></rect>",
                        segment.css,
                        f"{x + 1:.1f}",
                        f"{base:.1f}",
                        f"{bar_w - 2:.1f}",
                        f"{h:.1f}",
                        group.label,
                        _number(segment.value),
                        segment.label,
                    )
                )
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle">{}</text>',
                f"{left + slot * index + slot / 2:.1f}",
                height - 8,
                group.label,
            )
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        width,
        height,
        _slug(title),
        _slug(title),
        _slug(title),
        title,
        _slug(title),
        description,
        format_html_join("", "{}", ((part,) for part in parts)),
    )


def meter_chart(meters: Sequence[Meter], *, title: str) -> SafeString:
    """Horizontal used-of-limit bars, one row per meter, with the figures written beside."""
    width, row_h = 640, 54
    height = row_h * len(meters)
    rows = []
    for index, meter in enumerate(meters):
        y = index * row_h
        share = min(meter.used / meter.limit, 1.0) if meter.limit > 0 else float(bool(meter.used))
        rows.append(
            format_html(
                '<text class="meter-label" x="0" y="{}">{}</text>'
                '<text class="meter-figure" x="{}" y="{}" text-anchor="end">{} of {} ({}%)</text>'
                '<rect class="meter-track" x="0" y="{}" width="{}" height="14" rx="7"></rect>'
                '<rect class="meter-fill {}" x="0" y="{}" width="{}" height="14" rx="7"></rect>',
                y + 16,
                meter.label,
                width,
                y + 16,
                _number(meter.used),
                _number(meter.limit),
                meter.percent,
                y + 26,
                width,
                meter.level,
                y + 26,
                f"{width * share:.1f}",
            )
        )
    description = "; ".join(
        f"{m.label}: {_number(m.used)} of {_number(m.limit)} ({m.percent}%)" for m in meters
    )
    return format_html(
        '<svg class="chart meter-chart" viewBox="0 0 {} {}" role="img" '
        'aria-labelledby="{}-title {}-desc"><title id="{}-title">{}</title>'
        '<desc id="{}-desc">{}</desc>{}</svg>',
        width,
        height,
        _slug(title),
        _slug(title),
        _slug(title),
        title,
        _slug(title),
        description,
        format_html_join("", "{}", ((row,) for row in rows)),
    )


def _slug(text: str) -> str:
    return "chart-" + "".join(c if c.isalnum() else "-" for c in text.lower())[:40]
