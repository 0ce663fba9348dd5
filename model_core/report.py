"""Reports as text: markdown pieces for Dagster metadata, and one self-contained HTML page.

The page carries everything inline (CSS in a <style> block, images as base64 data URIs) and
refers to nothing outside itself, so it can be stored as an asset, mailed, or opened offline.
Every string that comes from the caller is HTML-escaped: era names, model names and titles
are data, not markup.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
from collections.abc import Sequence

import numpy as np

NAN_TEXT = "–"
FLOAT_DIGITS = 4

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
figure { margin: 0.8em 0; } figcaption { font-size: 0.85em; color: #555; }
p { white-space: pre-wrap; }
"""


@dataclasses.dataclass(frozen=True)
class ReportSection:
    heading: str
    text: str = ""
    images: Sequence[tuple[str, bytes]] = ()  # (caption, PNG bytes)
    tables: Sequence[tuple[Sequence[str], Sequence[Sequence[object]]]] = ()  # (header, rows)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_image(png: bytes, alt: str) -> str:
    """An inline markdown image: Dagster's markdown metadata renders it without a file."""
    safe_alt = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"![{safe_alt}]({png_data_uri(png)})"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; floats to 4 decimals, NaN as "–"."""
    _check_rows(header, rows)
    lines = [
        "| " + " | ".join(_markdown_cell(h) for h in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_markdown_cell(format_cell(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_html(title: str, sections: Sequence[ReportSection]) -> str:
    """One self-contained HTML page: inline CSS, images as data URIs, every string escaped."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<section>\n<h2>{html.escape(section.heading)}</h2>")
        if section.text:
            body.append(f"<p>{html.escape(section.text)}</p>")
        for header, rows in section.tables:
            body.append(_html_table(header, rows))
        for caption, png in section.images:
            alt = html.escape(caption, quote=True)
            body.append(
                f'<figure><img src="{png_data_uri(png)}" alt="{alt}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def format_cell(value: object) -> str:
    """Floats to FLOAT_DIGITS decimals, NaN / None as NAN_TEXT, anything else as str()."""
    if value is None:
        return NAN_TEXT
    if isinstance(value, float | np.floating):
        return NAN_TEXT if math.isnan(value) else f"{value:.{FLOAT_DIGITS}f}"
    return str(value)


def _markdown_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _check_rows(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        raise ValueError(
            f"table rows {bad[:5]} do not have {len(header)} cells like the header {list(header)}"
        )


def _html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    _check_rows(header, rows)
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    lines = [f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>"]
    for row in rows:
        lines.append("<tr>" + "".join(f"<td>{html.escape(format_cell(c))}</td>" for c in row) + "</tr>")
    lines.append("</tbody>\n</table>")
    return "\n".join(lines)
