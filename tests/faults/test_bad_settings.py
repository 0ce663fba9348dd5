"""Bad settings of issue 13 through the real CLI: refused at start (exit 2, one line naming the
variable, the secret never echoed), before any API call, with no file, run or partition left.
Their parsing is tests/numerai_assets/test_settings.py's; `submit --round 9999` / `-5` and
NUMERAI_FEATURE_SET=nonexistent through the CLI are tests/numerai_assets/test_cli.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import cli_env, run_cli, run_statuses
from tests.numerai_assets.test_cli import _error_lines, _round_partitions

SECRET = "s3cr3t-value-never-shown"


@pytest.mark.parametrize(
    ("command", "settings", "message"),
    [
        (
            "submit",
            {"NUMERAI_PUBLIC_ID": "", "NUMERAI_SECRET_KEY": SECRET},
            "error: NUMERAI_PUBLIC_ID is empty but NUMERAI_SECRET_KEY is set: set both",
        ),
        (
            "train",
            {"NUMERAI_LOSS": "mix:foo=1"},
            "error: NUMERAI_LOSS: loss 'mix:foo=1': bad term 'foo=1'; choose from pearson",
        ),
    ],
    ids=["empty_public_id_beside_the_secret", "loss_mix_of_an_unknown_loss"],
)
def test_a_bad_setting_is_refused_at_start_naming_the_variable(tmp_path, server, command, settings, message):
    env = cli_env(tmp_path, server.url, **settings)
    done = run_cli([command], env, tmp_path)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    [line] = _error_lines(done)
    assert line.startswith(message), line
    assert SECRET not in done.stdout + done.stderr
    assert server.request_log == []
    assert not Path(env["NUMERAI_HOME"]).exists()
    assert list(Path(env["DAGSTER_HOME"]).iterdir()) == []  # the instance was not even opened
    assert run_statuses(env) == [] and _round_partitions(env["DAGSTER_HOME"]) == []
