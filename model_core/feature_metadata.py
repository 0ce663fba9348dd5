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
        """The features of a named set (`small`, `medium`, `all`, `quantum`, a group such as
        `serenity`) or of several, comma-separated (`medium,quantum`): their union, in the order of
        `all` (the files' column order), so the same sets always give the same model input."""
        names = feature_set_names(feature_set)
        unknown = self.unknown_sets(feature_set)
        if unknown:
            choices = ", ".join(sorted(self.feature_sets))
            raise DataContractError(
                f"unknown feature set(s) {', '.join(repr(u) for u in unknown)}; features.json has: {choices}"
            )
        if len(names) == 1:
            return list(self.feature_sets[names[0]])
        wanted = dict.fromkeys(f for name in names for f in self.feature_sets[name])
        in_all = [f for f in self.all_features() if f in wanted]
        seen = set(in_all)
        return in_all + [f for f in wanted if f not in seen]  # a set's features outside `all` come last

    def unknown_sets(self, feature_set: str) -> list[str]:
        """The names of `feature_set` (one or comma-separated) that features.json does not offer."""
        return [name for name in feature_set_names(feature_set) if name not in self.feature_sets]

    def all_features(self) -> list[str]:
        """The set `all`; without one, every feature of any set (sorted)."""
        return list(
            self.feature_sets.get("all") or sorted({f for fs in self.feature_sets.values() for f in fs})
        )

    def groups(self) -> dict[str, list[str]]:
        """The feature groups present (the 8 named groups of v5.x)."""
        return {g: self.feature_sets[g] for g in schema.FEATURE_GROUPS if g in self.feature_sets}


def feature_set_names(feature_set: str) -> list[str]:
    """`"medium, quantum"` -> `["medium", "quantum"]` (NUMERAI_FEATURE_SET may name several sets)."""
    names = [name.strip() for name in feature_set.split(",")]
    if not all(names):
        raise DataContractError(f"feature set {feature_set!r}: an empty name in the list")
    return list(dict.fromkeys(names))


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
