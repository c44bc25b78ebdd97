"""The Slack Web API transport: the only module that imports slack_sdk.

Every call goes through :meth:`SlackTransport.call`, which uses slack_sdk's retry handlers
(rate limits honour ``Retry-After``; connection errors and 5xx answers are retried with backoff)
and turns what is left into a :class:`DeliveryError` that says whether trying later can help.
The bot token is never part of a message, a log line or an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier

from bcm.comms.transport import DeliveryError

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


class SlackTransport:
    """Calls the Slack Web API with the bot token; rate limits and outages are retried."""

    def __init__(self, token: str, *, base_url: str | None = None, retries: int = 3, timeout_s: int = 10) -> None:
        url = base_url or DEFAULT_API_URL
        self._token = token
        self._client = WebClient(
            token=token,
            base_url=url if url.endswith("/") else url + "/",
            timeout=timeout_s,
            logger=logging.getLogger("bcm.slack"),
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=retries),
                ConnectionErrorRetryHandler(max_retry_count=retries),
                ServerErrorRetryHandler(max_retry_count=retries),
            ],
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method`` with ``params`` and return Slack's answer.

        Raises:
            DeliveryError: ``permanent`` for errors retrying cannot fix (invalid_auth,
                channel_not_found, ...), otherwise transient (rate limited past the retries,
                Slack down, connection refused).
        """
        try:
            response = self._client.api_call(method, json=params)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error")) if exc.response is not None else "unknown_error"
            status = exc.response.status_code if exc.response is not None else 0
            if status == 429:
                raise DeliveryError(
                    method, "ratelimited (Retry-After honoured, still limited)", permanent=False
                ) from None
            if status >= 500:
                raise DeliveryError(method, f"Slack answered HTTP {status}", permanent=False) from None
            raise DeliveryError(method, error, permanent=error in PERMANENT_ERRORS) from None
        except SlackClientError as exc:
            raise DeliveryError(method, self._redact(f"{type(exc).__name__}: {exc}"), permanent=False) from None
        except OSError as exc:  # connection refused, reset, DNS: Slack unreachable for now
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
