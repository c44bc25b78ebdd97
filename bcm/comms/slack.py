"""The Slack Web API transport: the only module that imports slack_sdk.

Every call goes through :meth:`SlackTransport.call`, which retries what a :class:`DeliveryPolicy`
allows (connection errors and 5xx answers with a short backoff; a rate limit's ``Retry-After`` when
it is short enough) and turns what is left into a :class:`DeliveryError` that says whether trying
later can help. slack_sdk logs each failed attempt at ERROR; here those lines are debug detail (the
outbox says once that Slack is unreachable). The bot token is never part of a message, a log line
or an error.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.signature import SignatureVerifier

from bcm.comms.transport import RUN_POLICY, DeliveryPolicy
from bcm.errors import DeliveryError

DEFAULT_API_URL = "https://slack.com/api/"

#: Errors that no amount of retrying fixes: the message is marked failed and shown in `bcm status`.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "restricted_action",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "message_not_found",
        "cant_update_message",
        "invalid_name",
        "invalid_name_specials",
        "invalid_name_maxlength",
        "invalid_name_punctuation",
        "invalid_name_required",
        "user_not_found",
        "users_not_found",
        "unknown_method",
    }
)


class _DemoteToDebug(logging.Filter):
    """slack_sdk logs every failed attempt at ERROR: with Slack down that is a flood of lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


#: The logger handed to slack_sdk: what it says about attempts reaches only debug handlers.
SDK_LOG = logging.getLogger("bcm.slack.sdk")
if not any(isinstance(f, _DemoteToDebug) for f in SDK_LOG.filters):
    SDK_LOG.addFilter(_DemoteToDebug())


class _SmallJitter(Jitter):
    """Up to a quarter of the interval more, so retries from several workers spread out."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random() / 4)


def _retry_after(headers: Mapping[str, Any]) -> float:
    """A 429's ``Retry-After`` in seconds (1 when Slack sent none, or something unreadable)."""
    for name, value in headers.items():
        if name.lower() == "retry-after" and value:
            try:
                return max(0.0, float(value[0] if isinstance(value, list) else value))
            except (TypeError, ValueError):
                break
    return 1.0


class _ServerErrorHandler(RetryHandler):
    """Retries any 5xx answer (slack_sdk's own handler leaves out 502 and 504)."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code >= 500


class _RateLimitHandler(RetryHandler):
    """Waits out a 429's ``Retry-After`` when it is at most ``max_wait_s``; a longer wait is the outbox's."""

    def __init__(self, max_retry_count: int, max_wait_s: float) -> None:
        super().__init__(max_retry_count)
        self.max_wait_s = max_wait_s

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (
            response is not None and response.status_code == 429 and _retry_after(response.headers) <= self.max_wait_s
        )

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        time.sleep((_retry_after(response.headers) if response is not None else 1.0) + random.random() / 4)
        state.next_attempt_requested = True
        state.increment_current_attempt()


class SlackTransport:
    """Calls the Slack Web API with the bot token, trying as hard as ``policy`` says.

    Args:
        token: the bot token.
        base_url: the Web API's base URL (a stand-in's in tests); Slack's when None.
        policy: the per-call timeout and the retries (:data:`RUN_POLICY` unless told otherwise).
    """

    def __init__(self, token: str, *, base_url: str | None = None, policy: DeliveryPolicy = RUN_POLICY) -> None:
        url = base_url or DEFAULT_API_URL
        self._token = token
        self.policy = policy
        backoff = BackoffRetryIntervalCalculator(backoff_factor=policy.backoff_s, jitter=_SmallJitter())
        self._client = WebClient(
            token=token,
            base_url=url if url.endswith("/") else url + "/",
            timeout=policy.timeout_s,
            logger=SDK_LOG,
            retry_handlers=[
                _RateLimitHandler(max_retry_count=policy.retries, max_wait_s=policy.max_retry_after_s),
                ConnectionErrorRetryHandler(max_retry_count=policy.retries, interval_calculator=backoff),
                _ServerErrorHandler(max_retry_count=policy.retries, interval_calculator=backoff),
            ],
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method`` with ``params`` and return Slack's answer.

        Raises:
            DeliveryError: ``permanent`` for errors retrying cannot fix (invalid_auth,
                channel_not_found, ...), otherwise transient (rate limited, Slack down,
                connection refused, timed out); a rate limit carries its ``retry_after_s``.
        """
        try:
            response = self._client.api_call(method, json=params)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error")) if exc.response is not None else "unknown_error"
            status = exc.response.status_code if exc.response is not None else 0
            if status == 429:
                wait = _retry_after(exc.response.headers or {})
                raise DeliveryError(
                    method, f"ratelimited (Retry-After {wait:g}s)", permanent=False, retry_after_s=wait
                ) from None
            if status >= 500:
                raise DeliveryError(method, f"Slack answered HTTP {status}", permanent=False) from None
            raise DeliveryError(method, error, permanent=error in PERMANENT_ERRORS) from None
        except SlackClientError as exc:
            raise DeliveryError(method, self._redact(f"{type(exc).__name__}: {exc}"), permanent=False) from None
        except OSError as exc:  # connection refused, reset, DNS, timed out: Slack unreachable for now
            raise DeliveryError(method, self._redact(f"{type(exc).__name__}: {exc}"), permanent=False) from None
        data = response.data
        return dict(data) if isinstance(data, dict) else {}

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "xoxb-***") if self._token else text


def verify_request(signing_secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when ``body`` carries Slack's signature for ``signing_secret`` and a fresh timestamp.

    slack_sdk's verifier refuses timestamps more than five minutes away from now.
    """
    return bool(SignatureVerifier(signing_secret).is_valid_request(body, dict(headers)))


def sign_request(signing_secret: str, body: bytes, timestamp: int) -> str:
    """Slack's ``X-Slack-Signature`` for ``body`` sent at ``timestamp`` (for the stand-in and tests)."""
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=str(timestamp), body=body)
    return str(signature)
