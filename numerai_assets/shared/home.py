"""Where the service keeps its files under NUMERAI_HOME (the source of truth for data)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

# Files in a model version's directory (HomeLayout.model_dir) besides the checkpoints.
TEST_PREDICTIONS = "test_predictions.parquet"  # the ensemble's, on the held-out test eras
BASELINE_PREDICTIONS = "baseline_lgbm_test_predictions.parquet"  # baseline_lgbm's, on the same eras
OOF_TRANSFORMER = "oof_transformer.npz"  # fold k's transformer on fold k's validation eras
OOF_LGBM = "oof_lgbm.npz"  # fold k's LightGBM on the same eras (baseline_lgbm)
TEST_LGBM = "test_lgbm.npz"  # the LightGBM trained before the test gap, on the test block
OOF_PEER_RIDGE = "oof_peer_ridge.npz"  # fold k's peer ridge on the same eras (baseline_peer_ridge)
TEST_PEER_RIDGE = "test_peer_ridge.npz"  # the peer ridge fitted before the test gap, on the test block
DIAGNOSTICS_CSV = "numerai_diagnostics.csv"  # TEST_PREDICTIONS as uploaded to Numerai's diagnostics
CHOICE_FILE = "choice.json"  # model_choice: the submitted candidate, why, every candidate's figures


@dataclasses.dataclass(frozen=True)
class HomeLayout:
    root: Path

    def raw_dataset_dir(self, version: str) -> Path:
        """A symlink to the complete, checked download of dataset version `version` ("v5.3")."""
        return self.root / "raw" / version

    @property
    def raw_current_link(self) -> Path:
        """A symlink to `raw/<version>`: the version the last ingest resolved and published."""
        return self.root / "raw" / "current"

    def round_dir(self, round_number: int, version: str) -> Path:
        """A round's live files of one dataset version: a round fetched for v5.2 is never read as v5.3."""
        return self.root / "rounds" / str(round_number) / version

    @property
    def clean_eras_root(self) -> Path:
        return self.root / "clean_eras"

    @property
    def clean_eras_current(self) -> Path:
        """A symlink to the latest published era store."""
        return self.clean_eras_root / "current"

    @property
    def feature_returns_path(self) -> Path:
        return self.root / "features" / "feature_returns.parquet"

    @property
    def cv_folds_path(self) -> Path:
        """The fold plan of the current model version (written by cv_folds)."""
        return self.root / "training" / "cv_folds.json"

    def model_dir(self, model_version: str) -> Path:
        return self.root / "models" / model_version

    @property
    def current_model_link(self) -> Path:
        """A symlink to the model version the live path and backfills use (set by ensemble_weights)."""
        return self.root / "models" / "current"

    def report_dir(self, model_version: str) -> Path:
        return self.root / "reports" / model_version

    def submission_path(self, round_number: int, model_name: str) -> Path:
        return self.root / "submissions" / str(round_number) / f"{model_name}.csv"

    def live_predictions_path(self, round_number: int) -> Path:
        return self.root / "live" / f"{round_number}.parquet"

    def era_predictions_path(self, model_version: str, era: str) -> Path:
        return self.model_dir(model_version) / "era_predictions" / f"{era}.parquet"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"
