"""The on-disk dataset layout the CLI seeds from, and a tiny generated sample of it.

Layout: `DIR/parameters.json|yaml` (optional), `DIR/<split>/images/*` and
`DIR/<split>/annotations.json` (COCO) for each split among train, val, test (and eval).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import yaml

SPLITS = ("train", "val", "eval", "test")
CATEGORIES = ("cat", "dog")


def read_dataset_dir(root: Path) -> tuple[dict[str, tuple[Path, Path]], dict[str, Any] | None]:
    """(alias -> (images dir, COCO file), parameters or None)."""
    splits = {
        split: (root / split / "images", root / split / "annotations.json")
        for split in SPLITS
        if (root / split / "annotations.json").is_file()
    }
    if not splits:
        raise FileNotFoundError(f"no <split>/annotations.json under {root}")
    parameters = None
    for name in ("parameters.json", "parameters.yaml", "parameters.yml"):
        if (root / name).is_file():
            parameters = yaml.safe_load((root / name).read_text())
            break
    return splits, parameters


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid solid-colour PNG, without an imaging library."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(row * height)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def write_sample_dataset(
    root: Path, images_per_split: int = 3, splits: tuple[str, ...] = ("train", "val", "test")
) -> Path:
    """A deterministic detection dataset: 32x24 PNGs, one box (cat or dog) per image,
    plus one unannotated image per split; category ids start at 1 as in real COCO files."""
    for s, split in enumerate(splits):
        images_dir = root / split / "images"
        images_dir.mkdir(parents=True)
        images, annotations = [], []
        for k in range(images_per_split):
            name = f"{split}_{k}.png"
            (images_dir / name).write_bytes(png_bytes(32, 24, (40 * s, 20 * k, 200)))
            images.append({"id": k + 1, "file_name": name, "width": 32, "height": 24})
            x, y, w, h = 2 + k, 3, 10 + k, 8
            polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
            annotations.append(
                {
                    "id": k + 1,
                    "image_id": k + 1,
                    "category_id": k % len(CATEGORIES) + 1,
                    "bbox": [x, y, w, h],
                    "segmentation": [polygon],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        (images_dir / f"{split}_background.png").write_bytes(png_bytes(32, 24, (0, 0, 0)))
        categories = [{"id": i + 1, "name": name} for i, name in enumerate(CATEGORIES)]
        document = {"images": images, "annotations": annotations, "categories": categories}
        (root / split / "annotations.json").write_text(json.dumps(document))
    (root / "parameters.json").write_text(json.dumps({"epochs": 2, "image_size": 32}))
    return root


def write_same_name_split(folder: Path) -> tuple[Path, Path]:
    """A split (images dir, COCO file) whose version holds two assets named `same.png`
    (`left/same.png`: a cat box, `right/same.png`: a dog box, different pixels) and one asset
    never annotated (`never.png`, in the folder but not in the file)."""
    images = folder / "images"
    for side, rgb in (("left", (200, 0, 0)), ("right", (0, 0, 200))):
        (images / side).mkdir(parents=True)
        (images / side / "same.png").write_bytes(png_bytes(32, 24, rgb))
    (images / "never.png").write_bytes(png_bytes(32, 24, (0, 200, 0)))
    document = {
        "images": [
            {"id": 1, "file_name": "left/same.png", "width": 32, "height": 24},
            {"id": 2, "file_name": "right/same.png", "width": 32, "height": 24},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 8], "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [12, 6, 9, 12], "iscrowd": 0},
        ],
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(CATEGORIES)],
    }
    coco = folder / "annotations.json"
    coco.write_text(json.dumps(document))
    return images, coco
