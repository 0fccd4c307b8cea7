"""The images INT8 calibration sees: a seeded sample of the train split, never test.

ultralytics calibrates on the `split` of the `data` it is given (`val` unless told), so the job
hands it a dataset of its own whose `train` holds the sample, and `split=train`. Calibrating on
the test split would fit the quantization to the images the export is then scored on.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import yaml

from pictrain.data.prepare import PreparedDataset
from pictrain.evaluate.classification import read_class_split

CALIBRATION_SPLIT = "train"


def calibration_data(
    task: str, dataset: PreparedDataset, count: int, seed: int, dest: Path
) -> tuple[Path, int]:
    """What to pass ultralytics as `data` (with `split=train`), and how many images it holds:
    at most `count` train images, drawn with `seed`."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if task == "classify":
        labelled = read_class_split(dataset.root / CALIBRATION_SPLIT)
        chosen = _sample(labelled, count, seed)
        for path, _ in chosen:  # only the classes drawn: an empty class folder is an error
            folder = dest / CALIBRATION_SPLIT / path.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / path.name).symlink_to(path.resolve())
        return dest, len(chosen)
    images = sorted(p for p in dataset.images_dir(CALIBRATION_SPLIT).iterdir() if p.is_file())
    chosen_paths = _sample(images, count, seed)
    listing = dest / "images.txt"  # ultralytics reads labels beside each image's own folder
    listing.write_text("".join(f"{p.resolve()}\n" for p in chosen_paths))
    # The training data.yaml's other keys (names; pose's kpt_shape, flip_idx...), which
    # ultralytics checks before it reads a split; its test split is not listed.
    data = yaml.safe_load(dataset.train_data.read_text(encoding="utf-8"))
    data.pop("test", None)
    data |= {
        "path": str(dest.resolve()),
        CALIBRATION_SPLIT: str(listing.resolve()),
        "val": str(listing.resolve()),
    }
    data_yaml = dest / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return data_yaml, len(chosen_paths)


def _sample(items: list[Any], count: int, seed: int) -> list[Any]:
    return items if len(items) <= count else random.Random(seed).sample(items, count)
