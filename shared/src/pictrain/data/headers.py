"""JPEG and PNG headers read without Pillow: format and size from one open and a read or two.

Nearly every dataset is JPEG or PNG, and Pillow's open costs ~60 µs an image (~130 µs with the
checks the conversion makes), most of it object set-up, not reading. `read_header` answers only
for files it is sure Pillow would take as they are: the markers and chunks it knows, well formed,
no EXIF or XMP orientation other than 1, a JPEG ending with its end marker, a PNG whose chunks
all pass their checksum (what Pillow's `verify` checks). Anything else gets None, and the caller
asks Pillow, which stays the judge: rotated images, other formats, and damaged files all take
that path.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from typing import NamedTuple

from PIL import Image

_FIRST_READ = 1 << 14  # bytes; a typical JPEG header fits, larger ones read on
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers Pillow reads the size from (0xDE, DHP, is left to Pillow)
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Segments with a length that Pillow reads or skips without more checks than their length
_SKIPPED = frozenset({0xC4, 0xCC, 0xDC, 0xDD, 0xDF, 0xFE}) | frozenset(range(0xE3, 0xED))
_SOS, _DQT, _APP0, _APP1, _APP2, _APP13, _APP14, _APP15 = (
    0xDA,
    0xDB,
    0xE0,
    0xE1,
    0xE2,
    0xED,
    0xEE,
    0xEF,
)
# Segments whose content Pillow reads: frames, quantization tables, some APPn
_READ = _SOF | {_DQT, _APP0, _APP1, _APP2, _APP13, _APP14, _APP15}
_SEGMENT = struct.Struct(">BBH")  # 0xFF, marker, length (itself included)
_FRAME_SIZE = struct.Struct(">HH")  # height, width
_EXIF = b"Exif\x00\x00"
_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_ORIENTATION = re.compile(rb"tiff:Orientation(=\"|>)([0-9])")
_ORIENTATION_TAG = 0x0112
_UPRIGHT = 1
# PNG: bit depth / colour type pairs Pillow decodes; chunks that carry no orientation and that
# Pillow's header reader handles without surprises.
_PNG_MODES = frozenset(
    {(1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (1, 3), (2, 3), (4, 3), (8, 3)}
    | {(8, 4), (16, 4), (8, 6), (16, 6)}
)
# Chunks Pillow reads before the pixels, with the length its reader needs (None: any).
_PNG_PLAIN_CHUNKS = {
    b"IHDR": None,
    b"PLTE": None,
    b"IDAT": None,
    b"IEND": None,
    b"gAMA": 4,
    b"cHRM": 32,
    b"sRGB": 1,
    b"pHYs": 9,
    b"tIME": 7,
}


class Header(NamedTuple):
    format: str  # Pillow's name: JPEG or PNG
    width: int  # as stored, which is as displayed: the orientation is 1
    height: int


def read_header(fd: int, size: int) -> Header | None:
    """The header of the open regular file `fd` of `size` bytes, or None: ask Pillow."""
    head = os.pread(fd, _FIRST_READ, 0)
    if head.startswith(_JPEG_SOI):
        header = _jpeg(fd, head)
        tail = head[-2:] if size <= len(head) else os.pread(fd, 2, size - 2)
        if header is None or tail != _JPEG_EOI:
            return None
    elif head.startswith(_PNG_SIGNATURE):
        header = _png(head if size <= len(head) else head + os.pread(fd, size, len(head)))
    else:
        return None
    if header is None or header.width * header.height > 2 * (Image.MAX_IMAGE_PIXELS or 0):
        return None  # Pillow refuses it as a decompression bomb, or has no limit: its call
    return header


def _jpeg(fd: int, data: bytes) -> Header | None:
    """Walk the segments from SOI to SOS the way Pillow's JPEG plugin does, strictly."""
    pos, size, exif_seen = 2, None, False
    while True:
        if len(data) < pos + 4:
            data += os.pread(fd, max(_FIRST_READ, pos + 4 - len(data)), len(data))
            if len(data) < pos + 4:
                return None  # ends before its first scan
        start, marker, length = _SEGMENT.unpack_from(data, pos)
        if start != 0xFF or length < 2:
            return None  # junk between segments: Pillow skips it, we do not guess
        end = pos + 2 + length
        if marker == _SOS:
            return None if size is None else Header("JPEG", *size)
        if marker in _READ:
            if len(data) < end:
                data += os.pread(fd, end - len(data), len(data))
                if len(data) < end:
                    return None  # truncated segment
            segment = data[pos + 4 : end]
            if marker in _SOF:
                if size is not None or length < 8 or segment[0] != 8 or segment[5] not in (1, 3, 4):
                    return None  # Pillow reads 8-bit L, RGB and CMYK frames only
                height, width = _FRAME_SIZE.unpack_from(segment, 1)
                size = (width, height)
            elif marker == _DQT:
                if not _valid_quantization(segment):
                    return None
            elif marker == _APP1 and segment.startswith(_EXIF):
                if exif_seen or _exif_orientation(segment[len(_EXIF) :]) != _UPRIGHT:
                    return None  # rotated, or an EXIF block we do not read as Pillow does
                exif_seen = True
            elif marker == _APP1 and segment.startswith(_XMP):
                if _XMP_ORIENTATION.search(segment):
                    return None
            elif not _plain_app(marker, segment):
                return None
        elif marker not in _SKIPPED:
            return None  # a marker without length, or one Pillow handles in its own way
        pos = end


def _plain_app(marker: int, segment: bytes) -> bool:
    """APP0, APP2, APP13-15 segments that Pillow parses without failing or changing format."""
    if marker == _APP0:
        return not segment.startswith(b"JFIF") or len(segment) >= 12
    if marker == _APP2:
        if segment.startswith(b"MPF\x00"):
            return False  # maybe a multi-picture file (MPO)
        return not segment.startswith(b"ICC_PROFILE\x00") or len(segment) >= 14
    if marker == _APP13:
        return not segment.startswith(b"Photoshop 3.0\x00")  # parsed with few checks
    if marker == _APP14:
        return not segment.startswith(b"Adobe") or len(segment) >= 12
    return True


def _valid_quantization(segment: bytes) -> bool:
    """Pillow's DQT check: whole tables of 64 values, 1 or 2 bytes each."""
    pos = 0
    while pos < len(segment):
        pos += 1 + (1 if segment[pos] < 16 else 2) * 64
        if pos > len(segment):
            return False
    return True


def _exif_orientation(tiff: bytes) -> int | None:
    """The orientation in the first image directory (1 when absent); None when the block is
    not one this reader is sure of."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or int.from_bytes(tiff[2:4], order) != 42:
        return None
    directory = int.from_bytes(tiff[4:8], order)
    if directory < 8 or len(tiff) < directory + 2:
        return None
    count = int.from_bytes(tiff[directory : directory + 2], order)
    entries = directory + 2
    if len(tiff) < entries + 12 * count:
        return None
    for start in range(entries, entries + 12 * count, 12):
        if int.from_bytes(tiff[start : start + 2], order) == _ORIENTATION_TAG:
            kind, values = (
                int.from_bytes(tiff[start + i : start + j], order) for i, j in ((2, 4), (4, 8))
            )
            if (kind, values) != (3, 1):  # one SHORT, as written by everyone
                return None
            value = int.from_bytes(tiff[start + 8 : start + 10], order)
            return value if 2 <= value <= 8 else _UPRIGHT
    return _UPRIGHT


def _png(data: bytes) -> Header | None:
    """Every chunk up to IEND well formed with a good checksum; IHDR as Pillow reads it."""
    pos, size = len(_PNG_SIGNATURE), None
    while True:
        if len(data) < pos + 8:
            return None  # ends before IEND: truncated
        length, kind = int.from_bytes(data[pos : pos + 4]), data[pos + 4 : pos + 8]
        if kind not in _PNG_PLAIN_CHUNKS or (size is None) != (kind == b"IHDR"):
            return None
        if _PNG_PLAIN_CHUNKS[kind] not in (None, length):
            return None
        if kind == b"IEND":
            return Header("PNG", *size) if size is not None else None
        body_end = pos + 8 + length
        if len(data) < body_end + 4:
            return None
        body = data[pos + 8 : body_end]
        if zlib.crc32(body, zlib.crc32(kind)) != int.from_bytes(data[body_end : body_end + 4]):
            return None
        if kind == b"IHDR":
            if length < 13 or (body[8], body[9]) not in _PNG_MODES or body[11]:
                return None
            size = (int.from_bytes(body[0:4]), int.from_bytes(body[4:8]))
        pos = body_end + 4
