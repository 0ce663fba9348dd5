"""Alerts and run limits against a loopback webhook: failed live round, late round, failed weekly
training, a webhook that is down, the round sensor's failed ticks, the live run's tags.

The receiver is a real HTTP server on 127.0.0.1 that records the JSON bodies it is sent; the
runs are real Dagster runs against the stand-in, the sensors are evaluated through the instance.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from numerai_assets.live.round_cursor import RoundCursor
from numerai_assets.live.sensor import RoundSensorAPIError
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.settings import SettingsError, load_settings
from numerai_assets.shared.warehouse import Warehouse
from tests.numerai_assets.tiny import tiny_definitions
from tournament_sim.rounds import advance_round
from tournament_sim.server import FaultConfig

MODEL = "sim_model_b"
TOKEN_PATH = "/services/T0SECRET/B0SECRET/xoxTokenNeverShown"  # what a Slack webhook URL hides


class Receiver:
    """A loopback webhook: records each POSTed JSON body, answers `status`."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{TOKEN_PATH}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def texts(self) -> list[str]:
        return [body["text"] for body in self.bodies]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def receiver(monkeypatch):
    running = Receiver()
    monkeypatch.setenv("NUMERAI_ALERT_WEBHOOK", running.url)
    yield running
    running.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _defs(home, api_url, state, **overrides):
    defs, _ = tiny_definitions(home, api_url, state, model_name=MODEL, **overrides)
    return defs


def _tick(defs, instance, name, cursor=None):
    """One evaluation of sensor `name` as the daemon does it (dynamic partitions from the instance).

    The round sensor gets the definitions (its partitioned run requests are resolved against the
    job); a run-failure sensor does not: without a code location on either side, it matches the
    in-process runs of these tests to its job by name.
    """
    sensor = defs.resolve_sensor_def(name)
    repository = None if isinstance(sensor, dg.RunStatusSensorDefinition) else defs
    with (
        dg.partition_loading_context(dynamic_partitions_store=instance),
        dg.build_sensor_context(
            instance_ref=instance.get_ref(), cursor=cursor, resources=defs.resources, definitions=repository
        ) as context,
    ):
        return sensor.evaluate_tick(context)


def _no_secret(texts, state):
    for text in texts:
        assert state.secret_key not in text and state.public_id not in text
        assert "T0SECRET" not in text and "xoxTokenNeverShown" not in text


def _failed_live_run(defs, instance, round_number):
    instance.add_dynamic_partitions("numerai_round", [str(round_number)])
    result = defs.resolve_job_def("live_round").execute_in_process(
        instance=instance, partition_key=str(round_number), raise_on_error=False
    )
    assert not result.success
    return result


def test_a_failed_live_round_is_posted_with_round_step_error_and_run(
    tmp_path, tournament_state, server, instance, receiver
):
    defs = _defs(tmp_path / "home", server.url, tournament_state)
    started = _tick(defs, instance, "live_round_failure_alert")  # the cursor starts at "now"
    server.set_faults(FaultConfig(error_rate=1.0, fail_paths=("download",)))  # the live file never comes
    current = tournament_state.current.number
    result = _failed_live_run(defs, instance, current)
    assert receiver.bodies == []
    _tick(defs, instance, "live_round_failure_alert", cursor=started.cursor)
    [text] = receiver.texts
    assert text.startswith(f"numerai: round {current} FAILED (job live_round)")
    assert "failed step raw_round: NumeraiAPIError: download" in text
    assert "unreachable or failing after 3 attempts" in text
    assert f"run {result.run_id}: /runs/{result.run_id}" in text
    _no_secret(receiver.texts, tournament_state)


def test_a_failed_weekly_training_is_posted(tmp_path, tournament_state, server, instance, receiver):
    defs = _defs(tmp_path / "home", server.url, tournament_state, alert_ui_url="https://numerai.example.com/")
    started = _tick(defs, instance, "weekly_training_failure_alert")
    server.set_faults(FaultConfig(error_rate=1.0, fail_paths=("download",)))
    result = defs.resolve_job_def("weekly_training").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    # the live round's alert sensor does not answer for the training job
    _tick(defs, instance, "live_round_failure_alert", cursor=started.cursor)
    assert receiver.bodies == []
    _tick(defs, instance, "weekly_training_failure_alert", cursor=started.cursor)
    [text] = receiver.texts
    assert text.startswith("numerai: weekly_training FAILED (job weekly_training)")
    assert "failed step raw_dataset:" in text
    assert f"https://numerai.example.com/runs/{result.run_id}" in text
    _no_secret(receiver.texts, tournament_state)


def test_a_round_closing_unsubmitted_is_posted_once(
    tmp_path, tournament, tournament_state, server, instance, receiver
):
    defs = _defs(tmp_path / "home", server.url, tournament_state, alert_late_minutes=15)
    far = _tick(defs, instance, "round_open_sensor")  # the round closes in an hour: not late
    assert receiver.bodies == [] and len(far.run_requests) == 1
    late_round = advance_round(tournament, window_minutes=10)  # the next round closes in 10 minutes
    first = _tick(defs, instance, "round_open_sensor", cursor=far.cursor)
    [text] = receiver.texts
    assert re.match(rf"numerai: round {late_round} is NOT SUBMITTED and closes in (9|10) min \(", text), text
    assert f"no upload of round {late_round} by {MODEL}" in text
    assert "no live run of round" in text  # the sensor's request is not a run yet
    assert [r.run_key for r in first.run_requests] == [f"round-{late_round}"]  # the alert stops nothing
    assert RoundCursor.parse(first.cursor).late_alerted == late_round
    _tick(defs, instance, "round_open_sensor", cursor=first.cursor)
    assert len(receiver.bodies) == 1  # once per round
    _no_secret(receiver.texts, tournament_state)


def test_an_uploaded_round_is_not_late(tmp_path, tournament, tournament_state, server, instance, receiver):
    home = tmp_path / "home"
    defs = _defs(home, server.url, tournament_state, alert_late_minutes=15)
    late_round = advance_round(tournament, window_minutes=10)
    ledger = Warehouse(path=str(HomeLayout(home).warehouse_path))
    model_id = tournament_state.models[MODEL]
    ledger.record_upload_started(late_round, model_id, MODEL, "0" * 64, 1, "v", "x.csv")
    ledger.record_upload_finished(late_round, model_id, "submission-1")
    tick = _tick(defs, instance, "round_open_sensor")
    assert receiver.bodies == [] and RoundCursor.parse(tick.cursor).late_alerted is None


@pytest.mark.parametrize("down", ["answers 500", "refuses connections"])
def test_a_down_webhook_never_fails_the_sensor(
    tmp_path, tournament, tournament_state, server, instance, receiver, monkeypatch, capfd, down
):
    if down == "answers 500":
        receiver.status = 500
    else:
        monkeypatch.setenv("NUMERAI_ALERT_WEBHOOK", f"http://127.0.0.1:{_closed_port()}{TOKEN_PATH}")
    defs = _defs(tmp_path / "home", server.url, tournament_state, alert_late_minutes=15)
    late_round = advance_round(tournament, window_minutes=10)
    tick = _tick(defs, instance, "round_open_sensor")
    assert [r.run_key for r in tick.run_requests] == [f"round-{late_round}"]
    assert RoundCursor.parse(tick.cursor).late_alerted is None  # not delivered: the next tick tries again
    assert len(receiver.bodies) == (3 if down == "answers 500" else 0)  # retried a little
    logged = capfd.readouterr()
    assert "not delivered after 3 attempts" in logged.out + logged.err
    assert "xoxTokenNeverShown" not in logged.out + logged.err


def test_the_round_sensor_fails_its_tick_after_n_api_failures(
    tmp_path, tournament_state, server, instance, receiver
):
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    down = _defs(tmp_path / "home", unreachable, tournament_state, sensor_max_api_failures=3)
    first = _tick(down, instance, "round_open_sensor")
    assert "tick 1 in a row" in first.skip_message and "unreachable" in first.skip_message
    second = _tick(down, instance, "round_open_sensor", cursor=first.cursor)
    assert "tick 2 in a row" in second.skip_message
    with pytest.raises(RoundSensorAPIError, match="failed 3 ticks in a row"):  # the daemon marks it failed
        _tick(down, instance, "round_open_sensor", cursor=second.cursor)
    # the API answers again: requested as usual, and the count starts over
    up = _defs(tmp_path / "home", server.url, tournament_state, sensor_max_api_failures=3)
    back = _tick(up, instance, "round_open_sensor", cursor=second.cursor)
    assert len(back.run_requests) == 1 and RoundCursor.parse(back.cursor).api_failures == 0
    assert receiver.bodies == []


def test_a_cursor_of_the_previous_version_still_reads_and_a_bad_one_is_named():
    assert RoundCursor.parse("101") == RoundCursor(requested=101)
    assert RoundCursor.parse(RoundCursor(101, 2, 101).dump()) == RoundCursor(101, 2, 101)
    with pytest.raises(ValueError, match="round sensor cursor 'round 7' is not a round number"):
        RoundCursor.parse("round 7")


@pytest.mark.parametrize(("minutes", "retries"), [(45, 1), (20, 0)])
def test_live_runs_carry_the_time_limit_and_retry_tags(
    tmp_path, tournament_state, server, instance, minutes, retries
):
    server.set_faults(FaultConfig(error_rate=1.0, fail_paths=("download",)))  # a short run
    defs = _defs(
        tmp_path / "home",
        server.url,
        tournament_state,
        live_max_runtime_minutes=minutes,
        live_max_retries=retries,
    )
    result = _failed_live_run(defs, instance, tournament_state.current.number)
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["dagster/max_runtime"] == str(minutes * 60)
    assert tags.get("dagster/max_retries") == (str(retries) if retries else None)


def test_a_bad_webhook_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("NUMERAI_ALERT_WEBHOOK", "hooks.example.com/services/T0SECRET/xoxTokenNeverShown")
    with pytest.raises(SettingsError, match="NUMERAI_ALERT_WEBHOOK: must be an http") as caught:
        load_settings()
    assert "xoxTokenNeverShown" not in str(caught.value)


def test_a_run_dagster_will_retry_is_left_to_dagster_and_the_alert_says_so(
    tmp_path, tournament_state, server, receiver
):
    # an instance with run retries on, as deploy/dagster.yaml has it
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True}}) as retrying:
        defs = _defs(tmp_path / "home", server.url, tournament_state)
        started = _tick(defs, retrying, "live_round_failure_alert")
        requested = _tick(defs, retrying, "round_open_sensor")
        server.set_faults(FaultConfig(error_rate=1.0, fail_paths=("download",)))
        result = _failed_live_run(defs, retrying, tournament_state.current.number)
        assert retrying.get_run_by_id(result.run_id).tags.get("dagster/will_retry") == "true"
        waiting = _tick(defs, retrying, "round_open_sensor", cursor=requested.cursor)
        assert waiting.run_requests == [] and "Dagster's run retries start it again" in waiting.skip_message
        _tick(defs, retrying, "live_round_failure_alert", cursor=started.cursor)
        [text] = receiver.texts
        assert "Dagster retries the run (dagster/max_retries)" in text


def test_a_round_stopped_by_its_check_is_posted_with_the_check_and_why(
    trained_home, tournament_state, server, instance, receiver
):
    defs = _defs(trained_home, server.url, tournament_state, max_model_age_days=1e-9)
    started = _tick(defs, instance, "live_round_failure_alert")
    _failed_live_run(defs, instance, tournament_state.current.number)
    _tick(defs, instance, "live_round_failure_alert", cursor=started.cursor)
    [text] = receiver.texts
    assert "failed check live_predictions_are_submittable:" in text and "days old" in text, text
    _no_secret(receiver.texts, tournament_state)


def test_without_a_webhook_the_alert_sensor_only_logs(tmp_path, tournament_state, server, instance, capfd):
    defs = _defs(tmp_path / "home", server.url, tournament_state)
    assert not defs.resources["alerts"].enabled
    started = _tick(defs, instance, "live_round_failure_alert")
    server.set_faults(FaultConfig(error_rate=1.0, fail_paths=("download",)))
    result = _failed_live_run(defs, instance, tournament_state.current.number)
    capfd.readouterr()
    _tick(defs, instance, "live_round_failure_alert", cursor=started.cursor)
    logged = capfd.readouterr()
    assert (
        f"run {result.run_id} failed; NUMERAI_ALERT_WEBHOOK is not set: no alert" in logged.err + logged.out
    )
