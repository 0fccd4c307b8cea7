"""COCO run-length masks decoded with their counts checked first.

pycocotools' C decoder writes runs without bounds checks, so a counts string that does not add
up to the mask size is unsafe to hand it; these few lines decode and check in Python instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class MaskError(ValueError):
    """A mask that cannot be decoded; the message says why, for the summary's examples."""


def decode_rle(segmentation: dict[str, Any], height: int, width: int) -> np.ndarray:
    """The (height, width) uint8 mask of a COCO RLE whose `size` must be [height, width].

    `counts` is either the list of run lengths (uncompressed RLE) or COCO's compressed string.
    """
    size = segmentation.get("size")
    if size != [height, width]:
        raise MaskError(f"mask size {size} is not the image's [{height}, {width}]")
    counts = segmentation.get("counts")
    if isinstance(counts, bytes | str):
        runs = _counts_from_string(counts.decode("ascii") if isinstance(counts, bytes) else counts)
    elif isinstance(counts, list) and all(isinstance(n, int) for n in counts):
        runs = counts
    else:
        raise MaskError("counts is neither a string nor a list of integers")
    if any(n < 0 for n in runs) or sum(runs) != height * width:
        raise MaskError(f"runs do not add up to {height} x {width} pixels")
    values = np.arange(len(runs), dtype=np.uint8) % 2  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values, runs)
    return np.ascontiguousarray(flat.reshape(width, height).T)  # COCO runs go column by column


def _counts_from_string(text: str) -> list[int]:
    """COCO's compressed counts: 5-bit groups in characters from '0', 0x20 = more follow,
    0x10 in the last group = negative; from the third run on, each is a delta on the run two
    before (the same decoding as pycocotools' rleFrString)."""
    runs: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos == len(text):
                raise MaskError("counts string ends inside a number")
            char = ord(text[pos]) - 48
            if not 0 <= char < 64:
                raise MaskError(f"counts string has a foreign character {text[pos]!r}")
            value |= (char & 0x1F) << shift
            more = bool(char & 0x20)
            pos += 1
            shift += 5
            if not more and char & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs
