import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from model_core import schema
from model_core.era_store import EraStore
from model_core.errors import DataContractError
from numerai_assets.ingest.assets import clean_eras, feature_returns, raw_dataset, raw_round
from numerai_assets.shared.numerai_api import NumeraiAPI, NumeraiAPIError
from numerai_assets.shared.partitions import era_partitions, round_partitions
from numerai_assets.shared.resources import NumeraiHome
from numerai_assets.shared.settings import SettingsError

INGEST = [raw_dataset, clean_eras, feature_returns]


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_ingest_assets_materialise_against_the_stand_in(api, home, instance, tournament):
    result = dg.materialize(INGEST, resources={"numerai": api, "numerai_home": home}, instance=instance)
    assert result.success

    version_dir = tournament / "v5.3"
    train = pl.scan_parquet(version_dir / "train.parquet")
    validation = pl.scan_parquet(version_dir / "validation.parquet")
    n_rows = train.select(pl.len()).collect().item() + validation.select(pl.len()).collect().item()
    medium = json.loads((version_dir / "features.json").read_text())["feature_sets"]["medium"]

    raw = _metadata(result, "raw_dataset")
    assert raw["rows"] == n_rows
    assert (home.layout.raw_dataset_dir("v5.3") / "train.parquet").read_bytes() == (
        version_dir / "train.parquet"
    ).read_bytes()

    clean = _metadata(result, "clean_eras")
    store = EraStore(home.layout.clean_eras_current)
    assert clean["rows"] == store.n_rows == n_rows
    assert store.features == medium
    unresolved = (
        validation.filter(pl.col("data_type") != "validation").select(pl.col("era").n_unique()).collect()
    )
    assert clean["eras"] - clean["resolved_eras"] == unresolved.item() > 0
    assert sorted(instance.get_dynamic_partitions(era_partitions.name)) == store.eras

    # one era read back equals the source rows, cleaned
    era = store.resolved_eras()[5]
    source = train.filter(pl.col("era") == era).select("id", *medium, "target").collect()
    sliced = store.era(era)
    assert sliced.ids == source["id"].to_list()
    np.testing.assert_array_equal(
        sliced.targets[:, store.target_index("target")], source["target"].to_numpy()
    )
    raw_values = source.select(medium).to_numpy()
    kept = sliced.features != schema.MISSING
    np.testing.assert_array_equal(sliced.features[kept], raw_values[kept])

    returns = pl.read_parquet(home.layout.feature_returns_path)
    assert returns.height == clean["resolved_eras"] and returns.columns == ["era", *medium]
    assert _metadata(result, "feature_returns")["features"] == len(medium)


def test_raw_round_downloads_the_round_to_its_own_path(
    api, home, instance, tournament, tournament_state, server
):
    number = tournament_state.current.number
    instance.add_dynamic_partitions(round_partitions.name, [str(number)])
    result = dg.materialize(
        [raw_round],
        resources={"numerai": api, "numerai_home": home},
        instance=instance,
        partition_key=str(number),
    )
    live = home.layout.round_dir(number, "v5.3") / "live.parquet"
    source = tournament / "rounds" / str(number) / "v5.3" / "live.parquet"
    assert live.read_bytes() == source.read_bytes()
    meta = _metadata(result, "raw_round")
    assert meta["round"] == number
    assert meta["rows"] == pl.scan_parquet(source).select(pl.len()).collect().item()
    assert any(op == "dataset" or (op and "dataset" in op) for _, _, op, _ in server.request_log)


def test_transient_server_errors_are_retried(api, home, instance, server):
    from tournament_sim.server import FaultConfig

    # numerapi retries GraphQL 5xx itself (sleeping 5 s); downloads are retried by our resource
    server.set_faults(FaultConfig(fail_first=2, fail_paths=("download",)))
    result = dg.materialize(
        [raw_dataset], resources={"numerai": api, "numerai_home": home}, instance=instance
    )
    assert result.success
    statuses = [
        status for _, path, _, status in server.request_log if "/files/" in path or "download" in path
    ]
    assert statuses.count(500) == 2


def test_unreachable_api_fails_with_a_clear_error_and_writes_nothing(home, instance):
    api = NumeraiAPI(api_url="http://127.0.0.1:9", retries=2, backoff_s=0.01)
    with pytest.raises(
        NumeraiAPIError, match=r"list datasets: the Numerai API at http://127.0.0.1:9 is unreachable"
    ):
        dg.materialize([raw_dataset], resources={"numerai": api, "numerai_home": home}, instance=instance)
    assert not home.layout.raw_dataset_dir("v5.3").exists()


def test_a_truncated_download_is_rejected_and_the_previous_data_kept(api, home, instance, tournament):
    resources = {"numerai": api, "numerai_home": home}
    dg.materialize([raw_dataset], resources=resources, instance=instance)
    published = home.layout.raw_dataset_dir("v5.3").resolve()
    target = tournament / "v5.3" / "validation.parquet"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataContractError, match=r"validation.parquet: not a readable parquet file"):
        dg.materialize([raw_dataset], resources=resources, instance=instance)
    assert home.layout.raw_dataset_dir("v5.3").resolve() == published
    assert (published / "validation.parquet").stat().st_size == len(data)
    assert [p.name for p in published.parent.iterdir() if p.name.startswith(".")] == []


def test_unknown_feature_set_fails_before_the_large_files_naming_the_variable(api, home, instance, server):
    resources = {"numerai": api, "numerai_home": NumeraiHome(home=home.home, feature_set="enormous")}
    with pytest.raises(
        SettingsError,
        match=r"NUMERAI_FEATURE_SET: 'enormous' is not a feature set of v5.3/features.json, which offers: .*medium",
    ):
        dg.materialize([raw_dataset, clean_eras], resources=resources, instance=instance)
    downloaded = [path for _, path, _, status in server.request_log if "/files/" in path and status < 300]
    assert downloaded and all(path.endswith("features.json") for path in downloaded), downloaded
    assert not home.layout.raw_dataset_dir("v5.3").exists()


def test_no_secret_reaches_metadata_or_logs(api, home, instance, tournament_state):
    result = dg.materialize(INGEST, resources={"numerai": api, "numerai_home": home}, instance=instance)
    records = instance.all_logs(result.run_id)
    text = " ".join(str(r.dagster_event) + str(r.user_message) for r in records)
    assert tournament_state.secret_key not in text


def test_a_file_the_api_does_not_offer_is_named(api, home, instance, tournament):
    (tournament / "v5.3" / "validation.parquet").unlink()
    with pytest.raises(NumeraiAPIError, match=r"the API does not offer v5.3/validation.parquet"):
        dg.materialize([raw_dataset], resources={"numerai": api, "numerai_home": home}, instance=instance)
    assert not home.layout.raw_dataset_dir("v5.3").exists()


# --- a bad download never replaces a good one; staging of dead runs is removed (issue 13) ---


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _duplicate_an_id(path: Path) -> None:
    frame = pl.read_parquet(path)
    ids = frame["id"].to_list()
    ids[1] = ids[0]  # rows 0 and 1 share an era: the file stays sorted by era
    frame.with_columns(pl.Series("id", ids)).write_parquet(path)


def _feature_value_7(path: Path) -> None:
    frame = pl.read_parquet(path)
    feature = json.loads((path.parent / "features.json").read_text())["feature_sets"]["medium"][0]
    values = frame[feature].to_list()
    values[3] = 7
    frame.with_columns(pl.Series(feature, values, dtype=frame.schema[feature])).write_parquet(path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_duplicate_an_id, r"validation\.parquet: duplicate ids in column id"),
        (_feature_value_7, r"validation\.parquet: column feature_\w+ has values outside 0\.\.4 in era"),
    ],
    ids=["duplicate_id", "feature_value_7"],
)
def test_a_bad_download_after_a_good_one_leaves_the_good_one_current(
    api, home, instance, tournament, damage, message
):
    resources = {"numerai": api, "numerai_home": home}
    assert dg.materialize(INGEST, resources=resources, instance=instance).success
    link = home.layout.raw_dataset_dir("v5.3")
    good, good_files = link.resolve(), _digests(link)
    store = home.layout.clean_eras_current.resolve()
    served = tournament / "v5.3" / "validation.parquet"
    assert good_files["validation.parquet"] == hashlib.sha256(served.read_bytes()).hexdigest()
    damage(served)
    for _ in range(2):  # the second failure must not prune the good download either
        with pytest.raises(
            DataContractError, match=rf"v5\.3: the download is rejected, not published .*{message}"
        ):
            dg.materialize(INGEST, resources=resources, instance=instance)
        assert link.resolve() == good and _digests(link) == good_files
        assert home.layout.clean_eras_current.resolve() == store
        assert sorted(p.name for p in link.parent.iterdir()) == sorted(["current", "v5.3", good.name])


def test_a_bad_live_file_leaves_the_good_round_download_current(
    api, home, instance, tournament, tournament_state
):
    number = tournament_state.current.number
    instance.add_dynamic_partitions(round_partitions.name, [str(number)])
    resources = {"numerai": api, "numerai_home": home}
    dg.materialize([raw_round], resources=resources, instance=instance, partition_key=str(number))
    link = home.layout.round_dir(number, "v5.3")
    good, good_files = link.resolve(), _digests(link)
    _duplicate_an_id(tournament / "rounds" / str(number) / "v5.3" / "live.parquet")
    for _ in range(2):
        with pytest.raises(
            DataContractError, match=rf"round {number}: the download is rejected.*duplicate ids"
        ):
            dg.materialize([raw_round], resources=resources, instance=instance, partition_key=str(number))
        assert link.resolve() == good and _digests(link) == good_files
        assert sorted(p.name for p in link.parent.iterdir()) == sorted(["v5.3", good.name])


_HOLD = """
import sys, time
from pathlib import Path
from model_core.atomic import atomic_path, staging_dir
kind, where, name = sys.argv[1:]
with (staging_dir(Path(where), name) if kind == "staging" else atomic_path(Path(where) / name)) as path:
    (path / "train.parquet" if kind == "staging" else path).write_bytes(b"half a file")
    print(path, flush=True)
    time.sleep(600)
"""


def _holder(kind: str, where: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """A process that made a staging directory (or a temporary file) and is still writing it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, kind, str(where), name],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return proc, Path(proc.stdout.readline().strip())


def _sigkill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def test_a_run_removes_the_staging_of_killed_runs_and_never_a_live_ones(api, home, instance):
    layout = home.layout
    raw, clean, features = (
        layout.raw_dataset_dir("v5.3").parent,
        layout.clean_eras_root,
        layout.feature_returns_path,
    )
    killed = [
        _holder("staging", raw, "v5.3"),  # SIGKILL during the download
        _holder("staging", raw, "v5.1"),  # another version's download
        _holder("staging", clean, "current"),  # SIGKILL during clean_eras
        _holder("tmp", features.parent, features.name),  # SIGKILL while writing feature_returns
    ]
    for proc, path in killed:
        assert path.exists() and Path(f"{path}.lock").exists()
        _sigkill(proc)
    unowned = raw / ".v5.3-0123456789ab.staging"  # left by a version before staging had owners
    unowned.mkdir()
    live, live_path = _holder("staging", raw, "v5.3")  # a concurrent download, still running
    try:
        result = dg.materialize(INGEST, resources={"numerai": api, "numerai_home": home}, instance=instance)
        assert result.success
        for _proc, path in killed:
            assert not path.exists() and not Path(f"{path}.lock").exists(), path
        assert not unowned.exists()
        assert (live_path / "train.parquet").read_bytes() == b"half a file"
        assert Path(f"{live_path}.lock").exists()
        assert [p.name for p in clean.iterdir() if p.name.startswith(".")] == []
        assert [p.name for p in features.parent.iterdir() if p.name.startswith(".")] == []
    finally:
        _sigkill(live)
    dg.materialize([raw_dataset], resources={"numerai": api, "numerai_home": home}, instance=instance)
    assert [p.name for p in raw.iterdir() if p.name.startswith(".")] == []
