"""Label coordinates written as `%.6f` writes them, thousands at a time in one numpy pass.

YOLO label lines hold normalised coordinates, numbers of [0, 1], and pose labels the keypoints'
visibility flags, 0 to 2 (`FAST_MAX`). Formatting them one by one
(`%` or f-strings) is most of a converter's time at dataset scale; here all the numbers of a
label file are rounded to millionths and spelled out digit by digit as byte arrays. `%.6f`
rounds the exact binary value: where `value * 1e6` lies so close to a half that the product's
own rounding could tip it, the exact product decides (`_exactly_rounded`), so every digit is
the one `%.6f` gives.
"""

from __future__ import annotations

import itertools

import numpy as np

_WIDTH = 9  # " d.dddddd"
_NEAR_HALF = 0.5 - 1e-6  # far above the product's rounding error (< 1e-10 below 1e6)


def _spelled(texts: list[str], at: int) -> np.ndarray:
    """Each text's ASCII bytes placed at byte `at` of an 8-byte little-endian word."""
    return np.array([int.from_bytes(bytes(at) + text.encode(), "little") for text in texts], "<u8")


FAST_MAX = 2  # the largest value spelled out here; others go through `%`
# "d.ddd" of every thousandth from 0 to FAST_MAX, in bytes 0-4; the last three decimals in
# bytes 5-7: or-ed together, the 8 bytes of "d.dddddd".
_HEAD = _spelled([f"{i / 1000:.3f}" for i in range(1000 * FAST_MAX + 1)], 0)
_TAIL = _spelled([f"{i:03d}" for i in range(1000)], 5)


def unit_fields(values: np.ndarray) -> np.ndarray | None:
    """`" %.6f"` of every value of a 1-d array: (n, 9) ASCII bytes; None unless every value
    is in [0, FAST_MAX] (-0.0 and NaN are not)."""
    if not len(values):
        return np.empty((0, _WIDTH), np.uint8)
    if values.view(np.int64).min() < 0 or not values.max() <= FAST_MAX:  # sign bit, NaN, > max
        return None
    scaled = values * 1e6
    rounded = np.rint(scaled)
    millionths = rounded.astype(np.int64)
    near_half = np.flatnonzero(np.abs(scaled - rounded) > _NEAR_HALF)
    if len(near_half):
        millionths[near_half] = _exactly_rounded(values[near_half], scaled[near_half])
    fields = np.full((len(values), _WIDTH), ord(" "), np.uint8)
    words = _HEAD[millionths // 1000] | _TAIL[millionths % 1000]
    fields[:, 1:] = words.view(np.uint8).reshape(-1, 8)
    return fields


def _exactly_rounded(values: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """`values * 1e6` rounded to the nearest integer from their exact products, half to even
    (as `%.6f` rounds), where `scaled` (the rounded products) lie within 1e-6 of a half.

    Each value is split into two halves of 26 bits (Veltkamp), whose products with 1e6
    (14 significant bits) are exact; the larger product minus the half is exact too (Sterbenz:
    they are far within a factor 2 of each other), so the sign of the sum is the exact one.
    """
    below = np.floor(scaled)
    half = below + 0.5
    spread = values * 134217729.0  # 2**27 + 1
    high = spread - (spread - values)
    low = values - high
    side = (high * 1e6 - half) + low * 1e6
    up = (side > 0) | ((side == 0) & (below % 2 == 1))
    return below.astype(np.int64) + up


def label_files(
    classes: np.ndarray, sizes: np.ndarray, values: np.ndarray, per_file: list[int]
) -> list[str]:
    """The text of label files holding `per_file[i]` lines each, in order: one
    `cls v1 v2 ...` line per class (integers >= 0), of `sizes` values (one per line) taken in
    order from `values` (normalised coordinates), each formatted as `%.6f`."""
    values = np.ravel(np.asarray(values, np.float64))
    fields = unit_fields(values)
    if fields is None:  # not all normalised: no fixed width
        numbers, ends = values.tolist(), itertools.accumulate(sizes.tolist())
        lines = [
            f"{cls}" + " %.6f" * size % tuple(numbers[end - size : end]) + "\n"
            for cls, size, end in zip(classes.tolist(), sizes.tolist(), ends, strict=True)
        ]
        text = "".join(lines)
        line_ends = np.cumsum([len(line) for line in lines], dtype=np.int64)
    else:
        text, line_ends = _lines(classes, sizes, fields)
    ends = np.concatenate([[0], line_ends])[np.cumsum([0, *per_file])].tolist()
    return [text[start:end] for start, end in itertools.pairwise(ends)]


def _lines(classes: np.ndarray, sizes: np.ndarray, fields: np.ndarray) -> tuple[str, np.ndarray]:
    """The lines spelled out in one byte array: each class's digits, its fields, a newline.
    Returns the text and where each line ends in it."""
    if not len(classes):
        return "", np.empty(0, np.int64)
    names = [str(cls) for cls in range(int(classes.max()) + 1)]
    longest = max(map(len, names))
    table = np.frombuffer("".join(name.ljust(longest) for name in names).encode(), np.uint8)
    table = table.reshape(-1, longest)
    widths = np.array(list(map(len, names)))[classes]
    lengths = widths + _WIDTH * sizes + 1
    ends = np.cumsum(lengths)
    starts = ends - lengths
    text = np.empty(int(ends[-1]), np.uint8)
    free = np.ones(len(text), bool)  # where the fields go
    for digit in range(longest):
        lines = np.flatnonzero(widths > digit)
        text[starts[lines] + digit] = table[classes[lines], digit]
        free[starts[lines] + digit] = False
    text[ends - 1] = ord("\n")
    free[ends - 1] = False
    text[free] = fields.ravel()
    return text.tobytes().decode("ascii"), ends
