import numpy as np
import pytest

from model_core import schema
from model_core.importance import feature_groups, permutation_importance
from model_core.metrics import era_numerai_corr


def _eras(n_eras=4, n=200, f=6, seed=0):
    """Eras where the target follows column 0 closely."""
    rng = np.random.default_rng(seed)
    eras = []
    for _ in range(n_eras):
        features = rng.integers(0, 5, size=(n, f)).astype(np.int8)
        target = np.clip(features[:, 0] / 4 + rng.normal(0, 0.1, size=n), 0, 1)
        eras.append((features, target))
    return eras


def _uses_column_0(features: np.ndarray) -> np.ndarray:
    return features[:, 0].astype(np.float64) + 0.01 * features[:, 1]  # ties broken by column 1


def test_group_with_the_used_column_matters_and_others_are_exactly_zero():
    eras = _eras()
    snapshot = [f.copy() for f, _ in eras]
    groups = {"strength": [0, 2], "wisdom": [3, 4], "agility": [5]}
    importance = permutation_importance(lambda x: x[:, 0].astype(np.float64), eras, groups, seed=1)
    assert list(importance) == ["strength", "wisdom", "agility"]
    assert importance["strength"] > 0.1
    assert importance["wisdom"] == 0.0 and importance["agility"] == 0.0
    for (features, _), before in zip(eras, snapshot, strict=True):
        np.testing.assert_array_equal(features, before)  # the caller's arrays are not shuffled


def test_importance_is_baseline_minus_shuffled_corr_and_reproducible():
    eras = _eras(n_eras=3)
    groups = {"intelligence": [1], "charisma": [0]}
    first = permutation_importance(_uses_column_0, eras, groups, seed=7)
    assert first == permutation_importance(_uses_column_0, eras, groups, seed=7)
    baseline = np.mean([era_numerai_corr(_uses_column_0(f), t) for f, t in eras])
    assert baseline > 0.5
    assert abs(baseline - first["charisma"]) < 0.1  # with column 0 shuffled, ~0 CORR is left
    assert 0 < first["intelligence"] < 0.05  # the tie-breaking column matters a little
    # the same group gets the same permutations (seed, group position, era) in a one-group call
    alone = permutation_importance(_uses_column_0, eras, {"intelligence": [1]}, seed=7)
    assert alone["intelligence"] == first["intelligence"]


def test_importance_validates_groups_and_eras():
    eras = _eras(n_eras=1)
    with pytest.raises(ValueError, match="'dexterity'"):
        permutation_importance(_uses_column_0, eras, {"dexterity": [6]})
    with pytest.raises(ValueError, match="'dexterity'"):
        permutation_importance(_uses_column_0, eras, {"dexterity": []})
    with pytest.raises(ValueError, match="no eras"):
        permutation_importance(_uses_column_0, [], {"dexterity": [0]})
    with pytest.raises(ValueError, match="predict returned"):
        permutation_importance(lambda x: x[:-1, 0].astype(float), eras, {"dexterity": [0]})


def test_feature_groups_map_names_to_columns():
    names = ["feature_a", "feature_b", "feature_c", "feature_d"]
    group_sets = {
        schema.FEATURE_GROUPS[0]: ["feature_c", "feature_a", "feature_unknown"],
        schema.FEATURE_GROUPS[1]: ["feature_zzz"],
        schema.FEATURE_GROUPS[2]: ["feature_d"],
    }
    assert feature_groups(names, group_sets) == {
        schema.FEATURE_GROUPS[0]: [0, 2],
        schema.FEATURE_GROUPS[2]: [3],
    }
