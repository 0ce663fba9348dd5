"""The code location under default settings, against a committed snapshot.

Every asset (group, partitions, deps, kinds, pool, op tags, resources, backfill policy), asset
check, job, schedule, sensor, resource and the executor: a move that drops, renames or rewires one
fails here. After a deliberate change, rewrite the snapshot and review its diff:

    UPDATE_DEFS_SNAPSHOT=1 .venv/bin/pytest tests/numerai_assets/test_defs.py
"""

from __future__ import annotations

import ast
import difflib
import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).with_name("defs_snapshot.json")
PACKAGE = Path(__file__).resolve().parents[2] / "numerai_assets"
MAX_ASSET_BODY_LINES = 25  # unpack settings, call the stage's helper or model_core, return metadata


def describe(defs: dg.Definitions) -> dict:
    """What a move must not change, as plain JSON values."""
    repo = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": node.partitions_def.name if node.partitions_def else None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "kinds": sorted(node.kinds),
            "pools": sorted(node.pools or []),
            "op_tags": {k: str(v) for k, v in sorted((node.assets_def.op.tags or {}).items())},
            "resources": sorted(node.assets_def.required_resource_keys),
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
        }
    return {
        "assets": assets,
        "checks": {
            key.to_user_string(): {"blocking": graph.get_check_spec(key).blocking}
            for key in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string())
        },
        "jobs": {
            job.name: {
                "assets": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
                "executor": job.executor_def.name,
                "partitions": job.partitions_def.name if job.partitions_def else None,
                "tags": {k: str(v) for k, v in sorted((job.tags or {}).items())},
            }
            for job in sorted(repo.get_all_jobs(), key=lambda j: j.name)
            if not job.name.startswith("__ASSET_JOB")
        },
        "schedules": {
            s.name: {
                "job": s.job_name,
                "cron": s.cron_schedule,
                "timezone": s.execution_timezone,
                "default_status": s.default_status.value,
            }
            for s in repo.schedule_defs
        },
        "sensors": {
            s.name: {
                "jobs": sorted(j.name for j in s.jobs) if s.has_jobs else [],
                "run_status_sensor": isinstance(s, dg.RunStatusSensorDefinition),
                "interval_s": s.minimum_interval_seconds,
                "default_status": s.default_status.value,
                "resources": sorted(s.required_resource_keys),
            }
            for s in repo.sensor_defs
        },
        "resources": sorted(defs.resources),
        "executor": defs.executor.name,
    }


def test_code_location_matches_the_snapshot(monkeypatch, tmp_path):
    for name in [n for n in os.environ if n.startswith("NUMERAI_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env: the defaults
    from numerai_assets.definitions import build_definitions
    from numerai_assets.shared.settings import load_settings

    text = json.dumps(describe(build_definitions(load_settings())), indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_DEFS_SNAPSHOT"):
        SNAPSHOT.write_text(text)
    expected = SNAPSHOT.read_text()
    diff = "\n".join(
        difflib.unified_diff(expected.splitlines(), text.splitlines(), "snapshot", "now", lineterm="")
    )
    assert text == expected, f"the code location differs from {SNAPSHOT.name}:\n{diff}"


def _asset_bodies():
    """(where, lines) of every function decorated as an asset, multi-asset or asset check."""
    kinds = {"asset", "multi_asset", "asset_check"}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            names = {
                ast.unparse(d.func if isinstance(d, ast.Call) else d).split(".")[-1]
                for d in node.decorator_list
            }
            if not names & kinds:
                continue
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            yield f"{path.relative_to(PACKAGE.parent)}:{node.name}", body[-1].end_lineno - body[0].lineno + 1


def test_asset_bodies_are_short():
    bodies = dict(_asset_bodies())
    assert len(bodies) >= 12, sorted(bodies)  # the walk found the assets
    long = {where: n for where, n in bodies.items() if n > MAX_ASSET_BODY_LINES}
    assert not long, (
        f"asset bodies over {MAX_ASSET_BODY_LINES} lines (move the work into the stage's helper): {long}"
    )
