"""The Numerai data contract (v5.x layout), as named constants.

Everything that reads or writes tournament files refers to columns and files through these
names, never through literals or positions, so the contract lives in one place.
"""

from __future__ import annotations

import re

# The version the benches and model_core tests were measured on. Not the service's default: that
# is NUMERAI_DATASET_VERSION=latest, the newest version the API offers.
DEFAULT_DATASET_VERSION = "v5.2"

# Columns. `id` is the pandas index of the real files; polars and pyarrow see it as a column.
ID = "id"
ERA = "era"
DATA_TYPE = "data_type"
FEATURE_PREFIX = "feature_"
TARGET_PREFIX = "target"
MAIN_TARGET = "target"  # alias of target_ender_20 in v5.x; never null in train/validation
META_MODEL_COLUMN = "numerai_meta_model"
PREDICTION = "prediction"

# data_type values. Validation rows whose targets are not resolved yet carry another value.
DATA_TYPE_TRAIN = "train"
DATA_TYPE_VALIDATION = "validation"
DATA_TYPE_LIVE = "live"
SCORED_DATA_TYPES = (DATA_TYPE_TRAIN, DATA_TYPE_VALIDATION)

# Feature values: five equal-count bins within the era, stored as int8.
FEATURE_MIN = 0
FEATURE_MAX = 4
FEATURE_NEUTRAL = 2  # the value a feature takes in an era where it was not available
N_FEATURE_VALUES = FEATURE_MAX - FEATURE_MIN + 1
MISSING = -1  # our cleaned encoding of a null or unavailable feature value (its own category)

TARGET_VALUES_5 = (0.0, 0.25, 0.5, 0.75, 1.0)

# Files per dataset version, as numerapi names them ("v5.2/train.parquet").
FEATURES_JSON = "features.json"
TRAIN_FILE = "train.parquet"
VALIDATION_FILE = "validation.parquet"
LIVE_FILE = "live.parquet"
VALIDATION_BENCHMARKS_FILE = "validation_benchmark_models.parquet"
LIVE_BENCHMARKS_FILE = "live_benchmark_models.parquet"
META_MODEL_FILE = "meta_model.parquet"

REQUIRED_DATASET_FILES = (FEATURES_JSON, TRAIN_FILE, VALIDATION_FILE)
OPTIONAL_DATASET_FILES = (VALIDATION_BENCHMARKS_FILE, META_MODEL_FILE)
ROUND_FILES = (LIVE_FILE,)
OPTIONAL_ROUND_FILES = (LIVE_BENCHMARKS_FILE,)

# features.json: {"feature_sets": {"small": [...], "medium": [...], "all": [...], <group>: [...]},
#                 "targets": [...]}
FEATURE_SETS_KEY = "feature_sets"
TARGETS_KEY = "targets"
STANDARD_FEATURE_SETS = ("small", "medium", "all")
FEATURE_GROUPS = (
    "intelligence",
    "wisdom",
    "charisma",
    "dexterity",
    "strength",
    "constitution",
    "agility",
    "serenity",
)

# One era is one week; a 20-day target spans 4 eras, a 60-day one 12.
ERAS_PER_HORIZON = {20: 4, 60: 12}
_HORIZON_SUFFIX = re.compile(r"_(\d+)$")


def era_label(number: int) -> str:
    """The zero-padded era string of the files: 1 -> "0001"."""
    return f"{number:04d}"


def dataset_file(version: str, filename: str) -> str:
    """The name numerapi uses for a file of a dataset version: "v5.2/train.parquet"."""
    return f"{version}/{filename}"


def target_horizon_eras(target: str) -> int:
    """How many eras a target's return window covers (`target` is the 20-day main target)."""
    if target == MAIN_TARGET:
        return ERAS_PER_HORIZON[20]
    match = _HORIZON_SUFFIX.search(target)
    if match is None or int(match.group(1)) not in ERAS_PER_HORIZON:
        raise ValueError(f"target {target!r}: cannot tell its horizon (expected a _20 or _60 suffix)")
    return ERAS_PER_HORIZON[int(match.group(1))]


def is_feature(column: str) -> bool:
    return column.startswith(FEATURE_PREFIX)


def is_target(column: str) -> bool:
    return column == MAIN_TARGET or column.startswith(TARGET_PREFIX + "_")
