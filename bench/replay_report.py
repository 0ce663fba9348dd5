"""Report of the replay benchmark (bench/replay.py): per seed and pooled over seeds, every model
against Numerai's example LightGBM on `all`, and the RESULTS.md section."""

from __future__ import annotations

import dataclasses
import math
import os
import platform

import numpy as np
from common import command_line, cpu_model, load_average, markdown_table, memory_gib, today
from replay_scoring import TIE_SE, Paired, Summary

REFERENCE = "LGBM all"  # what every model is compared with
SERVICE = "service (ensemble)"


@dataclasses.dataclass
class ModelScores:
    name: str
    features: str
    corr: list[float]  # per held-out era, in round order
    bmc: list[float]
    fit_s: float | None = None
    predict_s: float | None = None
    note: str = ""


@dataclasses.dataclass
class SeedResult:
    seed: int
    eras: list[str]  # held-out eras, in round order
    rounds: list[int]
    models: list[ModelScores]
    data: str  # a line about the served data
    generation_s: float
    generation_cached: bool
    replay_s: float
    others: float  # share of the CPUs other processes used during this seed
    service: dict | None = None  # train_s, submit_s, advance_s, test_eras, test_block, env

    def model(self, name: str) -> ModelScores | None:
        return next((m for m in self.models if m.name == name), None)


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def comparison(scores: list[float], reference: list[float] | None) -> tuple[str, str]:
    if reference is None or scores is reference:
        return "-", "-"
    paired = Paired.of(scores, reference)
    return paired.text(), paired.verdict


def seed_table(result: SeedResult) -> list[str]:
    ref = result.model(REFERENCE)
    ref_mean = Summary.of(ref.corr).mean if ref else math.nan
    header = [
        "model",
        "features",
        "CORR mean",
        "std",
        "Sharpe",
        "max drawdown",
        "BMC mean",
        f"ratio to {REFERENCE}",
        f"CORR - {REFERENCE} (± SE)",
        "verdict",
        "fit s",
        "predict s",
    ]
    rows = []
    for m in result.models:
        s = Summary.of(m.corr)
        diff, verdict = comparison(m.corr, ref.corr if ref else None)
        rows.append(
            [
                m.name + (f" ({m.note})" if m.note else ""),
                m.features,
                fmt(s.mean),
                fmt(s.std),
                fmt(s.sharpe, 2),
                fmt(s.max_drawdown),
                fmt(float(np.mean(m.bmc))),
                fmt(s.mean / ref_mean, 2) if ref and m is not ref and ref_mean > 0 else "-",
                diff,
                verdict,
                seconds(m.fit_s),
                seconds(m.predict_s),
            ]
        )
    return markdown_table(header, rows)


def pooled_table(results: list[SeedResult]) -> list[str]:
    """Every model over the held-out eras of all seeds together (paired era by era)."""
    names = [m.name for m in results[0].models if all(r.model(m.name) for r in results)]
    header = ["model", "eras", "CORR mean", "Sharpe", "BMC mean", f"CORR - {REFERENCE} (± SE)", "verdict"]
    rows = []
    for name in names:
        corr = [c for r in results for c in r.model(name).corr]
        bmc = [b for r in results for b in r.model(name).bmc]
        ref = [c for r in results for c in r.model(REFERENCE).corr] if results[0].model(REFERENCE) else None
        diff, verdict = comparison(corr, ref) if name != REFERENCE else ("-", "-")
        s = Summary.of(corr)
        rows.append(
            [name, str(len(corr)), fmt(s.mean), fmt(s.sharpe, 2), fmt(float(np.mean(bmc))), diff, verdict]
        )
    return markdown_table(header, rows)


def service_lines(result: SeedResult) -> list[str]:
    service = result.service
    if service is None:
        return []
    replay = result.model(SERVICE)
    submits = list(service["submit_s"].values())
    ensemble = service["test_block"].get("ensemble", {})
    lgbm = service["test_block"].get("baseline_lgbm", {})
    chosen = [(n, r) for n, r in service.get("candidates", {}).items() if r.get("chosen") == 1.0]
    printed = (
        f"transformer ensemble CORR {fmt(ensemble.get('corr mean'))}"
        + (f", its LightGBM {fmt(lgbm.get('corr mean'))}" if lgbm else "")
        + (
            f"; the chosen candidate ({chosen[0][0]}) {fmt(chosen[0][1].get('test corr'))}"
            if chosen
            else "; no candidate table printed"
        )
        + (
            "; blend weights " + ", ".join(f"{n} {w:.2f}" for n, w in service["blend_weights"].items())
            if service.get("blend_weights")
            else ""
        )
        if service["test_eras"]
        else "NOT FOUND in the output of `train` (no `== held-out test eras ... ==` table)"
    )
    return [
        f"- seed {result.seed}, service: `train` {seconds(service['train_s'])} s; `submit` per round "
        f"{np.mean(submits):.0f} s mean ({min(submits):.0f}..{max(submits):.0f}), {len(submits)} rounds, "
        f"each submitted exactly once; `sim advance-round` {service['advance_s']:.0f} s in all",
        f"- seed {result.seed}, test block the weekly job printed (eras {service['test_eras'] or '?'}): "
        f"{printed}; the replay's CORR of the same model on the {len(result.eras)} held-out rounds: "
        f"{fmt(Summary.of(replay.corr).mean) if replay else '-'}",
    ]


def machine() -> str:
    import lightgbm

    return (
        f"{len(os.sched_getaffinity(0))} CPU(s) ({cpu_model()}), {memory_gib():.1f} GiB RAM, "
        f"Python {platform.python_version()}, LightGBM {lightgbm.__version__}"
    )


def report(args, results: list[SeedResult], baselines: list, json_path, total_s: float) -> str:
    scale = args.scale
    first = results[0]
    lines = [
        f"## Walk-forward replay on the {scale} tournament (bench/replay.py)",
        "",
        f"- date: {today()}",
        f"- command: `{command_line()}`",
        f"- machine: {machine()}; load average at the end {load_average()}",
        f"- replay: the last {args.holdout} resolved validation eras of each simulated tournament held out "
        f"and served one per round as `live.parquet` (targets null, era label `{args.live_era}`); the "
        f"served dataset ends before them, its last {args.unresolved} eras unresolved (null targets, "
        "data_type `test`); every model trains on exactly the served eras with a target and predicts "
        "the same live files",
        f"- seeds: {', '.join(str(r.seed) for r in results)}; per-era scores in `{json_path}`",
        f"- service: {'not run (--no-service)' if first.service is None else service_settings(args)}",
        "- baselines (LightGBM native API, objective l2, nulls -> 2, "
        f"{args.threads} thread(s){', OMP_WAIT_POLICY=PASSIVE' if args.set_openmp else ''}; ridge in numpy): "
        + "; ".join(f"{b.name}: {b.describe()}" for b in baselines),
        f"- total wall time: {total_s / 60:.1f} min",
        "",
    ]
    for r in results:
        lines += [
            f"### Seed {r.seed}: rounds {r.rounds[0]}..{r.rounds[-1]} = eras {r.eras[0]}..{r.eras[-1]}",
            "",
            f"- data: {r.data}",
            f"- generation {r.generation_s:.0f} s{' (cached; measured when generated)' if r.generation_cached else ''}, "
            f"replay files {r.replay_s:.0f} s; other processes used {r.others:.0%} of the CPUs meanwhile",
            *service_lines(r),
            "",
            *seed_table(r),
            "",
        ]
    if len(results) > 1:
        lines += [
            f"### Pooled over seeds {', '.join(str(r.seed) for r in results)}",
            "",
            *pooled_table(results),
            "",
        ]
    lines += [
        "CORR = `numerai_tools.scoring.numerai_corr` per held-out era on `target`; BMC = "
        "`correlation_contribution` against the benchmark column of `live_benchmark_models.parquet` "
        "(per era); std ddof 0, Sharpe = mean / std, max drawdown of the cumulative per-era CORR. "
        f"`CORR - {REFERENCE}` = mean of the per-era differences with its standard error (ddof 1, "
        f"eras paired); |mean| < {TIE_SE:g} SE is a tie. fit s = training wall seconds (the service: "
        "the whole `numerai-pipeline train`, ingestion and diagnostics included); predict s = all "
        "held-out eras (the service: every `numerai-pipeline submit`, download and upload included). "
        "benchmark = the live benchmark column itself; oracle = the simulator's expected return (the "
        "ceiling).",
        "",
    ]
    lines += [*args.notes, ""] if args.notes else []
    return "\n".join(lines)


def service_settings(args) -> str:
    env = ", ".join(f"`{k}={v}`" for k, v in sorted(args.env.items()))
    return (
        "`numerai-pipeline train`, then per round `numerai-pipeline submit` and `sim advance-round`, "
        f"against `numerai-pipeline sim serve`; settings beyond the stand-in's URL and key: {env or 'defaults'}"
    )
