"""Knobs sized for the tiny tournament (76 resolved eras): a few seconds per fold on CPU."""

TINY_KNOBS = {
    "n_folds": 2,
    "test_eras": 8,
    "min_train_eras": 12,
    "max_epochs": 2,
    "d_model": 16,
    "n_layers": 1,
    "n_heads": 2,
    "temporal_lags": 4,
    "cross_stock": True,  # the tiny runs exercise every part: attention, temporal encoder, peers
    "peer_knn": 4,
    "refit_seeds": 1,
    "feature_set": "medium",  # where the tiny tournament plants its signal
    "eras_per_batch": 8,
    "device": "cpu",
}

TINY_BASELINE_ESTIMATORS = 40

# Everything the weekly job materialises, in order.
TRAINED_ASSETS = [
    "raw_dataset",
    "clean_eras",
    "feature_returns",
    "cv_folds",
    "fold_model_0",
    "fold_model_1",
    "ensemble_weights",
    "baseline_lgbm",
    "baseline_peer_ridge",
    "model_choice",
    "refit_model_0",
    "refit_lgbm",
    "refit_peer_ridge",
    "live_model",
    "validation_diagnostics",
    "numerai_diagnostics",
]


def tiny_env(**extra: str) -> dict[str, str]:
    """The same knobs as NUMERAI_* variables, for code that reads Settings (CLI, execute_job)."""
    env = {f"NUMERAI_{k.upper()}": str(v) for k, v in TINY_KNOBS.items()}
    env["NUMERAI_BASELINE_ESTIMATORS"] = str(TINY_BASELINE_ESTIMATORS)
    return env | extra


def point_code_location_at(monkeypatch, home, api_url: str, state, model_name: str, **extra: str) -> None:
    """Set NUMERAI_* for the code location (its code server and the jobs the CLI runs read their
    settings from the environment): tiny knobs, `home`, the stand-in at `api_url`, `state`'s key."""
    for name, value in tiny_env(
        NUMERAI_HOME=str(home),
        NUMERAI_API_URL=api_url,
        NUMERAI_API_BACKOFF_S="0.01",
        NUMERAI_PUBLIC_ID=state.public_id,
        NUMERAI_SECRET_KEY=state.secret_key,
        NUMERAI_MODEL_NAME=model_name,
        **extra,
    ).items():
        monkeypatch.setenv(name, value)


def tiny_definitions(home, api_url: str, state, **overrides):
    """The real code location's definitions, with tiny knobs, pointed at the stand-in.

    Returns (defs, resources): defs already carries those resources (credentials from `state`,
    or none for a dry run); `resources` is the same dict, for dagster.materialize.
    """
    import dagster as dg

    from numerai_assets.definitions import build_definitions
    from numerai_assets.shared.numerai_api import NumeraiAPI
    from numerai_assets.shared.settings import load_settings

    settings = load_settings(
        home=home,
        api_url=api_url,
        baseline_estimators=TINY_BASELINE_ESTIMATORS,
        executor="in_process",
        # an override of None drops the tiny knob: the service's default applies, as if unset
        **{k: v for k, v in (TINY_KNOBS | overrides).items() if v is not None},
    )
    defs = build_definitions(settings)
    api = NumeraiAPI(
        api_url=api_url,
        public_id=None if state is None else state.public_id,
        secret_key=None if state is None else state.secret_key,
        retries=3,
        backoff_s=0.01,
    )
    resources = {**defs.resources, "numerai": api}
    bound = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=resources,
        executor=defs.executor,
    )
    return bound, resources
