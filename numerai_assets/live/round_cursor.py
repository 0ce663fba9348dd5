"""What the round sensor remembers between ticks (its Dagster cursor, JSON).

`requested`: the last round whose live run it requested; `api_failures`: ticks in a row the API
failed (at NUMERAI_SENSOR_MAX_API_FAILURES the tick fails instead of skipping; a failed tick
does not store its cursor, so every next failing tick fails too until the API answers);
`late_alerted`: the last round the "not submitted and about to close" alert went out for (once
per round). A cursor written before these fields (the round number alone) still reads.
"""

from __future__ import annotations

import dataclasses
import json


class RoundCursorError(ValueError):
    """The sensor's cursor is neither a round number nor the JSON this module writes."""


@dataclasses.dataclass(frozen=True)
class RoundCursor:
    requested: int | None = None
    api_failures: int = 0
    late_alerted: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> RoundCursor:
        if text is None or not text.strip():
            return cls()
        if text.strip().isdigit():  # the cursor of an older version: the last round requested
            return cls(requested=int(text))
        try:
            raw = json.loads(text)
            return cls(
                requested=_optional_int(raw.get("requested")),
                api_failures=int(raw.get("api_failures", 0)),
                late_alerted=_optional_int(raw.get("late_alerted")),
            )
        except (ValueError, TypeError, AttributeError) as err:
            raise RoundCursorError(
                f"round sensor cursor {text[:200]!r} is not a round number nor "
                '{"requested": N, "api_failures": N, "late_alerted": N} '
                f"({err}); reset it in the sensor's page of the UI"
            ) from None

    def dump(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def replace(self, **changes) -> RoundCursor:
        return dataclasses.replace(self, **changes)


def _optional_int(value) -> int | None:
    return None if value is None else int(value)
