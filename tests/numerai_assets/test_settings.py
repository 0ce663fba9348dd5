import subprocess
import sys

import pytest

from numerai_assets.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "NUMERAI_PUBLIC_ID",
        "NUMERAI_SECRET_KEY",
        "NUMERAI_API_URL",
        "NUMERAI_N_FOLDS",
        "NUMERAI_DEVICE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_match_the_design():
    settings = load_settings()
    assert settings.dataset_version == "v5.2"
    assert settings.api_url is None and not settings.has_credentials
    assert settings.device == "auto" and settings.n_folds == 4


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NUMERAI_N_FOLDS", "zero"),
        ("NUMERAI_DEVICE", "tpu"),
        ("NUMERAI_API_URL", "ftp://x"),
        ("NUMERAI_N_FOLDS", "0"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_one_key_without_the_other_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("NUMERAI_SECRET_KEY", "s3cr3t-value")
    with pytest.raises(SettingsError, match="NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY") as err:
        load_settings()
    assert "s3cr3t-value" not in str(err.value)


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
