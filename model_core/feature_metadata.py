"""features.json: the feature sets and the target names of a dataset version."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from model_core import schema
from model_core.errors import DataContractError


@dataclasses.dataclass(frozen=True)
class FeatureMetadata:
    feature_sets: dict[str, list[str]]
    targets: list[str]

    def features(self, feature_set: str) -> list[str]:
        """The features of a named set (`small`, `medium`, `all`, or a group such as `serenity`)."""
        if feature_set not in self.feature_sets:
            choices = ", ".join(sorted(self.feature_sets))
            raise DataContractError(f"unknown feature set {feature_set!r}; features.json has: {choices}")
        return list(self.feature_sets[feature_set])

    def groups(self) -> dict[str, list[str]]:
        """The feature groups present (the 8 named groups of v5.x)."""
        return {g: self.feature_sets[g] for g in schema.FEATURE_GROUPS if g in self.feature_sets}


def load_feature_metadata(path: Path) -> FeatureMetadata:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataContractError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise DataContractError(f"{path}: not valid JSON (truncated?): {err}") from None
    sets = raw.get(schema.FEATURE_SETS_KEY) if isinstance(raw, dict) else None
    if not isinstance(sets, dict) or not sets:
        raise DataContractError(f"{path}: missing or empty key {schema.FEATURE_SETS_KEY!r}")
    for name, members in sets.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise DataContractError(f"{path}: feature set {name!r} is not a list of column names")
    targets = raw.get(schema.TARGETS_KEY, [schema.MAIN_TARGET])
    if schema.MAIN_TARGET not in targets:
        targets = [schema.MAIN_TARGET, *targets]
    return FeatureMetadata(feature_sets={k: list(v) for k, v in sets.items()}, targets=list(targets))
