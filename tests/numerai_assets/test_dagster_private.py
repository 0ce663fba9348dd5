"""The fence around Dagster's private API: one module, the pinned dagster, every name still there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dagster
import pytest

from numerai_assets.shared import dagster_private

ROOT = Path(__file__).resolve().parents[2]
FENCE = ROOT / "numerai_assets" / "shared" / "dagster_private.py"


def _pin(path: Path) -> str:
    found = re.findall(r'^\s*"?dagster==([\w.]+)"?,?\s*$', path.read_text(), flags=re.MULTILINE)
    assert len(found) == 1, f"{path}: expected one dagster==<version> line, found {found}"
    return found[0]


def test_the_installed_dagster_is_the_pinned_one():
    pinned = _pin(ROOT / "constraints.txt")
    assert _pin(ROOT / "pyproject.toml") == pinned, (
        "constraints.txt and pyproject.toml pin different dagsters"
    )
    assert dagster.__version__ == pinned, (
        f"dagster {dagster.__version__} is installed, but {pinned} is pinned (constraints.txt). "
        f"numerai_assets/shared/dagster_private.py uses Dagster's private API as of {pinned}: install the "
        "pin (make setup), or, to move the pin, re-check every entry of PRIVATE_NAMES against the new "
        "release (a public API may exist by then) and run the backfill and status tests."
    )


@pytest.mark.parametrize("name", sorted(dagster_private.PRIVATE_NAMES))
def test_every_private_name_resolves_and_says_why(name):
    module, why = dagster_private.PRIVATE_NAMES[name]
    assert module.startswith("dagster._") and len(why) > 20
    assert getattr(dagster_private, name) is not None, f"{module}.{name} is gone from this dagster"


def test_an_unlisted_name_is_refused():
    with pytest.raises(AttributeError, match="PRIVATE_NAMES"):
        _ = dagster_private.execute_job


def test_only_the_fence_imports_dagster_private_modules():
    offenders = []
    for path in sorted((ROOT / "numerai_assets").rglob("*.py")):
        if path == FENCE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("dagster._")]
    assert not offenders, "import these through numerai_assets.shared.dagster_private: " + "; ".join(
        offenders
    )
