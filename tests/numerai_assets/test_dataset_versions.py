"""Dataset versions: `latest` resolved at ingest and recorded with the data, pinned versions, and
feature sets read from features.json (one or a comma-separated list), against the real stand-in."""

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from model_core.era_store import EraStore
from numerai_assets.ingest.assets import clean_eras, raw_dataset
from numerai_assets.shared.dataset_versions import offered_versions, resolve_dataset_version, version_key
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.resources import NumeraiHome
from numerai_assets.shared.settings import SettingsError
from tournament_sim.generate import add_version, generate_tournament
from tournament_sim.layout import load_state
from tournament_sim.server import SimServer

INGEST = [raw_dataset, clean_eras]


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_versions_sort_by_number_not_by_text():
    names = [
        "v5.9/train.parquet",
        "v5.10/train.parquet",
        "v4.3/train_int8.parquet",
        "v5.2/live.parquet",
        "signals/v2.0/train.parquet",  # another tournament's files: not a version of ours
        "README.txt",
    ]
    assert offered_versions(names) == ["v4.3", "v5.2", "v5.9", "v5.10"]
    assert offered_versions(names, files=("live.parquet",)) == ["v5.2"]
    assert sorted(["v5.10", "v5.9", "v6.0", "v5.2"], key=version_key) == ["v5.2", "v5.9", "v5.10", "v6.0"]
    assert resolve_dataset_version("latest", names, "http://api") == "v5.10"
    assert resolve_dataset_version("v5.9", names, "http://api") == "v5.9"
    with pytest.raises(
        SettingsError,
        match=r"NUMERAI_DATASET_VERSION: v5\.3 is not offered by the API at http://api; "
        r"it offers v4\.3, v5\.2, v5\.9, v5\.10",
    ):
        resolve_dataset_version("v5.3", names, "http://api")


# --- a tournament offering v5.2 and v5.3 ---------------------------------------------------


@pytest.fixture(scope="session")
def two_version_tournament(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("two_versions")
    generate_tournament(path, "tiny", seed=7, data_version="v5.2")
    add_version(path, "v5.3")
    return path


@pytest.fixture
def two_versions_api(two_version_tournament, tmp_path):
    tournament = Path(shutil.copytree(two_version_tournament, tmp_path / "tournament"))
    state = load_state(tournament)
    with SimServer(tournament) as running:
        yield NumeraiAPI(
            api_url=running.url,
            public_id=state.public_id,
            secret_key=state.secret_key,
            retries=3,
            backoff_s=0.01,
        )


def _links(home: NumeraiHome) -> dict[str, str]:
    """Where each published symlink of the home points (raw versions, raw/current, the store)."""
    layout = home.layout
    links = [*layout.raw_current_link.parent.glob("[!.]*"), layout.clean_eras_current]
    return {str(p.relative_to(layout.root)): os.readlink(p) for p in links if p.is_symlink()}


def test_latest_ingests_the_newest_offered_version_and_records_it(two_versions_api, tmp_path, instance):
    home = NumeraiHome(home=str(tmp_path / "home"), feature_set="medium")  # NUMERAI_DATASET_VERSION unset
    assert home.dataset_version == "latest"
    result = dg.materialize(
        INGEST, resources={"numerai": two_versions_api, "numerai_home": home}, instance=instance
    )
    raw = _metadata(result, "raw_dataset")
    assert raw["dataset_version"] == "v5.3" and raw["dataset_version_setting"] == "latest"
    assert raw["offered_versions"] == "v5.2, v5.3"
    assert os.readlink(home.layout.raw_current_link) == "v5.3"
    assert not home.layout.raw_dataset_dir("v5.2").exists()  # only the resolved version is downloaded
    store = EraStore(home.layout.clean_eras_current)
    assert store.dataset_version == "v5.3" == _metadata(result, "clean_eras")["dataset_version"]
    logs = "\n".join(
        e.message for e in instance.all_logs(result.run_id) if e.message and "dataset version" in e.message
    )
    assert "dataset version v5.3 (NUMERAI_DATASET_VERSION=latest; the API offers v5.2, v5.3)" in logs


def test_a_pinned_version_is_ingested_even_when_a_newer_one_is_offered(two_versions_api, tmp_path, instance):
    home = NumeraiHome(home=str(tmp_path / "home"), feature_set="medium", dataset_version="v5.2")
    result = dg.materialize(
        INGEST, resources={"numerai": two_versions_api, "numerai_home": home}, instance=instance
    )
    assert _metadata(result, "raw_dataset")["dataset_version"] == "v5.2"
    store = EraStore(home.layout.clean_eras_current)
    assert store.dataset_version == "v5.2"
    medium = json.loads((home.layout.raw_dataset_dir("v5.2") / "features.json").read_text())["feature_sets"]
    assert store.features == medium["medium"]


def test_a_pinned_version_the_api_does_not_offer_fails_naming_it_and_loses_nothing(
    two_versions_api, tmp_path, instance
):
    good = NumeraiHome(home=str(tmp_path / "home"), feature_set="medium")
    resources = {"numerai": two_versions_api, "numerai_home": good}
    assert dg.materialize(INGEST, resources=resources, instance=instance).success
    before = _links(good)
    store = EraStore(good.layout.clean_eras_current)
    pinned = NumeraiHome(home=good.home, feature_set="medium", dataset_version="v5.9")
    with pytest.raises(
        SettingsError,
        match=r"NUMERAI_DATASET_VERSION: v5\.9 is not offered by the API at http://127\.0\.0\.1:\d+; "
        r"it offers v5\.2, v5\.3 \(or set `latest`\)",
    ):
        dg.materialize(INGEST, resources={**resources, "numerai_home": pinned}, instance=instance)
    assert _links(good) == before
    assert EraStore(good.layout.clean_eras_current).path == store.path and store.dataset_version == "v5.3"
    assert not list(good.layout.raw_current_link.parent.glob(".*"))  # no staging, no lock left


# --- feature sets from features.json (the tiny tournament is v5.3: it has `quantum`) ---------


def _ingest_feature_set(api, tmp_path, instance, feature_set: str) -> EraStore:
    home = NumeraiHome(home=str(tmp_path / "home"), feature_set=feature_set)
    result = dg.materialize(INGEST, resources={"numerai": api, "numerai_home": home}, instance=instance)
    assert _metadata(result, "clean_eras")["feature_set"] == feature_set
    return EraStore(home.layout.clean_eras_current)


def test_the_quantum_feature_set_of_v5_3(api, tournament, tmp_path, instance):
    sets = json.loads((tournament / "v5.3" / "features.json").read_text())["feature_sets"]
    store = _ingest_feature_set(api, tmp_path, instance, "quantum")
    assert store.features == sets["quantum"] and len(store.features) > 0
    assert store.dataset_version == "v5.3"


def test_a_list_of_feature_sets_is_their_union_in_the_order_of_all(api, tournament, tmp_path, instance):
    sets = json.loads((tournament / "v5.3" / "features.json").read_text())["feature_sets"]
    store = _ingest_feature_set(api, tmp_path, instance, "medium,quantum")
    wanted = set(sets["medium"]) | set(sets["quantum"])
    assert store.features == [f for f in sets["all"] if f in wanted]
    assert len(store.features) == len(wanted) > len(sets["medium"])


def test_a_feature_set_features_json_lacks_is_named_with_the_offered_ones(api, tmp_path, instance):
    with pytest.raises(
        SettingsError,
        match=r"NUMERAI_FEATURE_SET: 'galaxy' is not a feature set of v5\.3/features\.json, "
        r"which offers: .*medium.*quantum",
    ):
        _ingest_feature_set(api, tmp_path, instance, "medium,galaxy")
    assert not (tmp_path / "home" / "raw" / "v5.3").exists()
