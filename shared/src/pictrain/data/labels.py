"""One class list for the whole job: category names across splits, sorted, mapped by name.

Each split is its own dataset version on the platform, so the same label can carry a different
category id in each; only the name is stable, and sorting makes the order reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pictrain.data.coco import CocoIndex, load_coco
from pictrain.errors import UserError


def labelmap_from(sources: Iterable[Path | CocoIndex]) -> list[str]:
    """Sorted, de-duplicated category names of all `sources` (COCO files or loaded indexes)."""
    names: set[str] = set()
    paths: list[str] = []
    for source in sources:
        index = source if isinstance(source, CocoIndex) else load_coco(source)
        names.update(index.categories.values())
        paths.append(str(index.path))
    if not names:
        raise UserError(f"no categories (labels) in {', '.join(paths) or 'any COCO file'}")
    return sorted(names)


def class_index(categories: Mapping[int, str], names: Sequence[str]) -> dict[int, int]:
    """Category id -> class index in `names`; ids whose name is not in `names` are left out."""
    position = {name: i for i, name in enumerate(names)}
    return {cid: position[name] for cid, name in categories.items() if name in position}
