"""The token and presigned URLs never reach a line a run writes, whatever path it takes."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from pictrain import redact as redaction
from pictrain.redact import RedactingFormatter, add_secret, redact

TOKEN = "tok-" + "9" * 24
S3 = (
    "https://bucket.s3.eu-west-3.amazonaws.com/org/abc/last.pt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA%2F20260101&X-Amz-Signature=deadbeef"
)
EMULATOR = "http://127.0.0.1:40123/_storage/object/logging/x/job.log?sig=0123456789abcdef"


@pytest.fixture(autouse=True)
def token() -> None:
    add_secret(TOKEN)
    yield
    redaction._secrets.discard(TOKEN)


def test_token_and_presigned_urls_are_redacted() -> None:
    text = f"502 for url: {S3} (token {TOKEN}); GET '{EMULATOR}'"
    clean = redact(text)
    for secret in (TOKEN, "X-Amz", "deadbeef", "sig=", "/_storage/", "AKIA"):
        assert secret not in clean, clean
    assert "https://bucket.s3.eu-west-3.amazonaws.com/<URL with query redacted>" in clean
    assert "http://127.0.0.1:40123/<URL with query redacted>'" in clean


def test_plain_urls_and_text_stay() -> None:
    text = "connect to http://127.0.0.1:8080 failed; see https://docs.picsellia.com/x"
    assert redact(text) == text


def test_log_records_and_tracebacks_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s"))
    logger = logging.getLogger("test-redact")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"upload to {S3} failed")
        except RuntimeError:
            logger.exception("token %s", TOKEN)
    finally:
        logger.removeHandler(handler)
    assert TOKEN not in stream.getvalue() and "X-Amz" not in stream.getvalue()
    assert "RuntimeError: upload to https://bucket" in stream.getvalue()


def test_raw_console_redacts_a_secret_split_between_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pictrain.platform.supervisor import _RawConsole

    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    console = _RawConsole()
    text = f"epoch 1\r token={TOKEN} url={EMULATOR}\n 50%\r"
    for i in range(0, len(text), 7):
        console.write(text[i : i + 7])
    console.close()
    assert TOKEN not in out.getvalue() and "sig=" not in out.getvalue()
    assert out.getvalue().endswith(" 50%\r")
