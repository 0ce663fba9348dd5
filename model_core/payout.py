"""Numerai's payout score: `clip(corr * corr_multiplier + mmc * mmc_multiplier, -clip, clip)`.

Since 2026-03 the multipliers, the clip threshold and the payout factor are set per round and
announced by the API (numerapi's `list_rounds()`: each round's `roundScoreConfigs` and
`payoutFactor`). `payout_settings_from_round` reads them from one such round dict:

- the payout configs are those with `isPayout` true;
- the CORR one is the payout config whose `name` contains "corr", the MMC one the payout config
  whose `name` contains "mmc" (case-insensitive; e.g. "v2_corr20", "mmc"); exactly one each;
- each multiplier is that config's `defaultMultiplier` (the one a model gets unless its owner
  picked another within `minMultiplier..maxMultiplier`, which the API does not tell us);
- the clip threshold is the configs' `clipThreshold` (the smaller one, should the two differ);
- the payout factor (the round's NMR scaling of stakes) is kept for the record; it scales what a
  stake earns, not the score, so it is not part of the per-era payout score.

When a round offers none of that, callers use DOCUMENTED_DEFAULTS: CORR x0.5 + MMC x2, clip
0.05, Numerai's multipliers of 2024-2025.
"""

from __future__ import annotations

import dataclasses
import decimal
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULTS_SOURCE = "documented defaults"


class PayoutConfigError(ValueError):
    """A list_rounds round dict does not say how the round pays (the message says what is missing)."""


@dataclasses.dataclass(frozen=True)
class PayoutSettings:
    corr_multiplier: float
    mmc_multiplier: float
    clip: float  # the payout score is clipped to [-clip, clip]
    payout_factor: float | None  # the round's payoutFactor; None when unknown
    source: str  # where these came from: "round 1003" or "documented defaults"

    def describe(self) -> str:
        """E.g. 'CORR x0.5 + MMC x2, clip 0.05'."""
        return f"CORR x{self.corr_multiplier:g} + MMC x{self.mmc_multiplier:g}, clip {self.clip:g}"

    def era_payouts(self, corrs: Sequence[float], mmcs: Sequence[float]) -> np.ndarray:
        """(T,) the payout score of each era; NaN where CORR or MMC is NaN (no meta model, no target)."""
        corr = np.asarray(corrs, dtype=np.float64)
        mmc = np.asarray(mmcs, dtype=np.float64)
        if corr.shape != mmc.shape or corr.ndim != 1:
            raise ValueError(
                f"corrs {corr.shape} and mmcs {mmc.shape} must be the same 1-D shape (one per era)"
            )
        return np.clip(corr * self.corr_multiplier + mmc * self.mmc_multiplier, -self.clip, self.clip)

    def era_payout(self, corr: float, mmc: float) -> float:
        return float(self.era_payouts([corr], [mmc])[0])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DOCUMENTED_DEFAULTS = PayoutSettings(
    corr_multiplier=0.5, mmc_multiplier=2.0, clip=0.05, payout_factor=None, source=DEFAULTS_SOURCE
)


def payout_settings_from_round(round_info: Mapping[str, Any]) -> PayoutSettings:
    """The payout settings one `list_rounds()` round announces (rule in the module docstring);
    PayoutConfigError naming what is missing when it does not announce them."""
    number = round_info.get("number")
    where = f"round {number}"
    configs = round_info.get("roundScoreConfigs") or []
    payout = [c for c in configs if isinstance(c, Mapping) and c.get("isPayout") is True]
    if not payout:
        raise PayoutConfigError(f"{where} has no roundScoreConfigs with isPayout")
    corr = _one(payout, "corr", where)
    mmc = _one(payout, "mmc", where)
    clips = [_number(c.get("clipThreshold")) for c in (corr, mmc)]
    clips = [c for c in clips if c is not None and c > 0]
    if not clips:
        raise PayoutConfigError(f"{where}: its payout CORR and MMC configs have no clipThreshold")
    return PayoutSettings(
        corr_multiplier=_multiplier(corr, where),
        mmc_multiplier=_multiplier(mmc, where),
        clip=min(clips),
        payout_factor=_number(round_info.get("payoutFactor")),
        source=where,
    )


def _one(configs: list[Mapping[str, Any]], score: str, where: str) -> Mapping[str, Any]:
    found = [c for c in configs if score in str(c.get("name", "")).lower()]
    names = [c.get("name") for c in configs]
    if not found:
        raise PayoutConfigError(f"{where} has no payout config for {score.upper()} (payout configs: {names})")
    if len(found) > 1:
        raise PayoutConfigError(
            f"{where} has {len(found)} payout configs for {score.upper()}: {[c.get('name') for c in found]}"
        )
    return found[0]


def _multiplier(config: Mapping[str, Any], where: str) -> float:
    value = _number(config.get("defaultMultiplier"))
    if value is None:
        raise PayoutConfigError(f"{where}: payout config {config.get('name')!r} has no defaultMultiplier")
    return value


def _number(value: Any) -> float | None:
    """A float from what the API sends (number, decimal string, numerapi's Decimal); None if not one."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(decimal.Decimal(str(value).replace(",", "")))
    except (decimal.InvalidOperation, ValueError):
        return None
    return number if np.isfinite(number) else None
