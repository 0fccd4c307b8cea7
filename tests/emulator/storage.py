"""The object store behind the organization's default connector, and its presigned URLs.

Presigned URLs point back at this server (`/_storage/...`) and carry an HMAC signature instead
of a Bearer token, like S3: the SDK calls them with a bare session, without its API headers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

STORAGE_PREFIX = "/_storage"


@dataclass
class MultipartUpload:
    object_name: str
    parts: dict[int, bytes] = field(default_factory=dict)


class ObjectStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, MultipartUpload] = {}
        self._secret = secrets.token_bytes(16)
        self.base_url = ""

    def put(self, object_name: str, content: bytes) -> None:
        self.objects[object_name] = content

    def get(self, object_name: str) -> bytes:
        """The stored bytes; KeyError when nothing was uploaded under that name."""
        return self.objects[object_name]

    def sign(self, value: str) -> str:
        return hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()[:32]

    def verify(self, value: str, signature: str | None) -> bool:
        return signature is not None and hmac.compare_digest(self.sign(value), signature)

    def download_url(self, object_name: str) -> str:
        path = quote(object_name, safe="/")
        return f"{self.base_url}{STORAGE_PREFIX}/object/{path}?sig={self.sign(object_name)}"

    def upload_form(self, object_name: str) -> dict[str, object]:
        """What `generate_presigned_url` returns: an S3-style form POST (url + fields)."""
        return {
            "url": f"{self.base_url}{STORAGE_PREFIX}/upload",
            "fields": {"key": object_name, "signature": self.sign(object_name)},
        }

    def start_multipart(self, object_name: str) -> str:
        upload_id = uuid.uuid4().hex
        self.uploads[upload_id] = MultipartUpload(object_name)
        return upload_id

    def part_url(self, upload_id: str, part_no: int) -> str:
        target = f"{upload_id}/{part_no}"
        return f"{self.base_url}{STORAGE_PREFIX}/part/{target}?sig={self.sign(target)}"

    @staticmethod
    def etag(content: bytes) -> str:
        return f'"{hashlib.md5(content).hexdigest()}"'
