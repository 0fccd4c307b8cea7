"""The train / val / test splits a job uses, from the splits the user attached.

Only train is required: missing splits are cut from train by image, seeded, so a rerun with
the same seed trains and scores on the same images.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pictrain.data.coco import CocoIndex, Keep, cut_coco, load_coco, long_lived, read_coco
from pictrain.errors import UserError
from pictrain.params import DEFAULT_HOLDOUT_FRACTION
from pictrain.splitnames import ALIASES, SPLITS, canonical_split


@dataclass(frozen=True)
class DatasetSplit:
    """One split as fetched: a folder of images and the COCO file that describes them."""

    name: str
    images_dir: Path
    coco_file: Path
    version_id: str | None = None
    # A split cut from another: that split, whose COCO file is the user's original.
    cut_from: DatasetSplit | None = None

    @property
    def source_file(self) -> Path:
        """The user's own COCO file this split comes from (a cut split's is its origin's)."""
        return self.cut_from.source_file if self.cut_from else self.coco_file


@dataclass(frozen=True)
class ResolvedSplits:
    """All three splits, the index of each (parsed once; a split used twice shares its index),
    and a note for each choice the user should know about."""

    splits: dict[str, DatasetSplit]
    indexes: dict[str, CocoIndex]
    notes: list[str] = field(default_factory=list)


def resolve_splits(
    attached: Mapping[str, DatasetSplit],
    work_dir: Path,
    seed: int,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    *,
    keep: Keep = frozenset(),
) -> ResolvedSplits:
    """Fill in val and test; cut splits are written as COCO files under `work_dir`, each
    `holdout_fraction` of train's images.

    Every attached COCO file is parsed once, here; `keep` as in `load_coco`.
    """
    given = _canonical(attached)
    if "train" not in given:
        raise UserError(f"a train split is required; attached: {', '.join(attached) or 'none'}")
    cut = () if "val" in given else ("val",) if "test" in given else ("val", "test")
    indexes = {
        name: load_coco(split.coco_file, keep=keep)
        for name, split in given.items()
        if name != "train" or not cut
    }
    _check_usable(given, indexes)
    if not cut:
        if "test" in given:
            return _resolved(given, indexes, [])
        note = "no test split attached: the val split is also the test split, so test metrics "
        note += "are not independent of model selection"
        both = {**given, "test": given["val"]}
        return _resolved(both, {**indexes, "test": indexes["val"]}, [note])
    with long_lived():  # train's parsed file, then the indexes: no collector pass over them
        parts = _cut(given["train"], cut, work_dir, seed, holdout_fraction, keep)
    sizes = ", ".join(f"{len(parts.indexes[name].images)} {name}" for name in parts.splits)
    note = f"{' and '.join(cut)} cut from train by image (seed {seed}): {sizes} images"
    return _resolved({**given, **parts.splits}, {**indexes, **parts.indexes}, [note])


def _resolved(
    splits: dict[str, DatasetSplit], indexes: dict[str, CocoIndex], notes: list[str]
) -> ResolvedSplits:
    return ResolvedSplits(
        {name: splits[name] for name in SPLITS}, {name: indexes[name] for name in SPLITS}, notes
    )


def _canonical(attached: Mapping[str, DatasetSplit]) -> dict[str, DatasetSplit]:
    given: dict[str, DatasetSplit] = {}
    for name, split in attached.items():
        canonical = canonical_split(name)
        if canonical is None:
            valid = ", ".join(sorted(ALIASES))
            raise UserError(f"unknown split name {name!r}; valid names: {valid}")
        if canonical in given:
            raise UserError(f"two attached splits are the {canonical} split")
        given[canonical] = replace(split, name=canonical)
    return given


def _check_usable(splits: Mapping[str, DatasetSplit], indexes: Mapping[str, CocoIndex]) -> None:
    for name, index in indexes.items():
        if not index.images:
            raise UserError(f"the {name} split has 0 usable images ({splits[name].coco_file})")


@dataclass(frozen=True)
class _Cut:
    splits: dict[str, DatasetSplit]
    indexes: dict[str, CocoIndex]


def _cut(
    train: DatasetSplit,
    holdouts: tuple[str, ...],
    work_dir: Path,
    seed: int,
    fraction: float,
    keep: Keep,
) -> _Cut:
    """Shuffle train's image ids (sorted first, so file order does not matter) and cut them."""
    document = read_coco(train.coco_file)
    ids = sorted(document.image_ids)
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
    files = {name: work_dir / f"{name}.json" for name in ("train", *holdouts)}
    return _Cut(
        splits={
            name: DatasetSplit(name, train.images_dir, file, train.version_id, cut_from=train)
            for name, file in files.items()
        },
        indexes=cut_coco(document, split_of, files, "train", keep=keep),
    )
