"""The training knobs as a resource: Settings mapped onto model_core's config dataclasses."""

from __future__ import annotations

import dagster as dg

from numerai_assets.shared.settings import Settings, knob_default


class TrainingKnobs(dg.ConfigurableResource):
    """What a user turns (NUMERAI_* variables; defaults from their declarations in model_core.knobs);
    the model logic stays in model_core."""

    n_folds: int = knob_default("n_folds")
    max_epochs: int = knob_default("max_epochs")
    loss: str = knob_default("loss")
    d_model: int = knob_default("d_model")
    n_layers: int = knob_default("n_layers")
    n_heads: int = knob_default("n_heads")
    temporal_lags: int = knob_default("temporal_lags")
    similarity_prior: str = knob_default("similarity_prior")
    cross_stock: bool = knob_default("cross_stock")
    peer_knn: int = knob_default("peer_knn")
    feature_dropout: float = knob_default("feature_dropout")
    learning_rate: float = knob_default("learning_rate")
    lr_decay: float = knob_default("lr_decay")
    refit_seeds: int = knob_default("refit_seeds")
    eras_per_batch: int = knob_default("eras_per_batch")
    patience: int = knob_default("patience")
    precision: str = knob_default("precision")
    gradient_checkpointing: bool = knob_default("gradient_checkpointing")
    max_stocks: int | None = knob_default("max_stocks")
    test_eras: int = knob_default("test_eras")
    min_train_eras: int = knob_default("min_train_eras")
    purge_gap: int | None = knob_default("purge_gap")
    device: str = knob_default("device")
    seed: int = knob_default("seed")
    # The fold knobs the user set: they are kept as they are when the history is short (the
    # others shrink to fit it, see model_core.cv.fit_to_history).
    fixed_cv: list[str] = []  # noqa: RUF012 (pydantic copies field defaults)

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingKnobs:
        known = {name: getattr(settings, name) for name in cls.model_fields if hasattr(settings, name)}
        fixed = sorted({"n_folds", "test_eras", "min_train_eras"} & settings.model_fields_set)
        return cls(**known, fixed_cv=fixed)

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
            lr_decay=self.lr_decay,
            loss=self.loss,
            patience=self.patience,
            precision=self.precision,
            gradient_checkpointing=self.gradient_checkpointing,
            seed=self.seed,
        )
