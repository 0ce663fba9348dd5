"""Inline charts: valid SVG in a data URI, within the character budget, thinned to fit."""

import math
import re
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import numpy as np
import pytest

from model_core.inline_chart import Panel, chart_markdown

SVG_NS = "{http://www.w3.org/2000/svg}"


def _svg(markdown: str) -> ET.Element:
    match = re.fullmatch(r"!\[(?:\\.|[^\]\\])*\]\(data:image/svg\+xml,([^()\s]+)\)", markdown)
    assert match, markdown[:80]
    return ET.fromstring(unquote(match.group(1)))


def _points(path_d: str) -> int:
    """Points of an `M x,y l dx,dy ...` path."""
    numbers = re.findall(r"-?\d+", path_d)
    return len(numbers) // 2


def test_a_short_series_is_drawn_whole_with_its_range_and_marker():
    values = [0.01, 0.02, 0.015, 0.03]
    text = chart_markdown("curve", [Panel("validation CORR", {"v": values}, marker=3)], "epochs 1..4", 999)
    svg = _svg(text)
    texts = [t.text for t in svg.iter(f"{SVG_NS}text")]
    assert "validation CORR 0.01..0.03" in texts and "epochs 1..4" in texts
    paths = [p.get("d") for p in svg.iter(f"{SVG_NS}path") if p.get("stroke") == "steelblue"]
    assert [_points(d) for d in paths] == [4]
    assert any(p.get("d") == "M3,0v40" for p in svg.iter(f"{SVG_NS}path"))  # the marker at index 3
    # The highest value is at the top of the grid (y 0), the lowest at the bottom (y 39).
    assert paths[0].startswith("M0,39l")


def test_long_series_are_thinned_to_the_budget():
    rng = np.random.default_rng(0)
    series = {name: list(np.cumsum(rng.normal(size=600))) for name in ("ensemble", "lgbm")}
    text = chart_markdown("cumulative", [Panel("cumulative CORR", series)], "eras 0001..0600", 999)
    assert len(text) <= 999
    svg = _svg(text)
    drawn = [_points(p.get("d")) for p in svg.iter(f"{SVG_NS}path")]
    assert len(drawn) == 2 and all(10 <= n < 600 for n in drawn)
    legend = {t.text: t.get("fill") for t in svg.iter(f"{SVG_NS}text") if t.get("fill")}
    assert legend == {"ensemble": "steelblue", "lgbm": "darkorange"}


def test_nan_values_are_skipped_and_text_is_escaped():
    text = chart_markdown("a <b> & [c]", [Panel("x & y (z)", {"s": [1.0, math.nan, 2.0, 3.0]})], "r", 999)
    assert text.startswith(r"![a <b> & \[c\]](data:image/svg+xml,")
    svg = _svg(text)
    assert next(t.text for t in svg.iter(f"{SVG_NS}text")) == "x & y (z) 1..3"
    [line] = [p.get("d") for p in svg.iter(f"{SVG_NS}path")]
    assert _points(line) == 3


def test_a_budget_too_small_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="over the 200 allowed"):
        chart_markdown("c", [Panel("p", {"s": [1.0, 2.0]}), Panel("q", {"s": [1.0, 2.0]})], "r", 200)
    with pytest.raises(ValueError, match=r"series \[.s.\] have no values"):
        chart_markdown("c", [Panel("p", {"s": []})], "r", 999)
