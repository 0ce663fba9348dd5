"""The dataset versions the simulator writes, and what sets them apart.

Both are the same tournament (same eras, ids, targets, and the same values for the features they
share); v5.3 adds the feature set `quantum` (new features, null in the early eras) and has
benchmark models of its own.
"""

from __future__ import annotations

import dataclasses

QUANTUM_SET = "quantum"  # the feature set of features.json that v5.3 adds


@dataclasses.dataclass(frozen=True)
class DataVersion:
    name: str  # "v5.3": the directory and the prefix numerapi names files with
    benchmark_models: tuple[str, ...]  # columns of the validation and live benchmark files
    quantum: bool  # whether it has the `quantum` features


VERSIONS: dict[str, DataVersion] = {
    version.name: version
    for version in (
        DataVersion("v5.2", ("v52_lgbm_ender20", "v52_lgbm_ender60"), quantum=False),
        DataVersion("v5.3", ("v53_lgbm_ender20", "v53_lgbm_ender60"), quantum=True),
    )
}
LATEST_VERSION = "v5.3"  # what `sim generate` writes unless told otherwise


def resolve_version(name: str) -> DataVersion:
    if name not in VERSIONS:
        raise ValueError(f"unknown dataset version {name!r}: the simulator writes {', '.join(VERSIONS)}")
    return VERSIONS[name]
