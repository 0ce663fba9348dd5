import json

import numpy as np
import pytest

from model_core import schema
from model_core.cv import CVConfig, FoldPlan, make_folds, min_fold_region


def _labels(n: int, start: int = 1) -> list[str]:
    return [schema.era_label(i) for i in range(start, start + n)]


def _check_plan(eras: list[str], plan: FoldPlan, config: CVConfig) -> None:
    """The invariants every plan must hold, by position in the sorted eras."""
    position = {era: p for p, era in enumerate(sorted(eras))}
    gap = plan.gap
    test = [position[e] for e in plan.test_eras]
    assert len(plan.folds) == config.n_folds
    assert test == list(range(len(eras) - config.test_eras, len(eras)))
    previous_train: set[str] = set()
    previous_validation_end = -1
    for k, fold in enumerate(plan.folds):
        assert fold.index == k
        train = [position[e] for e in fold.train_eras]
        validation = [position[e] for e in fold.validation_eras]
        assert len(train) >= config.min_train_eras and validation
        assert train == sorted(train) and validation == list(range(validation[0], validation[-1] + 1))
        # purge: at least `gap` eras strictly between any train era and any validation/test era
        assert max(train) + gap + 1 <= min(validation)
        if test:
            assert max(train) + gap + 1 <= min(test)
            assert max(validation) + gap + 1 <= min(test)
        assert not set(fold.train_eras) & set(plan.test_eras)
        assert not set(fold.validation_eras) & set(plan.test_eras)
        # validation chunks disjoint and in order; training windows expanding
        assert min(validation) > previous_validation_end
        previous_validation_end = max(validation)
        assert previous_train <= set(fold.train_eras)
        previous_train = set(fold.train_eras)
    assert previous_validation_end == len(eras) - (config.test_eras + gap if config.test_eras else 0) - 1


def test_default_layout_on_a_real_sized_history():
    eras = _labels(1190)
    config = CVConfig()
    plan = make_folds(eras, config)
    _check_plan(eras, plan, config)
    assert plan.gap == 8 and plan.test_eras == tuple(eras[-52:])
    assert plan.folds[-1].validation_eras[-1] == eras[-52 - 8 - 1]
    assert plan.folds[0].train_eras[0] == eras[0]
    # 1,130 eras before the gap and the test block: five equal chunks of 226
    assert [len(fold.validation_eras) for fold in plan.folds] == [226] * 4
    assert len(plan.folds[0].train_eras) == 226 - 8


def test_short_history_shrinks_validation_chunks_not_the_first_training_window():
    config = CVConfig(n_folds=4, gap_eras=8, test_eras=10, min_train_eras=52)
    eras = _labels(10 + 8 + 52 + 8 + 4 * 5)  # room for validation chunks of 5 eras only
    plan = make_folds(eras, config)
    _check_plan(eras, plan, config)
    assert len(plan.folds[0].train_eras) == 52
    assert [len(fold.validation_eras) for fold in plan.folds] == [5] * 4


def test_random_configs_never_leak_across_the_gap():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(400):
        config = CVConfig(
            n_folds=int(rng.integers(1, 7)),
            gap_eras=int(rng.integers(0, 20)),
            test_eras=int(rng.integers(0, 30)),
            min_train_eras=int(rng.integers(1, 40)),
        )
        n = int(rng.integers(1, 400))
        # labels need not be consecutive integers, nor arrive sorted
        eras = sorted(rng.choice(10_000, size=n, replace=False))
        labels = [schema.era_label(int(e)) for e in eras]
        shuffled = list(rng.permutation(labels))
        tail = config.test_eras + config.resolved_gap() if config.test_eras else 0
        needed = tail + min_fold_region(config.n_folds, config.min_train_eras, config.resolved_gap())
        if n < needed:
            with pytest.raises(ValueError, match=rf"{n} eras given, {needed} needed"):
                make_folds(shuffled, config)
            continue
        plan = make_folds(shuffled, config)
        _check_plan(labels, plan, config)
        checked += 1
    assert checked > 100  # the loop really exercised plans, not only errors


def test_min_fold_region_is_the_smallest_that_works():
    for n_folds, min_train, gap in [(1, 1, 0), (4, 52, 8), (3, 10, 16), (6, 5, 2)]:
        needed = min_fold_region(n_folds, min_train, gap)
        config = CVConfig(n_folds=n_folds, gap_eras=gap, test_eras=0, min_train_eras=min_train)
        _check_plan(_labels(needed), make_folds(_labels(needed), config), config)
        with pytest.raises(ValueError, match="too few eras"):
            make_folds(_labels(needed - 1), config)


def test_gap_follows_the_longest_target_horizon():
    assert CVConfig().resolved_gap() == 8
    assert CVConfig(targets=("target", "target_jasper_20")).resolved_gap() == 8
    assert CVConfig(targets=("target", "target_jasper_60")).resolved_gap() == 16
    assert CVConfig(gap_eras=3, targets=("target_jasper_60",)).resolved_gap() == 3
    with pytest.raises(ValueError, match="cannot tell its horizon"):
        CVConfig(targets=("target_odd",)).resolved_gap()


def test_too_few_eras_is_a_clear_error():
    with pytest.raises(ValueError, match=r"too few eras for cross-validation: 100 eras given, 124 needed"):
        make_folds(_labels(100), CVConfig())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_folds": 0}, "n_folds must be >= 1"),
        ({"gap_eras": -1}, "gap_eras must be >= 0"),
        ({"test_eras": -1}, "test_eras must be >= 0"),
        ({"min_train_eras": 0}, "min_train_eras must be >= 1"),
        ({"targets": ()}, "targets is empty"),
    ],
)
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CVConfig(**kwargs)


def test_duplicate_eras_are_rejected():
    with pytest.raises(ValueError, match=r"repeated: \['0003'\]"):
        make_folds([*_labels(400), "0003"], CVConfig())


def test_plan_round_trips_through_json():
    plan = make_folds(_labels(400), CVConfig(targets=("target", "target_ender_60")))
    assert plan.gap == 16
    assert FoldPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    with pytest.raises(ValueError, match=r"missing key\(s\) \['gap'\]"):
        FoldPlan.from_dict({"folds": [], "test_eras": []})


def test_short_history_shrinks_what_the_user_did_not_set():
    from model_core.cv import fit_to_history

    eras = [f"{e:04d}" for e in range(1, 121)]  # 120 eras: the defaults (52 test, 52 first fold) need more
    config, notes = fit_to_history(len(eras), CVConfig(n_folds=4, test_eras=52, min_train_eras=52))
    plan = make_folds(eras, config)
    assert notes == ["test_eras 52 -> 20 (120 resolved eras)"] and config.min_train_eras == 52
    assert len(plan.folds) == 4 and len(plan.test_eras) == 20
    # Enough history: nothing changes.
    same, none = fit_to_history(1000, CVConfig())
    assert same == CVConfig() and none == []
    # What the user set stays; if it cannot fit, make_folds says why.
    fixed, _ = fit_to_history(len(eras), CVConfig(test_eras=100), frozenset({"test_eras"}))
    assert fixed.test_eras == 100
    with pytest.raises(ValueError, match="too few eras"):
        make_folds(eras, fixed)


def test_very_short_history_drops_folds_before_failing():
    from model_core.cv import fit_to_history

    config, notes = fit_to_history(30, CVConfig(n_folds=4))
    plan = make_folds([f"{e:04d}" for e in range(30)], config)
    # 30 eras: test 5 (+ gap 8), first fold 7 (+ gap 8) leave room for 2 one-era validation chunks
    assert (config.test_eras, config.min_train_eras, config.n_folds) == (5, 7, 2)
    assert len(notes) == 4 and len(plan.folds) == 2
    with pytest.raises(ValueError, match="too few eras"):
        make_folds([f"{e:04d}" for e in range(12)], fit_to_history(12, CVConfig())[0])
