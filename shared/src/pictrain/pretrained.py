"""The official pretrained weights an image carries, put in place when the image is built (never
at run time), each checked against the sha256 pinned for it in docker-bake.hcl (`PRETRAINED`).

A file found in the local folder a builder passes (bake's `PRETRAINED_DIR`, for builders that
cannot reach the release host) is taken from there; any other is downloaded from the release.
Either way a file whose sha256 differs from its pin fails the build: nothing unchecked is baked.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pictrain.errors import UserError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
DOWNLOAD_ATTEMPTS = 3  # the release host's CDN drops a long transfer now and then
DOWNLOAD_TIMEOUT_S = 60
_PIN = re.compile(r"(?P<model>[A-Za-z0-9][A-Za-z0-9._-]*)=(?P<sha256>[0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    """One file the image carries: `<model>.pt`, and the sha256 it must have."""

    model: str
    sha256: str

    @classmethod
    def parse(cls, text: str) -> Pin:
        match = _PIN.fullmatch(text)
        if match is None:
            raise UserError(f"pin {text!r} is not <model>=<sha256, 64 lower-case hex digits>")
        return cls(match["model"], match["sha256"])

    @property
    def file_name(self) -> str:
        return f"{self.model}.pt"


def install(pins: list[Pin], dest: Path, local: Path | None, url: str) -> None:
    """Each pinned file into `dest`, from `local` when it holds it, else from `url`/<file>."""
    dest.mkdir(parents=True, exist_ok=True)
    for pin in pins:
        part = dest / f"{pin.file_name}.part"
        source = local / pin.file_name if local else None
        if source is not None and source.is_file():
            origin = str(source)
            with source.open("rb") as stream:
                digest = _copy(stream, part)
        elif url:
            origin = f"{url.rstrip('/')}/{pin.file_name}"
            digest = _download(origin, part)
        else:
            raise UserError(f"{pin.file_name} is not in {local} and no release URL is set")
        if digest != pin.sha256:
            part.unlink()
            raise UserError(
                f"{pin.file_name} from {origin} has sha256 {digest}, not the {pin.sha256} pinned "
                "in docker-bake.hcl (PRETRAINED): not baked"
            )
        part.replace(dest / pin.file_name)
        log.info("%s: sha256 %s, from %s", pin.file_name, digest, origin)


def _copy(stream: BinaryIO, dest: Path) -> str:
    """Write `stream` to `dest`; its sha256."""
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _download(url: str, dest: Path) -> str:
    """`url` into `dest` (proxies and CA bundle from the environment, as urllib reads them)."""
    attempt = 1
    while True:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                return _copy(response, dest)
        except urllib.error.HTTPError as exc:  # the server answered: asking again changes nothing
            raise UserError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise UserError(
                    f"could not download {url} ({exc}); a builder that cannot reach the release "
                    "passes the files as a folder instead: PRETRAINED_DIR (docs/images.md)"
                ) from None
            log.warning("download of %s failed (%s): trying again", url, exc)
            attempt += 1
