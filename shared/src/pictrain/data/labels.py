"""One class list for the whole job: category names across splits, sorted, mapped by name.

Each split is its own dataset version on the platform, so the same label can carry a different
category id in each; only the name is stable, and sorting makes the order reproducible.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pictrain.data.coco import CocoAnnotation, CocoIndex, load_coco
from pictrain.data.summary import ConversionSummary
from pictrain.errors import UserError

log = logging.getLogger(__name__)
# labelme's COCO export lists this category for "no object": it is not a class to learn.
BACKGROUND = "_background_"
_UNSAFE = re.compile(r"[/\\\x00-\x1f]")  # path separators and control characters
MAX_FOLDER_BYTES = 200  # below every filesystem's 255-byte name limit


def labelmap_from(sources: Iterable[Path | CocoIndex]) -> list[str]:
    """Sorted, de-duplicated category names of all `sources` (COCO files or loaded indexes),
    without labelme's `_background_`."""
    names: set[str] = set()
    paths: list[str] = []
    for source in sources:
        index = source if isinstance(source, CocoIndex) else load_coco(source)
        names.update(index.categories.values())
        paths.append(str(index.path))
    if BACKGROUND in names:
        names.remove(BACKGROUND)
        log.info("category %s left out: labelme's name for 'no object', not a class", BACKGROUND)
    if not names:
        raise UserError(f"no categories (labels) in {', '.join(paths) or 'any COCO file'}")
    return sorted(names)


def class_index(categories: Mapping[int, str], names: Sequence[str]) -> dict[int, int]:
    """Category id -> class index in `names`; ids whose name is not in `names` are left out."""
    position = {name: i for i, name in enumerate(names)}
    return {cid: position[name] for cid, name in categories.items() if name in position}


def known_annotations(
    annotations: Iterable[CocoAnnotation], classes: dict[int, int], summary: ConversionSummary
) -> list[tuple[int, CocoAnnotation]]:
    """(class index, annotation) of those every task uses: categories of the labelmap (through
    `class_index`), no crowds; the others counted in `summary`."""
    known = []
    for annotation in annotations:
        cls = classes.get(annotation.category_id)
        if cls is None:
            summary.annotations_unknown_category += 1
        elif annotation.iscrowd:
            summary.annotations_crowd += 1
        else:
            known.append((cls, annotation))
    return known


def class_folders(names: Sequence[str]) -> list[str]:
    """Folder name of each class of `names`, in order, for the classification layout.

    ultralytics numbers classes by its own sort of the folder names (Python `sorted`, as
    `labelmap_from` sorts), so the folders must sort in `names` order. They are the labels
    themselves when every label is a safe folder name and they already sort that way;
    otherwise every folder is `<index, zero-padded>_<label, unsafe characters as '_'>`, which
    sorts by index.
    """
    if all(_is_safe_folder(name) for name in names) and sorted(names) == list(names):
        return list(names)
    width = len(str(len(names) - 1))
    return [f"{i:0{width}d}_{_safe_folder(name)}" for i, name in enumerate(names)]


def _is_safe_folder(name: str) -> bool:
    return (
        name not in ("", ".", "..")
        and _UNSAFE.search(name) is None
        and len(name.encode("utf-8")) <= MAX_FOLDER_BYTES
    )


def _safe_folder(name: str) -> str:
    cut = name.encode("utf-8")[:MAX_FOLDER_BYTES].decode("utf-8", errors="ignore")
    return _UNSAFE.sub("_", cut)
