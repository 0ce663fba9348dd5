"""What the CLI prints after a run: short, numbers first."""

from __future__ import annotations


def print_ingest_summary(summary: dict[str, dict]) -> None:
    raw, clean, returns = summary["raw_dataset"], summary["clean_eras"], summary["feature_returns"]
    print("\n== ingestion summary ==")
    print(
        f"raw_dataset      {raw['dataset_version']}: {raw['rows']:,} train+validation rows, "
        f"{raw['bytes'] / 1e6:,.1f} MB downloaded in {raw['seconds']:.1f}s from {raw['api']}"
    )
    print(
        f"clean_eras       {clean['rows']:,} rows, {clean['eras']} eras ({clean['first_era']}..{clean['last_era']}, "
        f"{clean['resolved_eras']} resolved), {clean['features']} features ({clean['feature_set']}), "
        f"{clean['targets']} targets, {clean['bytes'] / 1e6:,.1f} MB int8 store, {clean['seconds']:.1f}s"
    )
    print(
        f"                 missing share {clean['missing_share']:.4%}, "
        f"{clean['unavailable_feature_eras']} unavailable (all-2) feature-eras -> MISSING"
    )
    print(
        f"feature_returns  {returns['eras']} eras x {returns['features']} features, "
        f"mean |corr| {returns['mean_abs_corr']:.4f}"
    )
    if "raw_round" in summary:
        live = summary["raw_round"]
        print(f"raw_round        round {live['round']}: {live['rows']:,} live rows, era {live['live_era']}")
    print(f"store            {clean['path']}")
