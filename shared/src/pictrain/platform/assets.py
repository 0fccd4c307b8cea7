"""One attached dataset version on disk: its images, checked one by one, and its COCO export.

Everything is keyed by asset id, as Picsellia's own cv-engine does it: images are saved as
`<asset id>.<ext>` and the annotations exported with `export_key=ASSET_ID`, so two assets of one
version with the same file name never swap labels, and no file name can escape the folder.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from picsellia import exceptions as px
from picsellia.types.enums import AnnotationExportKey, AnnotationFileType

from pictrain.errors import PlatformError, UserError
from pictrain.platform.base import DatasetSplit
from pictrain.platform.downloads import RemoteFile, download_all, download_workers
from pictrain.platform.retry import RetryPolicy

log = logging.getLogger(__name__)

# Assets per COCO export call: Picsellia's cv-engine exports in batches of 1,000, the size
# known to work on large versions.
EXPORT_BATCH = 1000
UNKNOWN_ID = -1  # an id the export's own lists lack: the converter counts it as unknown
EXAMPLES = 3


@dataclass(frozen=True)
class FetchedSplit:
    split: DatasetSplit
    labels: dict[str, dict[str, Any]]  # asset id -> its version's labels by name


def fetch_split(
    call: Callable[..., Any],
    policy: RetryPolicy,
    split: str,
    version: Any,
    folder: Path,
    export_batch: int = EXPORT_BATCH,
) -> FetchedSplit:
    """`call` is the caller's retried call for SDK calls; `policy` retries each download."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    try:
        assets = list(call(f"list the {split} assets", version.list_assets))
    except px.NoDataError:
        raise UserError(f"the dataset version attached as {split} has no assets") from None
    download_images(policy, split, assets, images)
    labels = {label.name: label for label in call(f"list {split} labels", version.list_labels)}
    exports = export_annotations(call, split, version, assets, folder / "export", export_batch)
    coco = merge_exports(exports)
    never_annotated = key_by_asset(coco, assets)
    if never_annotated:
        log.info(
            "%s: %d of %d assets were never annotated: kept as images without objects "
            "(background for detection and segmentation; classification drops them unlabelled)",
            split,
            never_annotated,
            len(assets),
        )
    coco_file = folder / "annotations.json"
    coco_file.write_text(json.dumps(coco))
    return FetchedSplit(
        DatasetSplit(split, images, coco_file, version_id=str(version.id)),
        {str(a.id): labels for a in assets},
    )


def download_images(policy: RetryPolicy, split: str, assets: list[Any], folder: Path) -> None:
    """Every asset's file as `<asset id>.<ext>`; a file still missing fails the job."""
    files = [
        RemoteFile(folder / a.id_with_extension, lambda a=a: a.url, a.reset_url) for a in assets
    ]
    workers = min(download_workers(), len(files))
    log.info("downloading %d %s images (%d at a time)", len(files), split, workers)
    started = time.monotonic()
    report = download_all(files, policy, workers)
    log.info(
        "%s images: %d downloaded, %d already there, in %.1f s",
        split,
        report.fetched,
        report.present,
        time.monotonic() - started,
    )
    missing = [f.dest.name for f in files if not f.dest.is_file()]
    if missing:
        examples = "; ".join(
            f"{name} ({report.failed.get(name, 'not written')})" for name in missing[:EXAMPLES]
        )
        raise PlatformError(
            f"could not download {len(missing)} of {len(files)} {split} images, e.g. {examples}"
        )


def export_annotations(
    call: Callable[..., Any],
    split: str,
    version: Any,
    assets: list[Any],
    folder: Path,
    batch: int = EXPORT_BATCH,
) -> Iterable[dict[str, Any]]:
    """The version's COCO export keyed by asset id, `batch` assets per call, one document at a
    time (each file is removed once read)."""
    for start in range(0, len(assets), batch):
        chunk = assets[start : start + batch]
        path = Path(
            call(
                f"export the {split} annotations ({start + 1}-{start + len(chunk)} "
                f"of {len(assets)} assets)",
                version.export_annotation_file,
                AnnotationFileType.COCO,
                str(folder / str(start // batch)),
                assets=chunk,
                export_key=AnnotationExportKey.ASSET_ID,
            )
        )
        document = json.loads(path.read_text())
        path.unlink()
        yield document


def merge_exports(documents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One COCO document from batch exports: image and annotation ids renumbered, categories
    matched by name (each kept as its first batch wrote it: a KEYPOINT version's `keypoints`
    and `skeleton` too). A reference a batch does not resolve stays unresolved (UNKNOWN_ID),
    for the converter to count, rather than landing on another batch's image or category."""
    categories: dict[str, dict[str, Any]] = {}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for document in documents:
        names = {c.get("id"): c.get("name") for c in document.get("categories", [])}
        for category in document.get("categories", []):
            name = category.get("name")
            if name not in categories:
                categories[name] = {**category, "id": len(categories)}
        image_ids = {}
        for image in document.get("images", []):
            image_ids[image.get("id")] = len(images)
            images.append({**image, "id": len(images)})
        for annotation in document.get("annotations", []):
            category = categories.get(names.get(annotation.get("category_id")))
            annotations.append(
                {
                    **annotation,
                    "id": len(annotations),
                    "image_id": image_ids.get(annotation.get("image_id"), UNKNOWN_ID),
                    "category_id": category["id"] if category else UNKNOWN_ID,
                }
            )
    return {"categories": list(categories.values()), "images": images, "annotations": annotations}


def key_by_asset(coco: dict[str, Any], assets: list[Any]) -> int:
    """Point each image at its asset's file as saved; add the assets the export left out (never
    annotated) as images without annotations. Returns how many were added. Images of no listed
    asset are left as they are, for the converter to report missing."""
    saved = {str(a.id): a for a in assets}
    exported = set()
    for image in coco["images"]:
        asset = saved.get(asset_id_of(str(image.get("file_name", ""))))
        if asset is not None:
            image["file_name"] = asset.id_with_extension
            exported.add(str(asset.id))
    never_annotated = [a for key, a in saved.items() if key not in exported]
    for asset in never_annotated:
        coco["images"].append(
            {
                "id": len(coco["images"]),
                "file_name": asset.id_with_extension,
                "width": asset.width or 0,
                "height": asset.height or 0,
            }
        )
    return len(never_annotated)


def asset_id_of(file_name: str) -> str:
    """`<asset id>.<ext>`, as the SDK itself reads an ASSET_ID export."""
    return PurePosixPath(file_name).name.split(".", 1)[0]
