"""Secrets out of every line a run writes: the API token and presigned URLs.

One function for every path (console, log file, platform logs, failure reasons; worker and
supervisor; terminal or not). A presigned URL is a credential in itself: S3's `X-Amz-*`, GCS's
`X-Goog-*`, Azure's `sig=`... all ride in the query string, so any URL with a query keeps its
scheme and host only.
"""

from __future__ import annotations

import logging
import re

REDACTED = "***"
URL_REDACTED = "/<URL with query redacted>"
_URL_WITH_QUERY = re.compile(
    r"""(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#'"<>]+)[^\s?#'"<>]*\?[^\s'"<>]*"""
)
_secrets: set[str] = set()


def add_secret(value: str) -> None:
    """Redact this value from now on, in this process."""
    if value:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return _URL_WITH_QUERY.sub(lambda m: m.group(1) + URL_REDACTED, text)


class RedactingFormatter(logging.Formatter):
    """The whole record, traceback included, goes through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
