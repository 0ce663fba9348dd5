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
    if "skipped" in summary.get("raw_round", {}):
        print(f"raw_round        skipped: {summary['raw_round']['skipped']}")
    elif "raw_round" in summary:
        live = summary["raw_round"]
        print(f"raw_round        round {live['round']}: {live['rows']:,} live rows, era {live['live_era']}")
    print(f"store            {clean['path']}")


def print_training_summary(summary: dict[str, dict]) -> None:
    folds = sorted(name for name in summary if name.startswith("fold_model_"))
    print("\n== training summary ==")
    if "cv_folds" in summary:
        plan = summary["cv_folds"]
        print(
            f"model version {plan['model_version']}: purge gap {plan['purge_gap']} eras, test eras {plan['test_eras']}"
        )
    print(f"{'fold':<14}{'best epoch':>11}{'epochs':>8}{'val CORR':>10}{'sharpe':>8}{'rows/s':>10}  device")
    for name in folds:
        m = summary[name]
        print(
            f"{name:<14}{m['best_epoch']:>11}{m['epochs_run']:>8}{m['val_corr_mean']:>10.4f}"
            f"{m['val_corr_sharpe']:>8.2f}{m['rows_per_s']:>10,.0f}  {m['device']}"
        )
    if "ensemble_weights" in summary:
        weights = summary["ensemble_weights"]
        folds_weights = ", ".join(
            f"{k.removeprefix('weight_')} {v:.3f}" for k, v in weights.items() if k.startswith("weight_")
        )
        print(f"ensemble weights (out-of-fold, shrunk to equal): {folds_weights}")
    if "validation_diagnostics" in summary:
        print_diagnostics_summary(summary["validation_diagnostics"])
    if summary.get("numerai_diagnostics", {}).get("status", "off") != "off":
        numerai = summary["numerai_diagnostics"]
        shown = f" (id {numerai['diagnostics_id']})" if "diagnostics_id" in numerai else ""
        print(f"Numerai diagnostics: {numerai['status']}{shown}")
    if "model_choice" in summary:
        print_choice_summary(summary["model_choice"], summary.get("live_model"))


def print_choice_summary(choice: dict, live: dict | None) -> None:
    """The week's candidates: the out-of-fold figures decide, the test block is for the report."""
    print(f"\n== candidates, chosen by out-of-fold {choice['metric']} ==")
    print("| candidate | chosen | oof corr | oof sharpe | test corr | test sharpe |")
    print("|---|---|---|---|---|---|")
    for record in choice["candidates"].records:
        r = record.data
        print(
            f"| {r['candidate']} | {'yes' if r['chosen'] else ''} | {r['oof_corr_mean']:.4f} | "
            f"{r['oof_corr_sharpe']:.2f} | {r['test_corr_mean']:.4f} | {r['test_corr_sharpe']:.2f} |"
        )
    print(f"chosen: {choice['candidate']} ({choice['reason']})")
    print(f"blend weights (fitted out of fold): {format_weights(choice['blend_weights'])}")
    if live is not None:
        print(
            f"live uses {live['candidate']} refit on every resolved era: {live['live_checkpoints']}, "
            f"LightGBM {live['lightgbm']}, peer ridge {live['peer_ridge']}"
        )


def format_weights(weights: dict[str, float]) -> str:
    """{"transformer": 0.45, "lgbm": 0.1} -> "transformer 0.45, lgbm 0.10" (bench/replay_service reads it)."""
    return ", ".join(f"{name} {weight:.2f}" for name, weight in weights.items())


def print_diagnostics_summary(diagnostics: dict) -> None:
    print(f"\n== held-out test eras {diagnostics['test_eras']} ==")
    print(diagnostics["metrics_md"])
    print(f"HTML report: {diagnostics['report']}")


def print_receipt(receipt: dict) -> None:
    print("\n== submission ==")
    if receipt["status"] == "dry_run":
        print(
            f"round {receipt['round']}: DRY RUN (no credentials): {receipt['rows']:,} predictions validated, not uploaded"
        )
    elif receipt["status"] == "already_uploaded":
        print(
            f"round {receipt['round']}: already submitted as {receipt['model_name']} "
            f"(submission {receipt['submission_id']}); nothing uploaded"
        )
    else:
        print(
            f"round {receipt['round']}: uploaded {receipt['rows']:,} predictions as {receipt['model_name']}, "
            f"submission {receipt['submission_id']}"
        )
    print(
        f"model version {receipt['model_version']}, sha256 {receipt['sha256'][:16]}…, file {receipt['path']}"
    )
