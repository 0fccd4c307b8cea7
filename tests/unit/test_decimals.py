"""Label numbers spelled out by numpy: every character the one `%.6f` writes."""

from __future__ import annotations

import numpy as np

from pictrain.data.decimals import label_files, unit_fields


def _printf(values: np.ndarray) -> str:
    return "".join(f" {value:.6f}" for value in values.tolist())


def _fields(values: np.ndarray) -> str | None:
    fields = unit_fields(values)
    return None if fields is None else fields.tobytes().decode()


def test_fields_are_printf_digits_including_near_and_exact_halves() -> None:
    rng = np.random.default_rng(0)
    halves = (np.arange(0, 1_000_000, 997) + 0.5) / 1e6  # a rounding away from a half
    values = np.concatenate(
        [
            rng.uniform(0, 1, 10_000),
            np.arange(0, 2**14 + 1) / 2**14,  # exact halves of a millionth: half to even
            halves,
            np.nextafter(halves, 0),
            np.nextafter(halves, 1),
            rng.integers(0, 64_001, 10_000) / 100 / 640,  # 2-decimal pixels on a 640 px image
            [0.0, 1.0, 5e-7, 0.9999995, 1e-300],
            [1.0000005, 1.5, 1.9999995, 2.0],  # up to the keypoints' visibility flag 2
            rng.uniform(1, 2, 1_000),
        ]
    )
    assert _fields(values) == _printf(values)
    assert _fields(np.empty(0)) == ""


def test_values_outside_zero_to_two_are_left_to_python() -> None:
    for value in (-0.0, -0.5, 2.0000001, 2.5, float("nan"), float("inf")):
        assert unit_fields(np.array([0.5, value])) is None
    texts = label_files(np.array([0, 12]), np.array([2, 1]), np.array([0.5, -0.0, 3.0]), [2])
    assert texts == ["0 0.500000 -0.000000\n12 3.000000\n"]


def test_files_of_lines_of_any_class() -> None:
    values = np.array([0.25, 0.5, 1.0, 0.0, 0.125, 0.75, 0.5])
    texts = label_files(np.array([3, 10, 7]), np.array([2, 2, 3]), values, [1, 0, 2, 0])
    assert texts == [
        "3 0.250000 0.500000\n",
        "",
        "10 1.000000 0.000000\n7 0.125000 0.750000 0.500000\n",
        "",
    ]
    empty = np.empty(0, np.int64)
    assert label_files(empty, empty, np.empty(0), [0, 0]) == ["", ""]
