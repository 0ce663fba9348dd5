"""Small helpers to turn results into Dagster metadata a person can read."""

from __future__ import annotations

import polars as pl


def markdown_table(frame: pl.DataFrame, digits: int = 4) -> str:
    """A markdown table of a small frame (floats rounded), for MetadataValue.md."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.iter_rows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
