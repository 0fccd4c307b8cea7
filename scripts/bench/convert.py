"""COCO -> YOLO detection labels: pictrain's converter vs ultralytics' `convert_coco`."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pictrain.data.convert import convert_detection
from pictrain.data.labels import labelmap_from
from pictrain.synthetic import SHAPES, make_detection_dataset
from scripts.bench.report import BenchResult, seconds
from scripts.bench.timing import compare

Labels = dict[str, list[list[float]]]  # label file stem -> rows (class, cx, cy, w, h)


@dataclass(frozen=True)
class ConvertSizes:
    images: int
    image_size: int
    extra_boxes: int  # random boxes added to each image on top of its drawn shapes


def run(work: Path, sizes: ConvertSizes, repeats: int, seed: int) -> BenchResult:
    coco, images_dir, boxes = _inputs(work, sizes, seed)
    ours_out, theirs_out = work / "ours", work / "theirs"

    def ours() -> Any:
        shutil.rmtree(ours_out, ignore_errors=True)
        return lambda: _ours(coco, images_dir, ours_out)

    def theirs() -> Any:
        # convert_coco writes to `save_dir2` when save_dir exists, and appends to label files.
        shutil.rmtree(theirs_out, ignore_errors=True)
        return lambda: _theirs(coco.parent, theirs_out)

    outcome = compare(ours, theirs, repeats)
    timing = outcome.timing
    per_image_ms = (timing.best_ours - timing.best_theirs) / sizes.images * 1000
    agrees, agreement = _agreement(_read_labels(outcome.ours), _read_labels(outcome.theirs))
    return BenchResult(
        title="COCO → YOLO detection conversion",
        what="one COCO detection JSON + its image files → YOLO label files",
        sizes=(
            f"{sizes.images:,} JPEG images of {sizes.image_size} px, {boxes:,} boxes "
            f"({boxes / sizes.images:.1f} per image), {len(SHAPES)} categories"
        ),
        ours="`labelmap_from` + `convert_detection` (validates and hard-links every image)",
        theirs="`ultralytics.data.converter.convert_coco(cls91to80=False)` (JSON only)",
        timing=timing,
        agreement=agreement,
        reading=_reading(timing.ratio, per_image_ms, seconds(timing.best_theirs), agrees),
    )


def _inputs(work: Path, sizes: ConvertSizes, seed: int) -> tuple[Path, Path, int]:
    """Synthetic shapes, re-labelled for convert_coco, with extra boxes; (json, images, boxes).

    convert_coco reads class = category_id - 1, so categories are renumbered 1..n in name
    order: the class index our name-sorted labelmap gives. It converts every JSON of a folder,
    so the file sits alone in one.
    """
    source = make_detection_dataset(
        work / "shapes", sizes.images, sizes.image_size, seed, {"train": 1}
    )["train"]
    coco = json.loads(source.read_text(encoding="utf-8"))
    new_id = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=_name), 1)}
    coco["categories"] = [{**c, "id": new_id[c["id"]]} for c in coco["categories"]]
    for annotation in coco["annotations"]:
        annotation["category_id"] = new_id[annotation["category_id"]]
    coco["annotations"] += _extra_boxes(coco, sizes, np.random.default_rng(seed))
    dest = work / "coco" / "annotations.json"
    dest.parent.mkdir(parents=True)
    dest.write_text(json.dumps(coco), encoding="utf-8")
    return dest, source.parent / "images", len(coco["annotations"])


def _name(category: dict[str, Any]) -> str:
    return category["name"]


def _extra_boxes(
    coco: dict[str, Any], sizes: ConvertSizes, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """`extra_boxes` random boxes per image, inside it, of random categories."""
    side = sizes.image_size
    count = len(coco["images"]) * sizes.extra_boxes
    wh = rng.uniform(2, side / 2, size=(count, 2)).round(2)
    xy = (rng.uniform(0, 1, size=(count, 2)) * (side - wh)).round(2)
    categories = rng.integers(1, len(coco["categories"]) + 1, size=count)
    image_ids = np.repeat([image["id"] for image in coco["images"]], sizes.extra_boxes)
    first = len(coco["annotations"]) + 1
    return [
        {
            "id": first + i,
            "image_id": int(image_ids[i]),
            "category_id": int(categories[i]),
            "bbox": [*xy[i].tolist(), *wh[i].tolist()],
            "area": float(wh[i, 0] * wh[i, 1]),
            "iscrowd": 0,
        }
        for i in range(count)
    ]


def _ours(coco: Path, images_dir: Path, out: Path) -> Path:
    names = labelmap_from([coco])
    convert_detection(coco, images_dir, out, "train", names)
    return out / "labels" / "train"


def _theirs(labels_dir: Path, out: Path) -> Path:
    from ultralytics.data.converter import convert_coco

    convert_coco(labels_dir=str(labels_dir), save_dir=str(out), cls91to80=False)
    written = out / "labels" / "annotations"  # one folder per JSON, named after its stem
    if not written.is_dir():
        raise RuntimeError(f"convert_coco wrote nothing to {written}")
    return written


def _read_labels(folder: Path) -> Labels:
    return {
        path.stem: [[float(v) for v in line.split()] for line in path.read_text().splitlines()]
        for path in folder.glob("*.txt")
    }


def _agreement(ours: Labels, theirs: Labels) -> tuple[bool, str]:
    """Same label lines, file by file: count, classes, largest coordinate difference."""
    ours_lines = sum(map(len, ours.values()))
    theirs_lines = sum(map(len, theirs.values()))
    same_files = {stem for stem, rows in ours.items() if rows} == set(theirs)
    mismatched = [stem for stem in theirs if len(ours.get(stem, [])) != len(theirs[stem])]
    if not same_files or mismatched or ours_lines != theirs_lines:
        return False, (
            f"**no**: {ours_lines:,} label lines vs {theirs_lines:,}; "
            f"{len(mismatched)} files differ in line count"
        )
    pairs = np.array(
        [pair for stem in theirs for pair in zip(ours[stem], theirs[stem], strict=True)]
    )
    same_classes = bool(np.all(pairs[:, 0, 0] == pairs[:, 1, 0]))
    largest = float(np.abs(pairs[:, 0, 1:] - pairs[:, 1, 1:]).max())
    return same_classes, (
        f"{'yes' if same_classes else '**no, classes differ**'}: {ours_lines:,} label lines "
        f"each in {len(theirs):,} files, line by line; largest coordinate difference "
        f"{largest:.1e} (ours prints 6 decimals, ultralytics 6 significant digits)"
    )


def _reading(ratio: float, per_image_ms: float, theirs_time: str, agrees: bool) -> str:
    verdict = (
        f"ours takes {ratio:.2f}× the time of convert_coco ({per_image_ms:.2f} ms more per image)"
        if ratio >= 1
        else f"ours is faster ({ratio:.2f}×, {-per_image_ms:.2f} ms less per image)"
    )
    return (
        "**Reading.** Same inputs, different work. "
        f"`convert_coco` ({theirs_time}) parses the JSON and writes label files and nothing "
        "else: it never opens an image, trusts `width`/`height` from the JSON, writes no images "
        "(it only creates an empty `images/` folder), skips label files of background images "
        "and does not clip boxes. It also needs `cls91to80=False`, category ids 1..n (class = "
        "id - 1) and a fresh `save_dir` (else it writes to `save_dir2` and appends to old label "
        "files): the benchmark arranges all three, renumbering the categories in name order "
        "so that its classes are those of our sorted labelmap. `convert_detection` also maps "
        "categories by name, opens every image header (format, real size, EXIF orientation, "
        "JPEG end marker) in a thread pool, hard-links each image into the YOLO layout, clips "
        "and filters boxes and counts every fix in a summary. On these inputs "
        f"{verdict}. That is the price of the validation, and not only per image: ours "
        "also indexes and checks every annotation, so its cost grows with the boxes too "
        "(`--convert-extra-boxes` shows how the ratio moves with boxes per image). "
        + (
            "Both write the same label lines."
            if agrees
            else "The label lines differ: see the table before reading the times."
        )
    )
