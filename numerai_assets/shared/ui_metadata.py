"""Metadata in the forms the Dagster UI shows in place on an asset page (checked in a browser
against dagster-webserver 1.13.27, see the README's "What the UI shows"):

- a table (`MetadataValue.table`) is drawn as a table, whatever its length;
- a markdown value is rendered only while it is shorter than 1,000 characters (the UI's
  MetadataEntry: `expandSmallValues && mdStr.length < 1000`); a longer one, such as any PNG
  embedded in base64, is a "[Show Markdown]" link to a dialog (where the PNG does show).
So the charts here are compact SVG data URIs (model_core.inline_chart) under that limit, and
the detailed PNGs stay behind the link and in the HTML report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import dagster as dg

from model_core.inline_chart import Panel, chart_markdown

INLINE_MARKDOWN_CHARS = 999  # the UI expands a markdown value of fewer than 1,000 characters
FLOAT_DIGITS = 5


def inline_chart(alt: str, panels: Sequence[Panel], x_range: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(chart_markdown(alt, panels, x_range, INLINE_MARKDOWN_CHARS))


def table(rows: Sequence[Mapping[str, object]], columns: Mapping[str, str]) -> dg.MetadataValue:
    """A table of `rows` (dicts) with `columns` (name -> Dagster type: string, int, float, bool);
    floats rounded for reading, NaN shown empty, missing columns empty."""
    records = [dg.TableRecord({name: _cell(row.get(name)) for name in columns}) for row in rows]
    return dg.MetadataValue.table(records, schema=dg.TableSchema.from_name_type_dict(dict(columns)))


def era_span(eras: Sequence[str]) -> str:
    """`first..last (count)`, the way every era range is written in this project's metadata."""
    if not eras:
        return "none"
    return f"{eras[0]}..{eras[-1]} ({len(eras)})"


def _cell(value: object) -> object:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, FLOAT_DIGITS)
    return value


def era_score_table(scores: Sequence[object], columns: Mapping[str, str]) -> dg.MetadataValue:
    """One row per era: `columns` maps a column name to the attribute (EraScores) or key
    (warehouse row dict) it shows; `era` and `split` are strings, `in_sample` a bool, every other column a float."""
    rows = [
        {
            name: score.get(attr) if isinstance(score, Mapping) else getattr(score, attr)
            for name, attr in columns.items()
        }
        for score in scores
    ]
    kinds = {"era": "string", "split": "string", "in_sample": "bool"}
    types = {name: kinds.get(attr, "float") for name, attr in columns.items()}
    return table(rows, types)
