"""The train / val / test splits a job uses, from the splits the user attached.

Only train is required: missing splits are cut from train by image, seeded, so a rerun with
the same seed trains and scores on the same images.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pictrain.data.coco import load_coco, scan_coco
from pictrain.errors import UserError
from pictrain.params import DEFAULT_HOLDOUT_FRACTION
from pictrain.platform.base import DatasetSplit

SPLITS = ("train", "val", "test")
_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    "test": "test",
    "testing": "test",
}


@dataclass(frozen=True)
class ResolvedSplits:
    """All three splits, and a note for each choice the user should know about."""

    splits: dict[str, DatasetSplit]
    notes: list[str] = field(default_factory=list)


def canonical_split(alias: str) -> str | None:
    """train / val / test for a user-facing split name, None if it is none of them."""
    return _ALIASES.get(alias.strip().lower())


def resolve_splits(
    attached: Mapping[str, DatasetSplit],
    work_dir: Path,
    seed: int,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
) -> ResolvedSplits:
    """Fill in val and test; cut splits are written as COCO files under `work_dir`, each
    `holdout_fraction` of train's images."""
    given = _canonical(attached)
    if "train" not in given:
        raise UserError(f"a train split is required; attached: {', '.join(attached) or 'none'}")
    train = given["train"]
    if "val" in given and "test" in given:
        _check_usable(given)
        return _resolved(given, [])
    if "val" in given:
        _check_usable(given)
        note = "no test split attached: the val split is also the test split, so test metrics "
        note += "are not independent of model selection"
        return _resolved({**given, "test": given["val"]}, [note])
    if "test" in given:
        _check_usable({"test": given["test"]})
    cut = ("val", "test") if "test" not in given else ("val",)
    parts = _cut(train, cut, work_dir, seed, holdout_fraction)
    sizes = ", ".join(f"{n} {name}" for name, n in parts.sizes.items())
    note = f"{' and '.join(cut)} cut from train by image (seed {seed}): {sizes} images"
    return _resolved({**given, **parts.splits}, [note])


def _resolved(splits: dict[str, DatasetSplit], notes: list[str]) -> ResolvedSplits:
    return ResolvedSplits({name: splits[name] for name in SPLITS}, notes)


def _canonical(attached: Mapping[str, DatasetSplit]) -> dict[str, DatasetSplit]:
    given: dict[str, DatasetSplit] = {}
    for name, split in attached.items():
        canonical = canonical_split(name)
        if canonical is None:
            valid = ", ".join(sorted(_ALIASES))
            raise UserError(f"unknown split name {name!r}; valid names: {valid}")
        if canonical in given:
            raise UserError(f"two attached splits are the {canonical} split")
        given[canonical] = replace(split, name=canonical)
    return given


def _check_usable(splits: Mapping[str, DatasetSplit]) -> None:
    for name, split in splits.items():
        if not load_coco(split.coco_file).images:
            raise UserError(f"the {name} split has 0 usable images ({split.coco_file})")


@dataclass(frozen=True)
class _Cut:
    splits: dict[str, DatasetSplit]
    sizes: dict[str, int]


def _cut(
    train: DatasetSplit, holdouts: tuple[str, ...], work_dir: Path, seed: int, fraction: float
) -> _Cut:
    """Shuffle train's image ids (sorted first, so file order does not matter) and cut them."""
    ids = sorted(load_coco(train.coco_file).images)
    n_holdout = max(1, round(len(ids) * fraction))
    needed = 1 + n_holdout * len(holdouts)
    if len(ids) < needed:
        raise UserError(
            f"the train split has {len(ids)} usable images: at least {needed} are needed to cut "
            f"{' and '.join(holdouts)} from it ({train.coco_file})"
        )
    random.Random(seed).shuffle(ids)
    split_of: dict[int, str] = {}
    for i, name in enumerate(holdouts):
        split_of.update(dict.fromkeys(ids[i * n_holdout : (i + 1) * n_holdout], name))
    split_of.update(dict.fromkeys(ids[n_holdout * len(holdouts) :], "train"))
    names = ("train", *holdouts)
    files = _write_subsets(train.coco_file, split_of, names, work_dir)
    return _Cut(
        splits={
            name: DatasetSplit(name, train.images_dir, files[name], train.version_id)
            for name in names
        },
        sizes={name: sum(1 for s in split_of.values() if s == name) for name in names},
    )


def _write_subsets(
    source: Path, split_of: dict[int, str], names: tuple[str, ...], work_dir: Path
) -> dict[str, Path]:
    """One pass over `source`: each image and annotation goes to its image's split file.

    Entries are kept as written (segmentation, attributes...); those that name no known image
    go to train, where the converter counts and reports them.
    """
    images: dict[str, list[str]] = {name: [] for name in names}
    annotations: dict[str, list[str]] = {name: [] for name in names}

    def route(raw: Any, key: str, into: dict[str, list[str]]) -> None:
        image_id = raw.get(key) if isinstance(raw, dict) else None
        target = split_of.get(image_id, "train") if isinstance(image_id, int) else "train"
        into[target].append(json.dumps(raw, separators=(",", ":"), ensure_ascii=False))

    rest = scan_coco(
        source,
        lambda raw: route(raw, "id", images),
        lambda raw: route(raw, "image_id", annotations),
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in names:
        dest = work_dir / f"{name}.json"
        with dest.open("w", encoding="utf-8") as out:
            out.write("{")
            for key, value in rest.items():
                out.write(f"{json.dumps(key)}:{json.dumps(value, ensure_ascii=False)},")
            out.write(f'"images":[{",".join(images[name])}],')
            out.write(f'"annotations":[{",".join(annotations[name])}]}}')
        files[name] = dest
    return files
