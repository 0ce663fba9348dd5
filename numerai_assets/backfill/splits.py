"""Each era's split for the current model version, and whether its predictions are in-sample.

Split (what the era is to the model version):
- `train` / `validation`: the dataset's own `data_type` of a resolved era (train.parquet or
  validation.parquet of the era store the version was trained from);
- `test`: the version's held-out block (`cv_folds`): no fold model trained on it, and
  validation_diagnostics' figures are those eras, scored by the fold models;
- `unresolved`: no target yet (nothing can train on it, nothing can score it);
- `absent`: registered as a partition but not in that era store (a newer ingest): a backfill
  fails on it, naming it, until the weekly training runs on the new data.

In-sample: the models that predict in a backfill trained on the era, so its score overstates
what live rounds will earn. Those models are the live ones (`models/current`): the refits, trained
on every resolved era of the store (the test block included), once live_model completed the
version; before that the fold models, each on its training eras (`model_core.inference.Ensemble`
picks the same ones).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

from model_core.era_store import EraStore
from numerai_assets.shared.era_selection import era_ranges
from numerai_assets.shared.home import HomeLayout

SPLITS = ("train", "validation", "test", "unresolved")
ABSENT = "absent"


@dataclasses.dataclass(frozen=True)
class EraSplits:
    model_version: str
    splits: dict[str, str]  # era -> split, for every era of the version's era store
    trained_on: frozenset[str]  # eras the predicting models trained on
    trained_by: str  # which models those are, in words
    note: str | None = None  # why the splits may not be the version's own (a training under way)

    def split(self, era: str) -> str:
        return self.splits.get(era, ABSENT)

    def in_sample(self, era: str) -> bool:
        return era in self.trained_on

    def by_split(self, eras: Sequence[str]) -> dict[str, list[str]]:
        """split -> the eras of `eras` in it, splits in SPLITS order (absent last), empty ones left out."""
        grouped: dict[str, list[str]] = {name: [] for name in (*SPLITS, ABSENT)}
        for era in eras:
            grouped[self.split(era)].append(era)
        return {name: found for name, found in grouped.items() if found}

    def summary(self, eras: Sequence[str]) -> str:
        """'train 0058..0060, validation 0061..0064; in-sample: 7 of 7 eras' in one line."""
        parts = "; ".join(f"{name} {era_ranges(found)}" for name, found in self.by_split(eras).items())
        in_sample = sum(self.in_sample(era) for era in eras)
        return f"{parts}; in-sample for model version {self.model_version}: {in_sample} of {len(eras)} eras"

    def in_sample_warning(self, eras: Sequence[str]) -> str | None:
        """The run-log warning when some of `eras` are in-sample; None when none is."""
        inside = [era for era in eras if self.in_sample(era)]
        if not inside:
            return None
        return (
            f"{len(inside)} of {len(eras)} era(s) are in-sample for model version {self.model_version} "
            f"({era_ranges(inside)}): {self.trained_by} trained on them, so their scores overstate live "
            "performance (marked in_sample in era_scores and in each era's metadata); out-of-sample "
            "figures are the held-out test block's (validation_diagnostics) and eras resolved after training"
        )

    def table(self, eras: Sequence[str]) -> str:
        """A markdown table: each split of `eras`, its eras, how many, how many in-sample."""
        from model_core.report import markdown_table

        rows = [
            [name, era_ranges(found), len(found), sum(self.in_sample(era) for era in found)]
            for name, found in self.by_split(eras).items()
        ]
        note = f"\n\n{self.note}" if self.note else ""
        return (
            markdown_table(["split", "eras", "count", "in-sample"], rows)
            + f"\n\nIn-sample: {self.trained_by} of model version {self.model_version} trained on the era."
            + note
        )


def era_splits(store: EraStore, plan, ensemble: Mapping, plan_version: str | None = None) -> EraSplits:
    """The splits of `store`'s eras under fold plan `plan` (model_core.cv.FoldPlan), and the eras
    the predicting models of `ensemble` (the fields of its ensemble.json) trained on.

    plan_version: the model version the plan belongs to; when it is not the ensemble's (cv_folds
    of a newer version ran, its training is under way), the splits are the newer plan's, and
    `note` says so.
    """
    test = set(plan.test_eras)
    splits = {}
    for row in store.era_table.iter_rows(named=True):
        era = row["era"]
        if not row["resolved"]:
            splits[era] = "unresolved"
        elif era in test:
            splits[era] = "test"
        else:
            splits[era] = "train" if row["data_type"] == "train" else "validation"
    # As model_core.inference.Ensemble(members="live") picks them: the refits once there are any.
    if ensemble.get("live_checkpoints") or ensemble.get("lgbm_model") or ensemble.get("peer_ridge_model"):
        trained = frozenset(store.resolved_eras())
        by = f"its live models ({ensemble.get('candidate')}, refit on every resolved era)"
    else:
        trained = frozenset(era for fold in plan.folds for era in fold.train_eras)
        by = "its fold models (each on its training eras)"
    version, note = ensemble["model_version"], None
    if plan_version is not None and plan_version != version:
        note = (
            f"The fold plan is model version {plan_version}'s (a training under way), not the current "
            f"{version}'s: its test block and era store stand in."
        )
    return EraSplits(version, splits, trained, by, note)


def load_era_splits(layout: HomeLayout) -> EraSplits:
    """The current model version's era splits (its ensemble.json, the fold plan, its era store).
    Reads ensemble.json as JSON: no model (and no torch) is loaded."""
    from numerai_assets.shared.model_versions import current_model_dir, load_plan

    path = current_model_dir(layout) / "ensemble.json"  # model_core.inference.ENSEMBLE_FILE (imports torch)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no ensemble here (materialise ensemble_weights first)")
    saved = load_plan(layout)
    return era_splits(
        EraStore(saved.store_path), saved.plan, json.loads(path.read_text()), saved.model_version
    )
