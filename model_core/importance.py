"""Permutation importance of feature groups, measured in Numerai CORR.

A group's importance is how much the mean per-era CORR drops when its columns are shuffled
across the stocks of each era. Shuffling within the era keeps every era's feature
distribution (Numerai features are per-era bins) and only breaks the link between a stock's
values of that group and its target. One row permutation is applied to all of the group's
columns, so the group's columns stay consistent with each other: the model loses the group,
not the correlations inside it. Groups rather than single features: Numerai's 2,748 features
come in 8 named groups, and one permutation per feature would cost thousands of passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from model_core.metrics import era_numerai_corr


def feature_groups(
    feature_names: Sequence[str], group_sets: Mapping[str, Sequence[str]]
) -> dict[str, list[int]]:
    """Column indices of each group (features.json's groups, e.g. FeatureMetadata.groups()).

    Names not among feature_names are ignored (a model trained on a feature subset sees only
    part of each group); groups with none of their columns present are left out.
    """
    index = {name: i for i, name in enumerate(feature_names)}
    groups: dict[str, list[int]] = {}
    for group, members in group_sets.items():
        columns = sorted({index[name] for name in members if name in index})
        if columns:
            groups[group] = columns
    return groups


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray],
    eras: Sequence[tuple[np.ndarray, np.ndarray]],
    groups: Mapping[str, Sequence[int]],
    seed: int = 0,
) -> dict[str, float]:
    """{group: baseline mean CORR - mean CORR with the group shuffled}, in the order of groups.

    predict: (N, F) int8 features of one era -> (N,) scores. eras: (features (N, F) int8,
    target (N,)) pairs. The permutation of era e for the group at position g is seeded by
    (seed, g, e), so results are reproducible and independent of which groups are asked for
    before it. Eras whose CORR is NaN (e.g. no scored rows) are left out of the means.
    Costs (groups + 1) x eras calls of predict.
    """
    if not eras:
        raise ValueError("permutation_importance: no eras given")
    if seed < 0:
        raise ValueError(f"permutation_importance: seed must be >= 0, got {seed}")
    for e, (features, target) in enumerate(eras):
        if features.ndim != 2 or target.shape != (features.shape[0],):
            raise ValueError(
                f"era {e}: features must be (N, F) and target (N,), got {features.shape} and {target.shape}"
            )
    n_features = eras[0][0].shape[1]
    for name, columns in groups.items():
        bad = [c for c in columns if not 0 <= c < n_features]
        if not len(columns) or bad:
            raise ValueError(
                f"group {name!r}: needs column indices in [0, {n_features}), got {list(columns)[:10]}"
            )

    baseline = _mean_corr(predict, eras, permuted=None)
    importance: dict[str, float] = {}
    for g, (name, columns) in enumerate(groups.items()):
        cols = np.asarray(columns, dtype=np.intp)
        shuffled = _mean_corr(predict, eras, permuted=(seed, g, cols))
        importance[name] = baseline - shuffled
    return importance


def _mean_corr(
    predict: Callable[[np.ndarray], np.ndarray],
    eras: Sequence[tuple[np.ndarray, np.ndarray]],
    permuted: tuple[int, int, np.ndarray] | None,
) -> float:
    corrs = []
    for e, (features, target) in enumerate(eras):
        x = features
        if permuted is not None:
            seed, g, cols = permuted
            rows = np.random.default_rng([seed, g, e]).permutation(features.shape[0])  # (N,)
            x = features.copy()  # (N, F): one era, the caller's array is left as it was
            x[:, cols] = features[np.ix_(rows, cols)]
        predictions = np.asarray(predict(x), dtype=np.float64)
        if predictions.shape != target.shape:
            raise ValueError(f"era {e}: predict returned shape {predictions.shape}, expected {target.shape}")
        corrs.append(era_numerai_corr(predictions, target))
    values = np.asarray(corrs, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
