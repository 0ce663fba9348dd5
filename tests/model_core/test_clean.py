import numpy as np
import polars as pl
import pytest

from model_core import schema
from model_core.clean import CleanConfig, build_era_store, clean_files, clean_live_frame
from model_core.era_store import EraStore
from model_core.errors import DataContractError
from tests.model_core.rawdata import FEATURES, TARGETS, raw_frame, write_dataset


def _clean(tmp_path, frame: pl.DataFrame) -> EraStore:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "train.parquet"
    frame.write_parquet(src)
    out = tmp_path / "store"
    out.mkdir()
    clean_files([src], FEATURES, TARGETS, out, config=CleanConfig(eras_per_chunk=2))
    return EraStore(out)


def test_store_round_trips_features_and_targets_era_by_era(tmp_path):
    frame = raw_frame(["0001", "0002", "0003"])
    store = _clean(tmp_path, frame)
    assert store.eras == ["0001", "0002", "0003"]
    era = store.era("0002")
    expected = frame.filter(pl.col("era") == "0002")
    assert era.features.dtype == np.int8 and era.targets.dtype == np.float32
    np.testing.assert_array_equal(era.features, expected.select(FEATURES).to_numpy())
    np.testing.assert_allclose(era.targets[:, store.target_index("target")], expected["target"].to_numpy())
    assert era.ids == expected["id"].to_list()
    assert era.features.base is None or era.features.base.size == era.features.size  # one era, not the set


def test_null_becomes_missing_and_all_two_era_column_becomes_missing(tmp_path):
    frame = raw_frame(["0001", "0002"]).with_columns(
        # feature_alpha is "not available" in era 0001: all 2s there
        pl.when(pl.col("era") == "0001")
        .then(2)
        .otherwise(pl.col("feature_alpha"))
        .cast(pl.Int8)
        .alias("feature_alpha"),
        # one null in feature_beta, era 0002, first row of that era
        pl.when(pl.int_range(pl.len()) == 10)
        .then(None)
        .otherwise(pl.col("feature_beta"))
        .alias("feature_beta"),
    )
    store = _clean(tmp_path, frame)
    first, second = store.era("0001"), store.era("0002")
    assert (first.features[:, 0] == schema.MISSING).all()
    assert (first.features[:, 1:] != schema.MISSING).all()
    assert second.features[0, 1] == schema.MISSING
    assert (second.features[1:, 1] != schema.MISSING).all()
    assert (second.features[:, 0] != schema.MISSING).all()  # the rule is per era
    stats = store.era_table.filter(pl.col("era") == "0001").row(0, named=True)
    assert stats["unavailable_features"] == 1


def test_unresolved_eras_are_kept_for_prediction_with_nan_targets(tmp_path):
    train = raw_frame(["0001", "0002"])
    validation = pl.concat(
        [raw_frame(["0003"], data_type="validation", seed=1), raw_frame(["0004"], data_type="test", seed=2)]
    ).with_columns(pl.when(pl.col("era") == "0004").then(None).otherwise(pl.col(t)).alias(t) for t in TARGETS)
    raw_dir = write_dataset(tmp_path / "raw", train, validation)
    store, summary = build_era_store(
        raw_dir, tmp_path / "clean" / "current", CleanConfig(feature_set="medium")
    )
    assert store.resolved_eras() == ["0001", "0002", "0003"]
    assert store.eras[-1] == "0004"
    assert np.isnan(store.era("0004").targets).all()
    assert summary.rows == 40 and summary.resolved_eras == 3


def test_era_mixing_scored_and_unresolved_rows_keeps_the_scored_ones(tmp_path):
    frame = raw_frame(["0001"]).with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(pl.lit("test"))
        .otherwise(pl.col("data_type"))
        .alias("data_type")
    )
    store = _clean(tmp_path, frame)
    assert len(store.era("0001").ids) == 7
    assert store.resolved_eras() == ["0001"]


def test_integer_era_labels_are_zero_padded(tmp_path):
    frame = raw_frame(["7", "8"]).with_columns(pl.col("era").cast(pl.Int32))
    assert _clean(tmp_path, frame).eras == ["0007", "0008"]


def test_aux_target_nulls_are_nan_but_main_target_null_is_an_error(tmp_path):
    frame = raw_frame(["0001", "0002"]).with_columns(pl.lit(None, dtype=pl.Float32).alias("target_jasper_60"))
    store = _clean(tmp_path, frame)
    assert np.isnan(store.era("0001").targets[:, store.target_index("target_jasper_60")]).all()
    bad = raw_frame(["0001", "0002"]).with_columns(
        pl.when(pl.col("era") == "0002").then(None).otherwise(pl.col("target")).alias("target")
    )
    with pytest.raises(
        DataContractError, match=r"train\.parquet: column target has 10 null value\(s\) in era 0002"
    ):
        _clean(tmp_path / "bad", bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            pl.when(pl.col("era") == "0002")
            .then(7)
            .otherwise(pl.col("feature_beta"))
            .cast(pl.Int8)
            .alias("feature_beta"),
            r"column feature_beta has values outside 0\.\.4 in era 0002",
        ),
        (pl.col("feature_gamma").cast(pl.Float32), r"column feature_gamma has dtype Float32"),
        (pl.lit("n000000000000001").alias("id"), r"duplicate ids in column id, e\.g\. n000000000000001"),
        (
            pl.when(pl.col("era") == "0002").then(None).otherwise(pl.col("era")).alias("era"),
            r"empty or null era",
        ),
        (
            pl.when(pl.col("era") == "0001").then(1.5).otherwise(pl.col("target")).alias("target"),
            r"column target has values outside \[0, 1\] in era 0001",
        ),
    ],
    ids=["out-of-range", "float-feature", "duplicate-ids", "null-era", "target-range"],
)
def test_bad_input_names_file_column_and_era(tmp_path, change, message):
    with pytest.raises(DataContractError, match=r"train\.parquet: .*" + message):
        _clean(tmp_path, raw_frame(["0001", "0002"]).with_columns(change))


def test_missing_feature_column_is_named(tmp_path):
    with pytest.raises(DataContractError, match=r"train\.parquet: missing feature column\(s\) feature_beta"):
        _clean(tmp_path, raw_frame(["0001"]).drop("feature_beta"))


def test_unknown_feature_set_lists_the_choices(tmp_path):
    raw_dir = write_dataset(
        tmp_path / "raw", raw_frame(["0001"]), raw_frame(["0002"], data_type="validation", seed=1)
    )
    with pytest.raises(
        DataContractError,
        match=r"unknown feature set\(s\) 'huge'; features.json has: all, medium, serenity, small",
    ):
        build_era_store(raw_dir, tmp_path / "clean" / "current", CleanConfig(feature_set="huge"))


def test_a_bad_file_leaves_the_published_store_untouched(tmp_path):
    raw_dir = write_dataset(
        tmp_path / "raw", raw_frame(["0001"]), raw_frame(["0002"], data_type="validation", seed=1)
    )
    link = tmp_path / "clean" / "current"
    good, _ = build_era_store(raw_dir, link, CleanConfig(feature_set="small"))
    data = (raw_dir / "validation.parquet").read_bytes()
    (raw_dir / "validation.parquet").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DataContractError, match=r"validation\.parquet: not a readable parquet file"):
        build_era_store(raw_dir, link, CleanConfig(feature_set="medium"))
    assert EraStore(link).features == FEATURES[:2]
    assert EraStore(link).path == good.path
    leftovers = [p.name for p in link.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_republishing_keeps_the_previous_store_and_prunes_older_ones(tmp_path):
    raw_dir = write_dataset(
        tmp_path / "raw", raw_frame(["0001"]), raw_frame(["0002"], data_type="validation", seed=1)
    )
    link = tmp_path / "clean" / "current"
    paths = [build_era_store(raw_dir, link, CleanConfig())[0].path for _ in range(3)]
    assert link.resolve() == paths[2]
    assert not paths[0].exists() and paths[1].exists()


def test_live_frame_uses_the_same_rules_whatever_the_era_label(tmp_path):
    frame = raw_frame(["X"], rows_per_era=12, data_type="live").with_columns(
        pl.lit(2, dtype=pl.Int8).alias("feature_gamma"), pl.lit(None, dtype=pl.Float32).alias("target")
    )
    frame.write_parquet(tmp_path / "live.parquet")
    ids, features = clean_live_frame(tmp_path / "live.parquet", FEATURES)
    assert ids.to_list() == frame["id"].to_list()
    assert features.dtype == np.int8 and features.shape == (12, 3)
    assert (features[:, 2] == schema.MISSING).all()
    pl.DataFrame({"id": [], "era": []}, schema={"id": pl.String, "era": pl.String}).with_columns(
        [pl.lit(0, dtype=pl.Int8).alias(f) for f in FEATURES]
    ).write_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataContractError, match=r"empty\.parquet: the live file has no rows"):
        clean_live_frame(tmp_path / "empty.parquet", FEATURES)


def test_eras_of_uneven_size_split_across_reads_are_whole(tmp_path):
    frame = pl.concat(
        [
            raw_frame([era], rows_per_era=n, seed=i)
            for i, (era, n) in enumerate([("0001", 7), ("0002", 23), ("0003", 5)])
        ]
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(tmp_path / "train.parquet")
    (tmp_path / "store").mkdir()
    clean_files(
        [tmp_path / "train.parquet"],
        FEATURES,
        TARGETS,
        tmp_path / "store",
        config=CleanConfig(eras_per_chunk=1),
    )
    store = EraStore(tmp_path / "store")
    assert [len(store.era(e).ids) for e in store.eras] == [7, 23, 5]
    assert sum(len(store.era(e).ids) for e in store.eras) == frame.height


def test_a_file_not_sorted_by_era_is_an_error(tmp_path):
    frame = pl.concat([raw_frame(["0001"], seed=1), raw_frame(["0002"], seed=2), raw_frame(["0001"], seed=3)])
    with pytest.raises(DataContractError, match=r"train\.parquet: rows of era 0001 are not contiguous"):
        _clean(tmp_path, frame)
