"""The README's settings tables, generated from the knob declarations (`shared.settings.KNOBS`).

`python -m numerai_assets.shared.settings_doc README.md` rewrites the tables between the two
marker lines; `tests/numerai_assets/test_settings.py` fails when the README differs from them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from model_core.knobs import Knob
from numerai_assets.shared.settings import GROUPS, KNOBS, env_var

BEGIN = "<!-- settings tables: generated from the knob declarations by `python -m numerai_assets.shared.settings_doc README.md` -->"
END = "<!-- end of the generated settings tables -->"


def shown_default(knob: Knob) -> str:
    """The README's "default" cell."""
    if knob.shown is not None:
        return knob.shown
    value = knob.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == () or value == "":
        return "empty"
    return f"`{value}`"


def tables() -> str:
    """Markdown: one table per group, in GROUPS order."""
    parts = []
    for group, title in GROUPS.items():
        rows = [f"| `{env_var(k)}` | {shown_default(k)} | {k.doc} |" for k in KNOBS if k.group == group]
        parts.append("\n".join([f"{title}:", "", "| variable | default | meaning |", "|---|---|---|", *rows]))
    return "\n\n".join(parts)


def generated_section(readme: str) -> str:
    """The text between the markers of `readme` (ValueError when they are missing)."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"the README has no generated settings section (lines {BEGIN!r} ... {END!r})")
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def rewrite(readme: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{tables()}\n\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:] or ["README.md"])[0])
    path.write_text(rewrite(path.read_text()))
    print(f"{path}: settings tables rewritten ({len(KNOBS)} settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
