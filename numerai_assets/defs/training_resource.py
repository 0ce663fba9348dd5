"""The training knobs as a resource: Settings mapped onto model_core's config dataclasses."""

from __future__ import annotations

import dagster as dg

from numerai_assets.settings import Settings


class TrainingKnobs(dg.ConfigurableResource):
    """What a user turns (NUMERAI_* variables); the model logic stays in model_core."""

    n_folds: int = 4
    max_epochs: int = 6
    loss: str = "pearson"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    temporal_lags: int = 8
    similarity_prior: str = "bias"
    cross_stock: bool = True
    peer_knn: int = 0
    feature_dropout: float = 0.5
    learning_rate: float = 1e-3
    eras_per_batch: int = 4
    patience: int = 2
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    max_stocks: int | None = None
    test_eras: int = 52
    min_train_eras: int = 52
    purge_gap: int | None = None
    device: str = "auto"
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingKnobs:
        return cls(**{name: getattr(settings, name) for name in cls.model_fields if hasattr(settings, name)})

    def to_cv_config(self):
        from model_core.cv import CVConfig

        return CVConfig(
            n_folds=self.n_folds,
            gap_eras=self.purge_gap,
            test_eras=self.test_eras,
            min_train_eras=self.min_train_eras,
        )

    def to_model_config(self, n_features: int):
        from model_core.model import ModelConfig

        return ModelConfig(
            n_features=n_features,
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            temporal_lags=self.temporal_lags,
            cross_stock=self.cross_stock,
            similarity_prior=self.similarity_prior,
            peer_knn=self.peer_knn,
            feature_dropout=self.feature_dropout,
        )

    def to_train_config(self):
        from model_core.train import TrainConfig

        return TrainConfig(
            max_epochs=self.max_epochs,
            learning_rate=self.learning_rate,
            loss=self.loss,
            patience=self.patience,
            precision=self.precision,
            gradient_checkpointing=self.gradient_checkpointing,
            seed=self.seed,
        )
