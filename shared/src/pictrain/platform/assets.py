"""One attached dataset version on disk: its images, checked one by one, and its COCO export."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picsellia import exceptions as px
from picsellia.types.enums import AnnotationFileType

from pictrain.errors import UserError
from pictrain.platform.base import DatasetSplit

log = logging.getLogger(__name__)

DOWNLOAD_WORKERS = 8


@dataclass(frozen=True)
class FetchedSplit:
    split: DatasetSplit
    assets: dict[str, tuple[str, dict[str, Any]]]  # file stem -> asset id, version labels


def fetch_split(call: Callable[..., Any], split: str, version: Any, folder: Path) -> FetchedSplit:
    """Assets saved as <asset id>.<ext>: a user's file name can never escape the folder, and
    the export's file names are rewritten to match. `call` is the caller's retried call."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    try:
        listed = call(f"list the {split} assets", version.list_assets)
    except px.NoDataError:
        raise UserError(f"the dataset version attached as {split} has no assets") from None
    assets = list(listed)
    log.info("downloading %d %s images", len(assets), split)
    # MultiAsset.download swallows per-file failures: check every file afterwards.
    call(
        f"download the {split} images",
        listed.download,
        images,
        max_workers=DOWNLOAD_WORKERS,
        use_id=True,
    )
    for asset in assets:
        if not (images / asset.id_with_extension).is_file():
            call(f"download {asset.filename}", asset.download, images, True, use_id=True)
    labels = {label.name: label for label in call(f"list {split} labels", version.list_labels)}
    exported = Path(
        call(
            f"export the {split} annotations",
            version.export_annotation_file,
            AnnotationFileType.COCO,
            str(folder / "export"),
        )
    )
    by_filename = {asset.filename: asset.id_with_extension for asset in assets}
    coco_file = folder / "annotations.json"
    coco_file.write_text(json.dumps(_rename_images(json.loads(exported.read_text()), by_filename)))
    return FetchedSplit(
        DatasetSplit(split, images, coco_file, version_id=str(version.id)),
        {Path(a.id_with_extension).stem: (str(a.id), labels) for a in assets},
    )


def _rename_images(coco: dict[str, Any], by_filename: dict[str, str]) -> dict[str, Any]:
    """Point the export's file names at the files as saved; images without an asset are left
    as they are, so the converter reports them missing instead of this silently dropping them."""
    for image in coco.get("images", []):
        image["file_name"] = by_filename.get(image["file_name"], image["file_name"])
    return coco
