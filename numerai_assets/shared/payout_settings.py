"""The payout settings of the current round, for the weekly job and the backfills.

The payout estimate is a diagnostic: it never fails a run. An API that cannot be reached or
refuses, a round without score configs, or one without a payout CORR / MMC config gives
model_core.payout.DOCUMENTED_DEFAULTS and ONE warning line saying what was missing.
"""

from __future__ import annotations

from collections.abc import Callable

from model_core.payout import (
    DOCUMENTED_DEFAULTS,
    PayoutConfigError,
    PayoutSettings,
    payout_settings_from_round,
)
from numerai_assets.shared.numerai_api import NumeraiAPI, NumeraiAPIError


def current_payout_settings(api: NumeraiAPI, warn: Callable[[str], None]) -> PayoutSettings:
    """The multipliers of the open round, or of the newest round the API lists between rounds."""
    try:
        # Between rounds no round is OPEN: then the newest listed round is the current one.
        rounds = api.list_rounds(status="open") or api.list_rounds()
        if not rounds:
            raise PayoutConfigError("the API lists no rounds")
        return payout_settings_from_round(max(rounds, key=lambda r: r.get("number") or 0))
    except (NumeraiAPIError, PayoutConfigError) as err:
        message = str(err).removeprefix("list_rounds: ")
        warn(
            f"list_rounds: {message}; payout estimated with the documented defaults "
            f"{DOCUMENTED_DEFAULTS.describe()}"
        )
        return DOCUMENTED_DEFAULTS
