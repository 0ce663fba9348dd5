"""Faults the API stand-in injects for reliability tests: HTTP 500s (the first N, then at a
rate) and delays, per request kind."""

from __future__ import annotations

import dataclasses
import random
import threading

FAULT_KINDS = ("graphql", "download", "upload")


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """Faults apply to the request kinds in `fail_paths` only: first the `fail_first` such requests
    answer HTTP 500, then each one does with probability `error_rate`; each is delayed `delay_s`."""

    fail_first: int = 0
    error_rate: float = 0.0
    delay_s: float = 0.0
    seed: int = 0
    fail_paths: tuple[str, ...] = ("graphql",)

    def __post_init__(self) -> None:
        if self.fail_first < 0 or self.delay_s < 0 or not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"FaultConfig: need fail_first >= 0, delay_s >= 0, 0 <= error_rate <= 1: {self}")
        unknown = set(self.fail_paths) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(
                f"FaultConfig.fail_paths: unknown kinds {sorted(unknown)} (known: {FAULT_KINDS})"
            )


class FaultInjector:
    def __init__(self, faults: FaultConfig) -> None:
        self.faults = faults
        self._lock = threading.Lock()
        self._seen = 0
        self._rng = random.Random(faults.seed)

    def applies(self, kind: str | None) -> bool:
        return kind in self.faults.fail_paths

    def should_fail(self, kind: str | None) -> bool:
        if not self.applies(kind):
            return False
        with self._lock:
            self._seen += 1
            if self._seen <= self.faults.fail_first:
                return True
            return self.faults.error_rate > 0 and self._rng.random() < self.faults.error_rate
