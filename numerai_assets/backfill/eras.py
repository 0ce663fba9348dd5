"""Glue for the era backfill: the current ensemble's predictions and scores for any range of eras.

A backfill run handles a range of `numerai_era` partitions (BackfillPolicy.multi_run), so what
is costly to load is loaded once per run, not once per era: the ensemble, the era store of the
current fold plan, the temporal context and the reference predictions (benchmark model, meta
model). Then, era by era:

- predictions: `Ensemble.predict` (the function validation and live use), written atomically to
  NUMERAI_HOME/models/<version>/era_predictions/<era>.parquet (id, era, prediction);
- scores: read back from that file, scored against the era's targets with
  `model_core.diagnostics.score_era` (CORR, BMC / MMC / CWMM and the payout estimate where the
  benchmark and the meta model cover the era, max feature exposure; no FNC: it costs ~1 min an
  era at 2,748 features) and
  upserted into the warehouse keyed by (model version, 'ensemble', era), split 'backfill', with
  `in_sample` true when the predicting models trained on the era (numerai_assets.backfill.splits).
  An unresolved era (no target yet) keeps its predictions and gets NULL scores.

An era the data lacks does not stop the others: it is set aside with the reason, the other eras
are written, and the caller reports every era set aside at the end (`MissingErasError`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from model_core import schema
from model_core.atomic import atomic_path
from model_core.era_store import EraSlice, EraStore
from model_core.errors import DataContractError
from model_core.payout import DOCUMENTED_DEFAULTS, PayoutSettings
from numerai_assets.backfill.splits import EraSplits, era_splits
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_model_dir, load_plan, temporal_context
from numerai_assets.shared.references import load_scoring_references
from numerai_assets.shared.warehouse import Warehouse

ENSEMBLE = "ensemble"  # the warehouse `model` of the blended predictions
BACKFILL_SPLIT = "backfill"
TEST_SPLIT = "test"  # written by validation_diagnostics, with FNC and churn: never overwritten here
ROLLING_WINDOW = 20  # eras, as in the validation diagnostics
LOG_EVERY = 10  # eras between progress lines


class MissingEraError(DataContractError):
    """One era cannot be processed with the data at hand (the message says why)."""


class MissingErasError(DataContractError):
    """Some eras of a run could not be processed; the others were written."""

    def __init__(self, failed: dict[str, str], done: Sequence[str]):
        self.failed, self.done = dict(failed), list(done)
        eras = ", ".join(sorted(failed))
        kept = f"the other {len(done)} era(s) of this run were written" if done else "no era was written"
        reasons = "; ".join(f"{era}: {reason}" for era, reason in sorted(failed.items()))
        super().__init__(f"{len(failed)} era(s) could not be backfilled ({eras}); {kept}. {reasons}")


@dataclasses.dataclass(frozen=True)
class EraDone:
    era: str
    rows: int
    predictions_path: Path | None  # None when only the scores were asked for
    predict_seconds: float  # NaN when not predicted
    scores: dict | None  # the warehouse era_scores row; None when not scored
    score_seconds: float  # NaN when not scored


@dataclasses.dataclass(frozen=True)
class RunResult:
    model_version: str
    eras: list[str]  # asked for, in order
    done: list[EraDone]
    failed: dict[str, str]  # era -> why it was set aside
    load_seconds: float  # the ensemble, the store, the context and the references, once
    payout: PayoutSettings = DOCUMENTED_DEFAULTS  # the multipliers of every `payout` score
    splits: EraSplits | None = None  # each era's split and whether it is in-sample

    def seconds_per_era(self, part: str) -> float:
        """Mean seconds per era of `part` ('predict' or 'score'); NaN when no era was done."""
        values = [getattr(d, f"{part}_seconds") for d in self.done]
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    def corr_mean(self) -> float:
        corrs = [d.scores["corr"] for d in self.done if d.scores is not None]
        corrs = [c for c in corrs if not math.isnan(c)]
        return float(np.mean(corrs)) if corrs else math.nan

    def error(self) -> MissingErasError | None:
        return MissingErasError(self.failed, [d.era for d in self.done]) if self.failed else None


class EraBackfill:
    """What one run loads once: the current ensemble, its era store and temporal context, and
    (when scoring) the benchmark / meta model predictions of the run's eras."""

    def __init__(
        self,
        layout: HomeLayout,
        raw_dir: Path,
        benchmark: str | None,
        eras: Sequence[str],
        score: bool,
        payout: PayoutSettings = DOCUMENTED_DEFAULTS,
    ):
        from model_core.inference import Ensemble

        started = time.perf_counter()
        self.layout, self.payout = layout, payout
        self.ensemble = Ensemble(current_model_dir(layout))
        self.model_version = self.ensemble.model_version
        plan = load_plan(layout)
        self.store = EraStore(plan.store_path)
        if self.store.dataset_version != self.ensemble.spec.dataset_version:
            raise DataContractError(
                f"the era store {self.store.path} holds {self.store.dataset_version}, model version "
                f"{self.model_version} was trained on {self.ensemble.spec.dataset_version}: rerun the "
                "weekly training on this data"
            )
        if self.store.features != self.ensemble.spec.features:
            raise DataContractError(
                f"the era store {self.store.path} has {len(self.store.features)} features that are not "
                f"the {len(self.ensemble.spec.features)} model version {self.model_version} was trained "
                "on (same names, same order): rerun the weekly training on this data"
            )
        spec = dataclasses.asdict(self.ensemble.spec)
        self.splits = era_splits(self.store, plan.plan, spec, plan.model_version)
        self.context = temporal_context(layout, self.store, self.ensemble.spec.temporal_lags)
        self.target = self.store.target_index(schema.MAIN_TARGET)
        self._known = set(self.store.eras)
        known = [era for era in eras if era in self._known]
        self.references = load_scoring_references(raw_dir, benchmark, known) if score else {}
        self._last: EraSlice | None = None
        self.load_seconds = time.perf_counter() - started

    def predictions_path(self, era: str) -> Path:
        return self.layout.era_predictions_path(self.model_version, era)

    def era(self, era: str) -> EraSlice:
        """The era's rows (the last one read is kept: predicting then scoring reads it once)."""
        if self._last is None or self._last.era != era:
            if era not in self._known:
                raise MissingEraError(
                    f"not in the era store {self.store.path} of the current fold plan (eras "
                    f"{_span(self.store.eras)}); ingest data that has it and retrain"
                )
            data = self.store.era(era)
            if not data.ids:
                raise MissingEraError(f"has no rows in the era store {self.store.path}")
            self._last = data
        return self._last

    def predict(self, era: str) -> Path:
        """Predict the era with the ensemble and write id, era, prediction; returns the file."""
        data = self.era(era)
        context = None if self.context is None else self.context.for_era(era)
        predictions = self.ensemble.predict(data.features, context)
        frame = pl.DataFrame({schema.ID: data.ids, schema.ERA: era, schema.PREDICTION: predictions})
        path = self.predictions_path(era)
        with atomic_path(path) as tmp:
            frame.write_parquet(tmp)
        return path

    def score(self, era: str) -> dict:
        """Score the era's predictions file against its target; a warehouse era_scores row."""
        from model_core.diagnostics import score_era

        path = self.predictions_path(era)
        if not path.exists():
            raise MissingEraError(f"no predictions at {path} (materialise era_predictions for it first)")
        data = self.era(era)
        frame = pl.read_parquet(path)
        if frame[schema.ID].to_list() != data.ids:
            raise MissingEraError(
                f"{path} holds other stocks than the era store {self.store.path}: rematerialise "
                "era_predictions for it"
            )
        refs = {name: None if ref is None else ref.values(data.ids) for name, ref in self.references.items()}
        scores = score_era(
            era,
            frame[schema.PREDICTION].to_numpy(),
            data.targets[:, self.target],
            data.features,
            benchmark=refs.get("benchmark"),
            meta_model=refs.get("meta_model"),
            fnc=False,
            payout=self.payout,
        )
        return {
            "model_version": self.model_version,
            "model": ENSEMBLE,
            "era": era,
            "split": BACKFILL_SPLIT,
            "corr": scores.corr,
            "bmc": scores.bmc,
            "mmc": scores.mmc,
            "cwmm": scores.cwmm,
            "payout": scores.payout,
            "max_feature_exposure": scores.max_feature_exposure,
            "in_sample": self.splits.in_sample(era),
        }


def backfill_eras(
    layout: HomeLayout,
    raw_dir: Path,
    benchmark: str | None,
    eras: Sequence[str],
    *,
    predict: bool,
    score: bool,
    log: Callable[[str], None],
    payout: PayoutSettings = DOCUMENTED_DEFAULTS,
) -> RunResult:
    """Predict and / or score `eras` with the current ensemble, loaded once. An era that cannot be
    done is set aside in `failed` (see RunResult.error) and the others go on."""
    run = EraBackfill(layout, raw_dir, benchmark, eras, score, payout)
    log(
        f"model version {run.model_version} loaded in {run.load_seconds:.1f} s; "
        f"{len(eras)} era(s) {_span(eras)} to {' and '.join(_parts(predict, score))}"
    )
    done, failed = [], {}
    for i, era in enumerate(eras):
        path, row, predict_s, score_s = None, None, math.nan, math.nan
        try:
            if predict:
                started = time.perf_counter()
                path = run.predict(era)
                predict_s = time.perf_counter() - started
            if score:
                started = time.perf_counter()
                row = run.score(era)
                score_s = time.perf_counter() - started
        except MissingEraError as err:
            failed[era] = str(err)
            log(f"era {era}: {err}")
        if path is not None or row is not None:  # predictions written before scoring failed count
            done.append(EraDone(era, len(run.era(era).ids), path, predict_s, row, score_s))
        if (i + 1) % LOG_EVERY == 0 or i + 1 == len(eras):
            log(f"{i + 1}/{len(eras)} eras ({len(failed)} set aside)")
    return RunResult(run.model_version, list(eras), done, failed, run.load_seconds, payout, run.splits)


def store_scores(warehouse: Warehouse, result: RunResult) -> list[str]:
    """Upsert the run's score rows; returns the eras left alone because validation_diagnostics
    already scored them as held-out test eras of this model version (with FNC and churn, which a
    backfill does not compute: the same CORR / BMC / MMC, more columns)."""
    rows = [d.scores for d in result.done if d.scores is not None]
    if not rows:
        return []
    tested = warehouse.scored_eras(result.model_version, ENSEMBLE, TEST_SPLIT)
    warehouse.upsert_era_scores([row for row in rows if row["era"] not in tested])
    return sorted(tested & {row["era"] for row in rows})


@dataclasses.dataclass(frozen=True)
class BackfillView:
    """Every era backfilled for one model version (an era_predictions file exists), in era order,
    with the ensemble's scores from the warehouse: the cumulative picture of the backfilled range.
    Held-out test eras among them carry validation_diagnostics' row (split 'test')."""

    model_version: str
    eras: list[str]
    corrs: list[float]  # NaN where unresolved (or not scored yet)
    splits: list[str]
    in_sample: list[bool | None]  # the stored row's flag; None on a kept test row (out of sample)
    summary: dict[str, float]  # model_core.diagnostics.summarise_scores
    pictures: dict[str, bytes]  # cumulative_corr, per_era_corr, rolling_sharpe (PNG)
    rows: list[dict] = dataclasses.field(default_factory=list)  # the warehouse rows, era order


def backfill_view(warehouse: Warehouse, layout: HomeLayout, model_version: str) -> BackfillView:
    from model_core import plots
    from model_core.diagnostics import EraScores, summarise_scores

    backfilled = sorted(
        p.stem for p in layout.era_predictions_path(model_version, "_").parent.glob("*.parquet")
    )
    frame = (
        warehouse.era_score_rows(model_version, ENSEMBLE, (BACKFILL_SPLIT, TEST_SPLIT))
        .filter((pl.col("split") == BACKFILL_SPLIT) | pl.col("era").is_in(backfilled))
        .sort("era")
        .with_columns(pl.col(pl.Float64).fill_null(math.nan))
    )
    eras, corrs = frame["era"].to_list(), frame["corr"].to_list()
    scores = [
        EraScores(
            row["era"],
            row["corr"],
            math.nan,
            row["bmc"],
            row["mmc"],
            row["max_feature_exposure"],
            math.nan,
            cwmm=row["cwmm"],
            payout=row["payout"],
        )
        for row in frame.iter_rows(named=True)
    ]
    pictures = {}
    if eras:
        pictures = {
            "cumulative_corr": plots.cumulative_corr_png(eras, {ENSEMBLE: corrs}),
            "per_era_corr": plots.per_era_corr_png(eras, corrs),
            "rolling_sharpe": plots.rolling_sharpe_png(eras, {ENSEMBLE: corrs}, ROLLING_WINDOW),
        }
    return BackfillView(
        model_version,
        eras,
        corrs,
        frame["split"].to_list(),
        frame["in_sample"].to_list(),
        summarise_scores(scores),
        pictures,
        frame.to_dicts(),
    )


def _parts(predict: bool, score: bool) -> list[str]:
    return [name for name, wanted in (("predict", predict), ("score", score)) if wanted]


def _span(eras: Sequence[str]) -> str:
    if not eras:
        return "none"
    return eras[0] if len(eras) == 1 else f"{eras[0]}..{eras[-1]}"
