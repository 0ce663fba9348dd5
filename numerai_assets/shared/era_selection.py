"""Which eras a backfill targets: the `eras` text of the UI's `launch_era_backfill` job and of
`numerai-pipeline backfill --eras`, one grammar for both.

A comma-separated list of items, their union in registered order:

- `0575:0700`: an inclusive range; `0575`: one era;
- `last 52`: the 52 newest registered eras;
- a split of the current model version: `train`, `validation`, `test` (its held-out block),
  `unresolved` (no target yet), `resolved` (the three resolved splits; also `all resolved`);
- `all`: every registered era.

Every era a range names must be registered as a `numerai_era` partition; anything else is one
ValueError naming the bad item and the registered eras (first..last), raised before anything is
recorded. Plain Python: nothing here imports Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

ERA_PARTITIONS = "numerai_era"  # numerai_assets.shared.partitions.era_partitions
RESOLVED_SPLITS = ("train", "validation", "test")
SPLIT_WORDS = (*RESOLVED_SPLITS, "unresolved", "resolved")
_RANGE = re.compile(r"^(\d+)(?::(\d+))?$")
_LAST = re.compile(r"^last\s+(\d+)$")


def select_eras(
    registered: Sequence[str],
    spec: str,
    *,
    splits: Mapping[str, str] | None = None,
    label: str = "--eras",
) -> list[str]:
    """The registered eras `spec` names (see the module doc), in registered order.

    splits: era -> its split (numerai_assets.backfill.splits), needed only by split words.
    label: how the caller names the value in errors ("--eras", or the job's "eras").
    """
    if not registered:
        raise ValueError(
            f"no {ERA_PARTITIONS} partitions are registered in this Dagster instance: "
            "materialise clean_eras first (numerai-pipeline ingest)"
        )
    items = [item.strip() for item in spec.split(",")]
    chosen: set[str] = set()
    for item in items:
        chosen.update(_select_item(registered, spec, item.lower(), splits, label))
    return [era for era in registered if era in chosen]


def _select_item(
    registered: Sequence[str], spec: str, item: str, splits: Mapping[str, str] | None, label: str
) -> list[str]:
    where = f"(registered: {era_ranges(registered)})"
    if item == "all":
        return list(registered)
    if (last := _LAST.match(item)) is not None:
        count = int(last.group(1))
        if not 1 <= count <= len(registered):
            raise ValueError(
                f"{label} {spec}: {item!r} asks for {count} eras; {len(registered)} are registered {where}"
            )
        return list(registered[-count:])
    if item.removeprefix("all ") in SPLIT_WORDS:
        return _split_eras(registered, spec, item.removeprefix("all "), splits, label, where)
    bounds = _RANGE.match(item)
    if bounds is None:
        raise ValueError(
            f"{label} {spec}: {item!r} is not an era (0575), a range (0575:0700), 'last N', a split "
            f"({', '.join(SPLIT_WORDS)}) or 'all' {where}"
        )
    first, last = bounds.group(1), bounds.group(2) or bounds.group(1)
    lo, hi = int(first), int(last)
    if lo > hi:
        raise ValueError(
            f"{label} {spec}: {item} is reversed ({first} comes after {last}: write {last}:{first}) {where}"
        )
    numbers = {int(era): era for era in registered if era.isdigit()}
    absent = [n for n in range(lo, hi + 1) if n not in numbers]
    if absent:
        width = max(len(first), len(last), 4)
        raise ValueError(
            f"{label} {spec}: {len(absent)} era(s) not registered as {ERA_PARTITIONS} partitions: "
            f"{_number_ranges(absent, width)} {where}; ingest data that has them first (numerai-pipeline ingest)"
        )
    return [numbers[n] for n in range(lo, hi + 1)]


def _split_eras(
    registered: Sequence[str],
    spec: str,
    word: str,
    splits: Mapping[str, str] | None,
    label: str,
    where: str,
) -> list[str]:
    if splits is None:
        raise ValueError(f"{label} {spec}: {word!r} needs the current model version's era splits")
    wanted = RESOLVED_SPLITS if word == "resolved" else (word,)
    eras = [era for era in registered if splits.get(era) in wanted]
    if not eras:
        raise ValueError(f"{label} {spec}: no registered era is {word} for the current model version {where}")
    return eras


def parse_range(spec: str, flag: str, noun: str, example: str) -> tuple[str, str, int, int]:
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


def era_ranges(eras: Sequence[str]) -> str:
    """['0001', '0002', '0003', '0007'] -> '0001..0003, 0007' (by era number); 'none' when empty."""
    numbers = sorted(int(era) for era in eras if era.isdigit())
    width = max((len(era) for era in eras), default=4)
    return _number_ranges(numbers, width) if numbers else "none"


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


def key_ranges(keys: Sequence[str], ordered: Sequence[str]) -> list[tuple[str, str]]:
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
