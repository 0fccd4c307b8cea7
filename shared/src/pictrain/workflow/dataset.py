"""`pictrain data dataset`: a dataset and one version per split, made of the datalake data its
tag query selects, typed, labelled, and annotated from the split's COCO file.

Everything is read and checked first (queries that match nothing, COCO files naming files the
query does not hold, a version of another type): bad input creates nothing. Then each step
converges: what is there is kept, what is missing is added, the import replaces annotations.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain.errors import UserError
from pictrain.platform.enums import ImportAnnotationMode, TaskStatus
from pictrain.platform.session import Platform
from pictrain.workflow.progress import Progress
from pictrain.workflow.project import DatasetSection, ProjectFile, version_name, version_query

log = logging.getLogger(__name__)
ADD_BATCH = 1000
ADD_WAIT = (2.0, 300)  # seconds between polls, polls: how long adding a batch may take


@dataclass
class CocoFile:
    path: Path
    file_names: set[str]
    categories: list[str]
    rle_masks: int
    without_skeleton: list[str]  # categories without `keypoints` names or a `skeleton` list


@dataclass
class VersionPlan:
    split: str
    name: str
    query: list[str]
    data: list[Any]
    coco: CocoFile | None


@dataclass
class DatasetPlan:
    section: DatasetSection
    labels: list[str]
    versions: list[VersionPlan]


def read_coco(path: Path) -> CocoFile:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"COCO file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"COCO file {path} is not JSON: {exc}") from None
    try:
        names = {str(image["file_name"]) for image in document["images"]}
        categories = [str(c["name"]) for c in document["categories"]]
        annotations = document.get("annotations") or []
    except (KeyError, TypeError) as exc:
        raise UserError(f"COCO file {path} lacks images or categories ({exc})") from None
    rle = sum(
        1 for a in annotations if isinstance(a, dict) and isinstance(a.get("segmentation"), dict)
    )
    without_skeleton = [str(c["name"]) for c in document["categories"] if not _has_skeleton(c)]
    return CocoFile(path, names, categories, rle, without_skeleton)


def _has_skeleton(category: dict[str, Any]) -> bool:
    """What the SDK's KEYPOINT import needs of a category (`_ensures_skeleton_set`): its
    vertex names, and the edges unless there is a single vertex."""
    names = category.get("keypoints")
    return isinstance(names, str) or (
        isinstance(names, list) and isinstance(category.get("skeleton"), list)
    )


def plan_dataset(platform: Platform, project: ProjectFile) -> DatasetPlan:
    section: DatasetSection = project.need("dataset")
    splits = project.need("data")
    cocos = {
        split: read_coco(project.path(s.annotations)) if s.annotations else None
        for split, s in splits.items()
    }
    categories = sorted({c for coco in cocos.values() if coco for c in coco.categories})
    labels = section.labels or categories
    unknown = sorted(set(categories) - set(labels))
    if unknown:
        raise UserError(f"[dataset] labels lack categories of the COCO files: {unknown}")
    datalake = platform.call("find the datalake", platform.client.get_datalake)
    versions = []
    for split, split_section in splits.items():
        query = version_query(split_section)
        data = platform.find(
            f"data tagged {query}",
            lambda query=query: datalake.list_data(tags=query, intersect_tags=True),
        )
        if not data:
            raise UserError(
                f"split {split}: no data in the datalake has all the tags {query} "
                "(run `pictrain data upload` first?)"
            )
        versions.append(
            VersionPlan(split, version_name(split, split_section), query, list(data), cocos[split])
        )
    for version in versions:
        _check_coco(version, section.type)
    plan = DatasetPlan(section, labels, versions)
    _read_existing(platform, plan)
    return plan


def _check_coco(version: VersionPlan, dataset_type: str) -> None:
    names = [d.filename for d in version.data]
    twins = sorted({n for n in names if names.count(n) > 1})
    if version.coco is None:
        return
    if twins:
        raise UserError(
            f"split {version.split}: the data tagged {version.query} hold several files named "
            f"{', '.join(twins[:3])}: annotations are matched by file name (twins of one "
            "file: `pictrain data upload` removes them)"
        )
    missing = sorted(version.coco.file_names - set(names))
    if missing:
        raise UserError(
            f"split {version.split}: {version.coco.path} names {len(missing)} files the data "
            f"tagged {version.query} do not hold, e.g. {', '.join(missing[:3])}"
        )
    lacking = version.coco.without_skeleton
    if lacking and dataset_type == "KEYPOINT":
        raise UserError(
            f"split {version.split}: {version.coco.path} is imported into a KEYPOINT version, "
            "which needs every category's skeleton: `keypoints` (the vertex names) and "
            f"`skeleton` (edges, [] for none); missing in {', '.join(lacking)}"
        )
    if version.coco.rle_masks and dataset_type == "SEGMENTATION":
        log.warning(
            "split %s: %d RLE masks in %s: Picsellia imports polygons only into SEGMENTATION "
            "versions; the SDK skips these",
            version.split,
            version.coco.rle_masks,
            version.coco.path,
        )


def _read_existing(platform: Platform, plan: DatasetPlan) -> None:
    """What the platform already holds; a version of another type cannot be reused."""
    name = plan.section.name
    dataset = platform.find(f"dataset {name}", platform.client.get_dataset, name)
    if dataset is None:
        return
    for version in plan.versions:
        existing = platform.find(f"version {version.name}", dataset.get_version, version.name)
        kind = existing.type.value if existing else plan.section.type
        if kind not in (plan.section.type, "NOT_CONFIGURED"):
            raise UserError(
                f"dataset {name} version {version.name} is {kind}, "
                f"not {plan.section.type}: name another version or dataset"
            )


def build(platform: Platform, plan: DatasetPlan) -> list[str]:
    section = plan.section
    client = platform.client
    dataset, _ = platform.get_or_create(
        f"dataset {section.name}",
        lambda: client.get_dataset(section.name),
        lambda: client.create_dataset(section.name, section.description),
    )
    return [_build_version(platform, dataset, plan, version) for version in plan.versions]


def _build_version(platform: Platform, dataset: Any, plan: DatasetPlan, wanted: VersionPlan) -> str:
    kind = plan.section.type
    version, created = platform.get_or_create(
        f"version {wanted.name}",
        lambda: dataset.get_version(wanted.name),
        lambda: dataset.create_version(wanted.name, type=kind),
    )
    if version.type.value != kind:
        platform.call(f"set the type of {wanted.name}", version.set_type, kind)
    added = _add_missing(platform, version, wanted)
    removed = _remove_twin_assets(platform, version, wanted.name)
    present = {label.name for label in platform.call("list labels", version.list_labels)}
    for name in plan.labels:
        if name not in present:
            platform.call(f"create label {name}", version.get_or_create_label, name)
    annotated = 0
    if wanted.coco is not None:
        imported = platform.call(
            f"import {wanted.coco.path.name} into {wanted.name}",
            version.import_annotations_coco_file,
            str(wanted.coco.path),
            mode=ImportAnnotationMode.REPLACE,
            force_create_label=True,
            fail_on_asset_not_found=True,
        )
        annotated = len(imported)
    state = "created" if created else "updated"
    return (
        f"{wanted.split}: version {dataset.name}/{wanted.name} {state} ({kind}): "
        f"{len(wanted.data)} assets ({added} added{removed}), {annotated} annotated, "
        f"labels {', '.join(plan.labels)}"
    )


def _add_missing(platform: Platform, version: Any, wanted: VersionPlan) -> int:
    """Add the data the version lacks. Every attempt lists the version first, so a retry after
    a lost answer adds nothing twice."""
    added = 0

    def attempt() -> None:
        nonlocal added
        present = {asset.data_id for asset in platform.find("assets", version.list_assets) or []}
        missing = [d for d in wanted.data if d.id not in present]
        with Progress(len(missing), f"add data to {wanted.name}", unit="asset") as progress:
            for start in range(0, len(missing), ADD_BATCH):
                batch = missing[start : start + ADD_BATCH]
                job = version.add_data(batch, wait=False)
                status = job.wait_for_done(*ADD_WAIT)
                if status != TaskStatus.SUCCESS:  # returned, not raised
                    raise UserError(
                        f"Picsellia did not add the data to version {wanted.name}: its job "
                        f"{job.id} ended {status.value}: {_reason(platform, job)}"
                    )
                added += len(batch)
                progress.update(len(batch))

    platform.call(f"add data to {wanted.name}", attempt)
    return added


def _reason(platform: Platform, job: Any) -> str:
    """What the job's record says beyond its id and status: the SDK reads nothing else of it
    (`JobSchema`), so every text field the platform sent is the reason."""
    record = platform.call("read the add-data job", job.sync)
    said = [f"{k}: {v}" for k, v in record.items() if k not in ("id", "status") and _text(v)]
    return "; ".join(said) or "the platform gave no reason"


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _remove_twin_assets(platform: Platform, version: Any, name: str) -> str:
    """Assets of one data added twice (two runs at once, on a server that does not refuse it)
    are removed, the first by id kept, before the annotations are imported. Returns the
    summary's words, empty when there were none."""
    by_data: dict[Any, list[Any]] = defaultdict(list)
    for asset in platform.find("assets", version.list_assets) or []:
        by_data[asset.data_id].append(asset)
    twins = [a for group in by_data.values() for a in sorted(group, key=lambda a: str(a.id))[1:]]
    for twin in twins:
        platform.remove(f"remove a twin asset from {name}", twin.delete)
    return f", {len(twins)} twins removed" if twins else ""
