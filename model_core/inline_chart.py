"""Line charts small enough to travel as a short markdown string: an SVG image in a data URI.

Why so small: a markdown value shows in place only while it is short (Dagster's UI expands one
of fewer than 1,000 characters on the asset page; a longer one, such as any PNG in base64, sits
behind a link). So the chart spends as few characters as SVG allows:
- each panel's lines live in a nested <svg> whose viewBox is the data grid (x = point index,
  y = value quantised to PANEL_HEIGHT steps), so a point is a small relative step (`1,-3`);
- one <style> rule gives every line its look (no fill, a stroke that does not scale with the grid);
- the y range is written in the panel's title, the x range once under the panels;
- only the characters a data URI in a markdown link cannot hold are percent-encoded.
A series with more points than the budget allows is thinned evenly (first and last kept).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from urllib.parse import quote
from xml.sax.saxutils import escape

COLOURS = ("steelblue", "darkorange", "seagreen", "firebrick", "purple")
WIDTH = 360  # pixels
PANEL_HEIGHT = 40  # pixels of lines per panel; also the y resolution
TITLE_HEIGHT = 12
AXIS_HEIGHT = 11
FONT_SIZE = 9
MIN_POINTS = 2
STYLE = "<style>path{fill:none;vector-effect:non-scaling-stroke}</style>"
# Kept as they are in the data URI; everything else (<, >, spaces, #, parentheses) is encoded.
URI_SAFE = "/:=',.;-_!*~{}"


@dataclasses.dataclass(frozen=True)
class Panel:
    """One chart area: its title and its series (name -> values, one per x; NaN is skipped)."""

    title: str
    series: Mapping[str, Sequence[float]]
    marker: int | None = None  # an x index to mark with a vertical line (e.g. the best epoch)


def chart_markdown(alt: str, panels: Sequence[Panel], x_range: str, max_chars: int) -> str:
    """`![alt](data:image/svg+xml,...)` of the panels stacked over `x_range`, at most `max_chars`
    long: series are thinned until it fits. ValueError when two points per series do not fit."""
    _check(panels)
    points = max(len(values) for panel in panels for values in panel.series.values())
    while True:
        svg = quote(chart_svg(panels, x_range, points), safe=URI_SAFE)
        text = f"![{_markdown_alt(alt)}](data:image/svg+xml,{svg})"
        if len(text) <= max_chars:
            return text
        if points <= MIN_POINTS:
            raise ValueError(
                f"chart {alt!r} takes {len(text)} characters even with {MIN_POINTS} points per "
                f"series, over the {max_chars} allowed: give it fewer panels or series"
            )
        points = max(MIN_POINTS, int(points * 0.8))


def chart_svg(panels: Sequence[Panel], x_range: str, max_points: int) -> str:
    """The SVG document: the panels one under the other, the x range under them."""
    height = len(panels) * (TITLE_HEIGHT + PANEL_HEIGHT) + AXIS_HEIGHT
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' font-size='{FONT_SIZE}'>"
    ]
    parts.append(STYLE)
    for i, panel in enumerate(panels):
        parts += _panel(panel, i * (TITLE_HEIGHT + PANEL_HEIGHT), max_points)
    parts.append(f"<text x='0' y='{height - 1}'>{escape(x_range)}</text></svg>")
    return "".join(parts)


def _panel(panel: Panel, top: int, max_points: int) -> list[str]:
    finite = [v for values in panel.series.values() for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    title = f"{panel.title} {_number(low)}..{_number(high)}" if finite else f"{panel.title}: no values"
    parts = [f"<text x='0' y='{top + TITLE_HEIGHT - 3}'>{escape(title)}</text>"]
    if len(panel.series) > 1:  # a legend: each name in its line's colour, right-aligned
        x = WIDTH
        for colour, name in reversed(list(zip(COLOURS, panel.series, strict=False))):
            parts.append(
                f"<text x='{x}' y='{top + TITLE_HEIGHT - 3}' text-anchor='end' fill='{colour}'>{escape(name)}</text>"
            )
            x -= 6 * len(name) + 8
    count = max(len(values) for values in panel.series.values())
    parts.append(
        f"<svg y='{top + TITLE_HEIGHT}' width='{WIDTH}' height='{PANEL_HEIGHT}' "
        f"viewBox='0 0 {max(count - 1, 1)} {PANEL_HEIGHT}' preserveAspectRatio='none'>"
    )
    if panel.marker is not None and 0 <= panel.marker < count:
        parts.append(f"<path d='M{panel.marker},0v{PANEL_HEIGHT}' stroke='silver'/>")
    span = high - low
    for colour, values in zip(COLOURS, panel.series.values(), strict=False):
        grid = [
            (i, round((PANEL_HEIGHT - 1) * (high - values[i]) / span) if span > 0 else PANEL_HEIGHT // 2)
            for i in _thin(len(values), max_points)
            if math.isfinite(values[i])
        ]
        if len(grid) >= 2:
            parts.append(f"<path d='{_path(grid)}' stroke='{colour}'/>")
    parts.append("</svg>")
    return parts


def _thin(count: int, max_points: int) -> list[int]:
    """At most max_points indexes of 0..count-1, evenly spread, first and last kept."""
    if count <= max_points:
        return list(range(count))
    return sorted({round(i * (count - 1) / (max_points - 1)) for i in range(max_points)})


def _path(points: list[tuple[int, int]]) -> str:
    """`M x,y` then relative line-tos; a minus sign separates numbers by itself."""
    (x0, y0), steps = points[0], []
    for (xa, ya), (xb, yb) in itertools.pairwise(points):
        dy = yb - ya
        steps.append(f"{xb - xa}{dy}" if dy < 0 else f"{xb - xa},{dy}")
    return f"M{x0},{y0}l" + ",".join(steps)


def _number(value: float) -> str:
    return f"{value:.3g}"


def _markdown_alt(alt: str) -> str:
    return alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _check(panels: Sequence[Panel]) -> None:
    if not panels:
        raise ValueError("a chart needs at least one panel")
    for panel in panels:
        if not panel.series:
            raise ValueError(f"panel {panel.title!r} has no series")
        empty = [name for name, values in panel.series.items() if len(values) == 0]
        if empty:
            raise ValueError(f"panel {panel.title!r}: series {empty} have no values")
