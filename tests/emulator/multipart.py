"""A strict multipart/form-data parser for the presigned form upload (binary-safe, no cgi)."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_NAME = re.compile(rb'name="([^"]*)"')


def parse_form(content_type: str, body: bytes) -> dict[str, bytes]:
    """Field name -> raw bytes. Raises ValueError on anything that is not a well-formed form."""
    match = _BOUNDARY.search(content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        raise ValueError(f"not a multipart form: {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("multipart body is not terminated")
    fields: dict[str, bytes] = {}
    for chunk in chunks[1:-1]:
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = _NAME.search(head)
        if not sep or name is None or not content.endswith(b"\r\n"):
            raise ValueError("malformed multipart part")
        fields[name.group(1).decode()] = content[:-2]
    return fields
