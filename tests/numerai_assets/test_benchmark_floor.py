"""The benchmark-agreement rule of the live check, on the sizes it meets: a real round refuses a
model that does not agree with the benchmark at all; a small round does not refuse a weak one."""

import math

from numerai_assets.live.predict import BenchmarkCorr, benchmark_problem


def _problem(corr: float, rows: int, threshold: float = 0.1) -> list[str]:
    return benchmark_problem(BenchmarkCorr("v52_lgbm_ender20", corr, rows), threshold)


def test_a_real_round_refuses_predictions_unrelated_to_the_benchmark():
    [problem] = _problem(0.0, 5_000)  # shifted columns: about 0 on thousands of stocks
    assert "0.000 over 5000 ids" in problem and "NUMERAI_MIN_BENCHMARK_CORR=0.1" in problem
    assert _problem(0.45, 5_000) == []  # a sound model (0.46-0.56 on the eval replay)
    assert _problem(0.06, 5_000) == []  # weak, but within 3 standard errors of the bar


def test_a_small_round_is_not_refused_for_noise_and_the_check_can_be_off():
    assert _problem(-0.015, 115) == []  # the tiny replay's weak model: noise at 115 stocks
    assert _problem(-0.5, 115) != []  # but a reversed model is refused even there
    assert _problem(-0.9, 5_000, threshold=-1.0) == []  # -1: off
    assert benchmark_problem(None, 0.1) == []  # no live benchmark file
    assert _problem(math.nan, 0) == []  # an unusable one
