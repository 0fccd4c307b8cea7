"""The JPEG / PNG header reader answers only where Pillow would say the same, else defers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pictrain.data.headers import Header, read_header


def _header(path: Path) -> Header | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_header(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


# name -> (mode, format, save options); all of them read without Pillow
PLAIN: dict[str, tuple[str, str, dict[str, Any]]] = {
    "baseline.jpg": ("RGB", "JPEG", {}),
    "grey.jpg": ("L", "JPEG", {}),
    "cmyk.jpg": ("CMYK", "JPEG", {}),
    "progressive.jpg": ("RGB", "JPEG", {"progressive": True, "quality": 70}),
    "upright-exif.jpg": ("RGB", "JPEG", {"exif": _exif(1)}),
    "icc.jpg": ("RGB", "JPEG", {"icc_profile": b"\0" * 300}),
    "rgb.png": ("RGB", "PNG", {}),
    "rgba.png": ("RGBA", "PNG", {}),
    "grey16.png": ("I;16", "PNG", {}),
    "palette.png": ("P", "PNG", {}),
    "dpi.png": ("RGB", "PNG", {"dpi": (300, 300)}),
}


@pytest.mark.parametrize("name", PLAIN)
def test_plain_files_are_read_as_pillow_reads_them(tmp_path: Path, name: str) -> None:
    mode, image_format, options = PLAIN[name]
    Image.new(mode, (37, 21)).save(tmp_path / name, format=image_format, **options)
    with Image.open(tmp_path / name) as image:
        assert image.getexif().get(0x0112, 1) == 1
        expected = Header(image.format, *image.size)
    assert _header(tmp_path / name) == expected


def _jpeg(tmp_path: Path, **options: Any) -> Path:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (37, 21), "red").save(path, **options)
    return path


def test_rotated_images_are_left_to_pillow(tmp_path: Path) -> None:
    assert _header(_jpeg(tmp_path, exif=_exif(6))) is None
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="3"/></x:xmpmeta>'
    assert _header(_jpeg(tmp_path, xmp=xmp)) is None
    assert _header(_jpeg(tmp_path, xmp=b"<x:xmpmeta/>")) == Header("JPEG", 37, 21)


def test_damaged_or_unusual_files_are_left_to_pillow(tmp_path: Path) -> None:
    good = _jpeg(tmp_path).read_bytes()
    cases = {
        "truncated.jpg": good[: len(good) // 2],
        "trailer.jpg": good + b"camera maker trailer",
        "junk.jpg": b"not an image at all",
        "empty.jpg": b"",
        "bad-dqt.jpg": good.replace(b"\xff\xdb\x00\x43", b"\xff\xdb\x00\x40", 1),
    }
    png = tmp_path / "a.png"
    Image.new("RGB", (37, 21)).save(png)
    data = png.read_bytes()
    cases["bad-crc.png"] = data[:-20] + bytes([data[-20] ^ 1]) + data[-19:]
    cases["truncated.png"] = data[:-12]
    Image.new("P", (37, 21)).save(png, transparency=0)
    cases["transparency.png"] = png.read_bytes()
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        assert _header(tmp_path / name) is None, name


def test_decompression_bombs_are_left_to_pillow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _jpeg(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 37 * 21 // 2 - 1)
    assert _header(path) is None
