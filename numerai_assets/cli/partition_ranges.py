"""Which partitions a backfill targets: the era and round ranges of `numerai-pipeline backfill`.

`--eras 0575:0700` and `--rounds 1001:1004` are parsed and checked here, before anything is
recorded in the Dagster instance, so a bad range fails with one line naming what is wrong; and a
chosen set of keys is turned back into the contiguous ranges a backfill selector takes. The
partition and asset names are those of the code location (the comments say where each is defined).

Plain Python: nothing here imports Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence

ERA_PARTITIONS = "numerai_era"  # numerai_assets.shared.partitions.era_partitions
ERA_ASSETS = ("era_predictions", "era_scores")  # numerai_assets.backfill.assets
ROUND_PARTITIONS = "numerai_round"  # numerai_assets.shared.partitions.round_partitions
# A past round's live file and predictions (submission is left out: Numerai takes uploads for
# the open round only, which the round sensor or `numerai-pipeline submit` handles).
ROUND_ASSETS = ("raw_round", "live_predictions")


def select_eras(registered: Sequence[str], spec: str) -> list[str]:
    """The registered eras of `spec` ("0575:0700", inclusive, or one era "0575"), in registered order.

    Every era number of the range must be registered as a `numerai_era` partition; otherwise a
    ValueError names the ones that are not.
    """
    first, last, lo, hi = _parse_range(spec, "--eras", "an era number", "0575:0700")
    if not registered:
        raise ValueError(
            f"no {ERA_PARTITIONS} partitions are registered in this Dagster instance: "
            "materialise clean_eras first (numerai-pipeline ingest)"
        )
    numbers = {int(era): era for era in registered if era.isdigit()}
    absent = [n for n in range(lo, hi + 1) if n not in numbers]
    if absent:
        width = max(len(first), len(last), 4)
        raise ValueError(
            f"--eras {spec}: {len(absent)} era(s) not registered as {ERA_PARTITIONS} partitions: "
            f"{_number_ranges(absent, width)} (registered: {_number_ranges(sorted(numbers), width)}); "
            "ingest data that has them first (numerai-pipeline ingest)"
        )
    return [era for era in registered if era.isdigit() and lo <= int(era) <= hi]


def select_rounds(spec: str) -> list[str]:
    """Round numbers of `spec` ("1001:1004", inclusive, or one round "1001") as partition keys."""
    _, _, lo, hi = _parse_range(spec, "--rounds", "a round number", "1001:1004")
    return [str(n) for n in range(lo, hi + 1)]


def _parse_range(spec: str, flag: str, noun: str, example: str) -> tuple[str, str, int, int]:
    """ "A:B" (inclusive) or "A" -> (first label, last label, first number, last number)."""
    first, _, last = spec.partition(":")
    first, last = first.strip(), (last.strip() if last else first.strip())
    for label in (first, last):
        if not label.isdigit():
            raise ValueError(f"{flag} {spec!r}: {label!r} is not {noun} (e.g. {flag} {example})")
    lo, hi = int(first), int(last)
    if lo > hi:
        raise ValueError(f"{flag} {spec!r}: the range is empty ({first} comes after {last})")
    return first, last, lo, hi


def _number_ranges(numbers: Sequence[int], width: int) -> str:
    """[1, 2, 3, 7] -> '0001..0003, 0007'."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = [f"{a:0{width}d}" if a == b else f"{a:0{width}d}..{b:0{width}d}" for a, b in spans]
    return ", ".join(text[:8]) + (f", ... ({len(spans)} ranges)" if len(spans) > 8 else "")


def _key_ranges(keys: Sequence[str], ordered: Sequence[str]) -> list[tuple[str, str]]:
    """Contiguous runs of `keys` in the partitions' own order, as (first, last) pairs."""
    wanted, ranges, start, prev = set(keys), [], None, None
    for key in ordered:
        if key in wanted:
            start = key if start is None else start
            prev = key
        elif start is not None:
            ranges.append((start, prev))
            start = None
    if start is not None:
        ranges.append((start, prev))
    return ranges
