"""The `postgres` marker: tests that need the server `make test-postgres` starts.

They are deselected unless the marker expression names them (`pytest -m postgres`, which
deploy/test_postgres.sh runs after starting the server), so the default `make test` skips them
without failing or counting them as skipped.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: needs the PostgreSQL server of `make test-postgres` (deselected otherwise)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "postgres" in (config.getoption("markexpr", "") or ""):
        return
    deselected = [item for item in items if item.get_closest_marker("postgres")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]
