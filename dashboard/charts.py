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

GRIDLINES = 4


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
    def percent_label(self) -> str:
        return "<1%" if self.used and self.percent == 0 else f"{self.percent}%"

    @property
    def level(self) -> str:
        """``ok`` below 80%, ``warn`` from 80%, ``over`` at or past the limit."""
        if self.percent >= 100:
            return "over"
        return "warn" if self.percent >= 80 else "ok"


def _nice_step(value: float) -> int:
    """The smallest 1, 2 or 5 x 10^n at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= value)


def _number(value: int) -> str:
    return f"{value:,}"


def bar_chart(groups: Sequence[Group], *, title: str, description: str) -> SafeString:
    """Grouped, stacked vertical bars over gridlines at round values."""
    width, height = 760, 220
    left, right, top, bottom = 48, 8, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    tallest = max((sum(s.value for s in bar) for g in groups for bar in g.bars), default=0)
    ceiling = _nice_step(tallest / GRIDLINES) * GRIDLINES

    parts: list[SafeString] = []
    for i in range(GRIDLINES + 1):
        value = ceiling * i // GRIDLINES
        y = top + plot_h - plot_h * i / GRIDLINES
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
            base: float = top + plot_h
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


def meter_bar(meter: Meter) -> SafeString:
    """A thin used-of-limit bar; its accessible name states the figures."""
    share = min(meter.used / meter.limit, 1.0) if meter.limit > 0 else float(bool(meter.used))
    width = max(share * 100, 0.8) if meter.used else 0  # a sliver shows that something is used
    return format_html(
        '<svg class="chart meter-bar" viewBox="0 0 100 8" preserveAspectRatio="none" '
        'role="img" aria-label="{}: {} of {} ({})">'
        '<rect class="meter-track" width="100" height="8" rx="1.5" ry="4"></rect>'
        '<rect class="meter-fill {}" width="{}" height="8" rx="1.5" ry="4"></rect></svg>',
        meter.label,
        _number(meter.used),
        _number(meter.limit),
        meter.percent_label,
        meter.level,
        f"{width:.2f}",
    )


def _slug(text: str) -> str:
    return "chart-" + "".join(c if c.isalnum() else "-" for c in text.lower())[:40]
