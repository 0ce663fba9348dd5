"""Alerts: a Slack-compatible JSON POST (`{"text": ...}`) to NUMERAI_ALERT_WEBHOOK.

The webhook URL is treated as a secret (a Slack URL carries its token in the path): it reaches the
resource as `dagster.EnvVar`, and logs name only its scheme and host. An alert never breaks what
sends it: a webhook that is down, slow or answers an error is tried a few times, logged, and
`send` returns False. Every text is scrubbed of the API key and of the URL before it leaves.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import dagster as dg
from pydantic import PrivateAttr

from numerai_assets.shared.settings import knob_default

# Environment variables whose values must never leave in an alert, whatever the text says.
SECRET_VARIABLES = ("NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY", "NUMERAI_ALERT_WEBHOOK")
HIDDEN = "[hidden]"
MAX_TEXT = 3000  # Slack shows a long message folded; an error's whole traceback is in the UI anyway


def shown_url(url: str | None) -> str:
    """The webhook as logs may show it: scheme and host only (the path holds the token)."""
    if not url:
        return "unset"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret value replaced (longest first, so no part of one is left)."""
    values = {value for value in secrets if value and len(value) >= 4}
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return text


def first_line(text: str) -> str:
    """The first non-empty line of an error message (the rest is in the UI)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "(no message)")


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go (unset: nowhere) and how hard to try; `ui_url` makes run links clickable."""

    url: str | None = None  # dagster.EnvVar("NUMERAI_ALERT_WEBHOOK"): never plain config text
    ui_url: str | None = knob_default("alert_ui_url")
    timeout_s: float = 5.0
    attempts: int = 3
    backoff_s: float = 1.0
    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def run_link(self, run_id: str) -> str:
        """Where a run is in the UI: a full link with NUMERAI_ALERT_UI_URL, else the UI's path."""
        path = f"/runs/{run_id}"
        return f"{self.ui_url.rstrip('/')}{path}" if self.ui_url else f"{path} in the Dagster UI"

    def send(
        self,
        text: str,
        secrets: Iterable[str | None] = (),
        log: dg.DagsterLogManager | logging.Logger | None = None,
    ) -> bool:
        """POST `text`; True when the webhook took it. Never raises for the webhook's sake.

        `log`: where problems are told (a sensor's `context.log`, shown with its tick in the UI).
        """
        log = log or dg.get_dagster_logger()
        if not self.url:
            log.info("NUMERAI_ALERT_WEBHOOK is not set: alert not sent")
            return False
        hidden = [*secrets, *(os.environ.get(name) for name in SECRET_VARIABLES), self.url]
        body = json.dumps({"text": scrub(text, hidden)[:MAX_TEXT]}).encode()
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            problem = self._post(body)
            if problem is None:
                return True
            problem = scrub(problem, hidden)
            if attempt < self.attempts:
                log.warning(
                    f"alert webhook {shown_url(self.url)}: attempt {attempt}/{self.attempts} failed "
                    f"({problem}); retry in {delay:.1f}s"
                )
                self._sleep(delay)
                delay *= 2
        log.error(
            f"alert webhook {shown_url(self.url)}: not delivered after {self.attempts} attempts "
            f"({problem}); the alert was: {first_line(scrub(text, hidden))}"
        )
        return False

    def _post(self, body: bytes) -> str | None:
        """One POST; None when it was taken (2xx), else what went wrong (may contain the URL)."""
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                answer.read()
                return None
        except urllib.error.HTTPError as err:
            return f"HTTP {err.code} {err.reason}"
        except (urllib.error.URLError, OSError) as err:  # refused, unreachable, timed out
            reason = getattr(err, "reason", err)
            return f"{type(err).__name__}: {reason}"
