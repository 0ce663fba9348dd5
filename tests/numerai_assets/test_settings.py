import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from numerai_assets.live.resources import LiveKnobs
from numerai_assets.shared import settings_doc
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.resources import DiagnosticsKnobs, NumeraiHome
from numerai_assets.shared.settings import (
    GROUPS,
    KNOBS,
    KNOBS_BY_NAME,
    Settings,
    SettingsError,
    env_var,
    load_settings,
)
from numerai_assets.training.resources import TrainingKnobs


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "NUMERAI_PUBLIC_ID",
        "NUMERAI_SECRET_KEY",
        "NUMERAI_API_URL",
        "NUMERAI_N_FOLDS",
        "NUMERAI_DEVICE",
        "NUMERAI_LOSS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_match_the_design():
    settings = load_settings()
    assert settings.dataset_version == "latest"
    assert settings.api_url is None and not settings.has_credentials
    assert settings.device == "auto" and settings.n_folds == 4


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NUMERAI_N_FOLDS", "zero"),
        ("NUMERAI_DEVICE", "tpu"),
        ("NUMERAI_API_URL", "ftp://x"),
        ("NUMERAI_N_FOLDS", "0"),
        ("NUMERAI_PRECISION", "fp64"),
        ("NUMERAI_EXECUTOR", "threads"),
        ("NUMERAI_CANDIDATE", "xgboost"),
        ("NUMERAI_CROSS_STOCK", "maybe"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


@pytest.mark.parametrize(
    "knob", [k for k in KNOBS if typing.get_origin(k.type) is typing.Literal], ids=lambda k: k.name
)
def test_every_enumerated_knob_is_checked_at_load_naming_the_variable_and_the_choices(monkeypatch, knob):
    monkeypatch.setenv(env_var(knob), "not-a-choice")
    with pytest.raises(SettingsError, match=env_var(knob)) as err:
        load_settings()
    assert all(repr(choice) in str(err.value) for choice in typing.get_args(knob.type))


@pytest.mark.parametrize(
    "value",
    [
        "mix:foo=1",
        "mix:pearson=abc",
        "mix:pearson=nan",
        "mix:pearson=0.5,pearson=0.5",
        "mix:",
        "mix: ",
        "foo",
    ],
)
def test_a_bad_loss_is_refused_at_load_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("NUMERAI_LOSS", value)
    with pytest.raises(SettingsError, match="NUMERAI_LOSS"):
        load_settings()


def test_a_loss_mix_is_parsed_at_load(monkeypatch):
    monkeypatch.setenv("NUMERAI_LOSS", "mix:pearson=0.7,mse=0.3")
    assert load_settings().loss == "mix:pearson=0.7,mse=0.3"


@pytest.mark.parametrize(
    ("value", "problem"),
    [("100,30", "strictly increasing"), ("0,10", "strictly increasing"), ("30;100", "should match pattern")],
)
def test_bad_peer_counts_are_refused_at_load_naming_the_variable(monkeypatch, value, problem):
    monkeypatch.setenv("NUMERAI_PEER_RIDGE_KS", value)
    with pytest.raises(SettingsError, match=f"NUMERAI_PEER_RIDGE_KS: .*{problem}"):
        load_settings()


def test_peer_counts_reach_the_peer_ridge(monkeypatch):
    monkeypatch.setenv("NUMERAI_PEER_RIDGE_KS", "50, 200")
    monkeypatch.setenv("NUMERAI_PEER_RIDGE_LAMBDA", "0.5")
    monkeypatch.setenv("NUMERAI_PEER_RIDGE_HOP", "0")
    config = DiagnosticsKnobs.from_settings(load_settings()).peer_ridge_config()
    assert (config.peer_ks, config.ridge_lambda, config.peer_hop) == ((50, 200), 0.5, 0)


def test_one_key_without_the_other_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("NUMERAI_SECRET_KEY", "s3cr3t-value")
    with pytest.raises(SettingsError, match="NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY") as err:
        load_settings()
    assert "s3cr3t-value" not in str(err.value)


@pytest.mark.parametrize(
    ("empty", "given"),
    [("NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY"), ("NUMERAI_SECRET_KEY", "NUMERAI_PUBLIC_ID")],
)
def test_an_empty_key_beside_the_other_is_refused_naming_it(monkeypatch, empty, given):
    monkeypatch.setenv(empty, "")
    monkeypatch.setenv(given, "s3cr3t-value")
    with pytest.raises(SettingsError, match=f"^{empty} is empty but {given} is set") as err:
        load_settings()
    assert "s3cr3t-value" not in str(err.value)


def test_both_keys_empty_is_a_dry_run(monkeypatch):
    monkeypatch.setenv("NUMERAI_PUBLIC_ID", "")
    monkeypatch.setenv("NUMERAI_SECRET_KEY", "")
    settings = load_settings()
    assert not settings.has_credentials and settings.public_id is None and settings.secret_key is None


def test_secret_is_never_in_the_settings_repr(monkeypatch):
    monkeypatch.setenv("NUMERAI_PUBLIC_ID", "pub")
    monkeypatch.setenv("NUMERAI_SECRET_KEY", "s3cr3t-value")
    settings = load_settings()
    assert "s3cr3t-value" not in repr(settings) and "s3cr3t-value" not in str(settings.model_dump())


def test_code_location_load_fails_naming_the_variable(monkeypatch):
    monkeypatch.setenv("NUMERAI_N_FOLDS", "-3")
    done = subprocess.run(
        [sys.executable, "-c", "import numerai_assets.definitions"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "NUMERAI_N_FOLDS" in done.stderr


# ---- each knob declared once -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_settings_has_one_field_per_declared_knob():
    assert list(Settings.model_fields) == [knob.name for knob in KNOBS]
    for knob in KNOBS:
        field = Settings.model_fields[knob.name]
        assert field.default == knob.default and field.description == knob.doc, knob.name
        assert knob.group in GROUPS and knob.doc and "\n" not in knob.doc, knob.name


def test_the_readme_tables_are_generated_from_the_declarations():
    readme = (ROOT / "README.md").read_text()
    assert settings_doc.generated_section(readme) == settings_doc.tables(), (
        "README.md's settings tables differ from the knob declarations: "
        "run `.venv/bin/python -m numerai_assets.shared.settings_doc README.md`"
    )


@pytest.mark.parametrize("resource", [TrainingKnobs, DiagnosticsKnobs, LiveKnobs, NumeraiHome, NumeraiAPI])
def test_resource_defaults_are_the_declared_ones(resource):
    renamed = {"retries": "api_retries", "backoff_s": "api_backoff_s"}  # NumeraiAPI's field names
    checked = 0
    for name, field in resource.model_fields.items():
        knob = KNOBS_BY_NAME.get(renamed.get(name, name))
        if knob is not None:
            expected = str(knob.default) if isinstance(knob.default, Path) else knob.default
            assert field.default == expected, f"{resource.__name__}.{name}"
            checked += 1
    assert checked >= 2


def test_model_core_config_defaults_are_the_declared_ones():
    from model_core.baseline import BaselineConfig
    from model_core.clean import CleanConfig
    from model_core.cv import CVConfig
    from model_core.ensemble import WeightConfig
    from model_core.model import ModelConfig
    from model_core.peer_ridge import PeerRidgeConfig, parse_ks
    from model_core.train import TrainConfig

    fed = {  # config field -> the knob it takes its default from
        CleanConfig: {"feature_set": "feature_set", "eras_per_chunk": "clean_eras_per_chunk"},
        CVConfig: {"n_folds": "n_folds", "gap_eras": "purge_gap", "test_eras": "test_eras"}
        | {"min_train_eras": "min_train_eras"},
        ModelConfig: {name: name for name in ("d_model", "n_heads", "n_layers", "temporal_lags")}
        | {name: name for name in ("cross_stock", "similarity_prior", "feature_dropout", "peer_knn")},
        TrainConfig: {name: name for name in ("max_epochs", "learning_rate", "loss", "patience")}
        | {name: name for name in ("precision", "gradient_checkpointing", "seed")},
        WeightConfig: {"shrinkage": "ensemble_shrinkage"},
        BaselineConfig: {"n_estimators": "baseline_estimators"},
        PeerRidgeConfig: {"ridge_lambda": "peer_ridge_lambda", "peer_hop": "peer_ridge_hop"},
    }
    for config, fields in fed.items():
        defaults = {f.name: f.default for f in dataclasses.fields(config)}
        for field, knob in fields.items():
            assert defaults[field] == KNOBS_BY_NAME[knob].default, f"{config.__name__}.{field}"
    # The peer counts are a string setting ("30,100,300"), parsed into the config's tuple.
    assert PeerRidgeConfig().peer_ks == parse_ks(KNOBS_BY_NAME["peer_ridge_ks"].default)
