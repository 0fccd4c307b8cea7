"""A processing job on Picsellia (pre-annotation): what it was launched on, and the dataset
version it works on, one page of assets at a time.

Picsellia starts a processing's image with `job_id` and the credentials; the job's record says
what it runs on. Picsellia's cv-engine reads it from `job.sync()`: since 2026-03 under
`processing_job` (`target_id`, `parameters`, `inputs` with `model_version_id`,
`payload_presigned_url`), before under `dataset_version_processing_job`
(`input_dataset_version_id`, `model_version_id`, `parameters`, `payload_presigned_url`). Both are
read here. A `payload_presigned_url` is a JSON file `{"asset_ids": [...]}`: the processing was
launched on those assets only.

Every write looks before it acts (`session.Platform`), so a retry after a lost reply, or a rerun
of the whole job, writes nothing twice whether or not the server refuses twins.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from picsellia import exceptions as px
from picsellia.sdk.asset import MultiAsset
from picsellia.types.enums import AnnotationExportKey

from pictrain.errors import PlatformError, UserError
from pictrain.platform.connect import first_line
from pictrain.platform.downloads import RemoteFile, download_all
from pictrain.platform.enums import ImportAnnotationMode
from pictrain.platform.session import Platform

log = logging.getLogger(__name__)

CURRENT_CONTEXT = "processing_job"
LEGACY_CONTEXT = "dataset_version_processing_job"
MODEL_VERSION_INPUT = "model_version_id"  # the input a pre-annotation is launched with
IDS_PER_CALL = 1000  # the SDK's own chunk for listing assets by id
LOOKS_AT_ONCE = 8  # concurrent per-asset looks (latency-bound, a few connections)


class AssetsRefused(UserError):
    """The platform refused to write the annotations of these assets (400): their failure,
    counted, not the job's."""


@dataclass(frozen=True)
class ProcessingContext:
    dataset_version_id: str
    model_version_id: str | None
    parameters: dict[str, Any]
    payload_url: str | None  # launched on some assets: their ids, in a JSON file


def processing_context(job_id: str, record: Mapping[str, Any]) -> ProcessingContext:
    """What the job's record (`job.sync()`) says it runs on, in either layout."""
    current, legacy = record.get(CURRENT_CONTEXT), record.get(LEGACY_CONTEXT)
    if isinstance(current, Mapping) and current.get("target_id"):
        inputs = current.get("inputs") or {}
        return ProcessingContext(
            str(current["target_id"]),
            _text(inputs.get(MODEL_VERSION_INPUT)),
            dict(current.get("parameters") or {}),
            _text(current.get("payload_presigned_url")),
        )
    if isinstance(legacy, Mapping) and legacy.get("input_dataset_version_id"):
        return ProcessingContext(
            str(legacy["input_dataset_version_id"]),
            _text(legacy.get("model_version_id")),
            dict(legacy.get("parameters") or {}),
            _text(legacy.get("payload_presigned_url")),
        )
    raise UserError(
        f"job {job_id} is no processing on a dataset version: its record has no "
        f"{CURRENT_CONTEXT} (or {LEGACY_CONTEXT}) naming one"
    )


def _text(value: Any) -> str | None:
    return str(value) if value else None


def read_context(platform: Platform, job: Any) -> ProcessingContext:
    record = platform.call("read the job's processing context", job.sync)
    return processing_context(str(job.id), record)


def launched_on(platform: Platform, context: ProcessingContext) -> list[str] | None:
    """The asset ids the processing was launched on, or None for the whole version."""
    if context.payload_url is None:
        return None

    def fetch() -> Any:
        response = requests.get(context.payload_url, timeout=(10, 60))
        response.raise_for_status()
        return response.json()

    payload = platform.call("read the assets the processing was launched on", fetch)
    ids = payload.get("asset_ids") if isinstance(payload, dict) else None
    if not isinstance(ids, list):
        raise PlatformError('the processing\'s asset list is not {"asset_ids": [...]}')
    return [str(i) for i in ids]


@dataclass(frozen=True)
class AssetRef:
    """One asset of the version, as listed (no call per asset)."""

    id: str
    filename: str
    custom_metadata: dict[str, Any]
    sdk: Any  # picsellia's Asset

    @property
    def saved_as(self) -> str:
        """`<asset id>.<ext>`: a user's file name never chooses where a file lands."""
        return str(self.sdk.id_with_extension)


class VersionAssets:
    """The dataset version a processing works on, through the SDK, a page at a time."""

    def __init__(self, platform: Platform, version: Any, asset_ids: list[str] | None) -> None:
        self.platform = platform
        self.version = version
        self.asset_ids = asset_ids

    @property
    def kind(self) -> str:
        return str(self.version.type.value)

    @property
    def label(self) -> str:
        return f"{self.version.name}/{self.version.version}"

    def label_names(self) -> list[str]:
        labels = self.platform.call("list the version's labels", self.version.list_labels)
        return [label.name for label in labels]

    def skeletons(self) -> dict[str, Any]:
        """Label name -> its skeleton (`vertices`, `edges`), for the labels that have one."""
        by_id = self.platform.call("read the labels' skeletons", self.version.get_skeletons)
        labels = self.platform.call("list the version's labels", self.version.list_labels)
        return {label.name: by_id[str(label.id)] for label in labels if str(label.id) in by_id}

    def add_label(self, name: str) -> bool:
        """True when it was created now (looked for first: a retry never makes a twin)."""
        _, created = self.platform.get_or_create(
            f"label {name}",
            lambda: self.version.get_label(name),
            lambda: self.version.create_label(name),
        )
        return created

    def pages(self, size: int) -> Iterator[list[AssetRef]]:
        """`size` assets at a time: the ids the processing was given, else the whole version by
        offset (Picsellia's own pre-annotation pages so); never the whole list in memory."""
        if self.asset_ids is not None:
            for start in range(0, len(self.asset_ids), size):
                chunk = self.asset_ids[start : start + size]
                yield self._listed(f"list assets {start + 1}-{start + len(chunk)}", ids=chunk)
            return
        offset = 0
        while True:
            page = self._listed(f"list assets from {offset + 1}", limit=size, offset=offset)
            if page:
                yield page
            if len(page) < size:
                return
            offset += size

    def by_ids(self, ids: list[str]) -> list[AssetRef]:
        found: list[AssetRef] = []
        for start in range(0, len(ids), IDS_PER_CALL):
            found += self._listed("list assets by id", ids=ids[start : start + IDS_PER_CALL])
        return found

    def _listed(self, what: str, **filters: Any) -> list[AssetRef]:
        try:
            assets = self.platform.call(what, self.version.list_assets, **filters)
        except px.NoDataError:
            return []
        return [AssetRef(str(a.id), a.filename, dict(a.custom_metadata or {}), a) for a in assets]

    def annotated(self, assets: list[AssetRef]) -> set[str]:
        """The ids of those holding an annotation now (a human's or a processing's): one call
        per asset (`Asset.list_annotations`), a few at a time, each retried alone. (The SDK's
        batched `load_annotations` turns a chunk's 5xx into a BadRequestError, which no retry
        would recognise.)"""

        def has(asset: AssetRef) -> bool:
            found = self.platform.call(
                f"look at {asset.filename}'s annotations", asset.sdk.list_annotations
            )
            return bool(found)

        with ThreadPoolExecutor(LOOKS_AT_ONCE) as pool:
            flags = list(pool.map(has, assets))
        return {a.id for a, annotated in zip(assets, flags, strict=True) if annotated}

    def tagged(self, assets: list[AssetRef], tag: str) -> set[str]:
        """The ids of those carrying the asset tag `tag`."""
        return self.platform.call(f"list the assets tagged {tag}", self._tagged, assets, tag)

    def _tagged(self, assets: list[AssetRef], tag: str) -> set[str]:
        """(A tag the version does not have is not asked about: nothing carries it.)"""
        if not assets:
            return set()
        try:
            self.version.get_asset_tag(tag)
            listed = self.version.list_assets(ids=[a.id for a in assets], tags=[tag])
        except (px.ResourceNotFoundError, px.NoDataError):
            return set()
        return {str(a.id) for a in listed}

    def tag(self, assets: list[AssetRef], tag: str) -> int:
        """Attach `tag` where it is missing; returns how many got it now. Looked at first on
        every attempt, so a lost reply's retry attaches nothing twice."""
        if not assets:
            return 0
        found, _ = self.platform.get_or_create(
            f"asset tag {tag}",
            lambda: self.version.get_asset_tag(tag),
            lambda: self.version.create_asset_tag(tag),
        )
        attached = 0

        def attempt() -> None:
            nonlocal attached
            there = self._tagged(assets, tag)
            missing = [a.sdk for a in assets if a.id not in there]
            attached = len(missing)
            if missing:
                MultiAsset(self.version.connection, self.version.id, missing).add_tags(found)

        self.platform.call(f"tag {len(assets)} assets {tag}", attempt)
        return attached

    def untag(self, assets: list[AssetRef], tag: str) -> None:
        """Detach `tag` from those still carrying it, looked at on every attempt."""
        found = self._tag(tag)
        if found is None or not assets:
            return

        def attempt() -> None:
            there = self._tagged(assets, tag)
            still = [a.sdk for a in assets if a.id in there]
            if still:
                MultiAsset(self.version.connection, self.version.id, still).remove_tags(found)

        self.platform.call(f"untag {len(assets)} assets {tag}", attempt)

    def with_tag(self, tag: str) -> list[AssetRef]:
        """Every asset of the version carrying `tag` (few: the ones a run tagged)."""
        if self._tag(tag) is None:
            return []
        return self._listed(f"list the assets tagged {tag}", tags=[tag])

    def _tag(self, tag: str) -> Any | None:
        return self.platform.find(f"asset tag {tag}", self.version.get_asset_tag, tag)

    def download(self, assets: list[AssetRef], folder: Path) -> dict[str, str]:
        """Each file as `<asset id>.<ext>` in `folder`; returns why each missing one is missing
        (by asset id): one file that will not come is that asset's failure, not the job's."""
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            a.id: RemoteFile(folder / a.saved_as, lambda a=a: a.sdk.url, a.sdk.reset_url)
            for a in assets
        }
        report = download_all(list(files.values()), self.platform.policy)
        return {
            asset_id: report.failed.get(remote.dest.name, "not written")
            for asset_id, remote in files.items()
            if not remote.dest.is_file()
        }

    def write(self, coco: dict[str, Any], assets: list[AssetRef], replace: bool) -> int:
        """Import `coco` (the images of `assets`, keyed `<asset id>.<ext>`; categories by label
        name) into the version. Without `replace`, an asset that holds an annotation when an
        attempt starts is left out of it: a retry after a lost reply, or a concurrent run, adds
        nothing twice, whatever the server's KEEP does. With it (the asset's annotation
        replaced), a repeat leaves the same shapes. Returns how many assets were written."""
        if not coco["images"]:
            return 0
        mode = ImportAnnotationMode.REPLACE if replace else ImportAnnotationMode.KEEP
        written = 0

        def attempt() -> None:
            nonlocal written
            document = coco if replace else _without(coco, self.annotated(assets))
            written = len(document["images"])
            if written:
                try:
                    self._import(document, mode)
                except px.BadRequestError as exc:
                    raise AssetsRefused(first_line(exc)) from None

        self.platform.call(f"write annotations on {len(coco['images'])} assets", attempt)
        return written

    def _import(self, document: dict[str, Any], mode: ImportAnnotationMode) -> None:
        handle, name = tempfile.mkstemp(prefix="pictrain-annotations-", suffix=".json")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(document, out)
            self.version.import_annotations_coco_file(
                name,
                mode=mode,
                force_create_label=False,  # labels are created before, only when told
                fail_on_asset_not_found=True,
                export_key=AnnotationExportKey.ASSET_ID,
            )
        finally:
            Path(name).unlink(missing_ok=True)

    def record(self, asset: AssetRef, values: dict[str, Any]) -> bool:
        """`values` merged into the asset's data custom metadata (the user's own keys kept);
        False when they are there already (a rerun sends nothing)."""
        if all(asset.custom_metadata.get(k) == v for k, v in values.items()):
            return False
        merged = {**asset.custom_metadata, **values}

        def update() -> None:
            data = asset.sdk.get_data()
            data.update_custom_metadata({**(data.custom_metadata or {}), **values})

        self.platform.call(f"record the score of {asset.filename}", update)
        asset.custom_metadata.clear()
        asset.custom_metadata.update(merged)
        return True

    def forget(self, asset: AssetRef, prefix: str) -> None:
        """The keys starting with `prefix` out of the asset's data custom metadata (the others
        kept); nothing sent when it has none."""
        if not any(key.startswith(prefix) for key in asset.custom_metadata):
            return

        def update() -> None:
            data = asset.sdk.get_data()
            kept = {
                k: v for k, v in (data.custom_metadata or {}).items() if not k.startswith(prefix)
            }
            data.update_custom_metadata(kept)

        self.platform.call(f"drop the score of {asset.filename}", update)
        for key in [k for k in asset.custom_metadata if k.startswith(prefix)]:
            del asset.custom_metadata[key]


def _without(coco: dict[str, Any], asset_ids: set[str]) -> dict[str, Any]:
    """The document without the images (and their annotations) of `asset_ids`."""
    kept = [i for i in coco["images"] if i["file_name"].split(".", 1)[0] not in asset_ids]
    image_ids = {i["id"] for i in kept}
    return {
        **coco,
        "images": kept,
        "annotations": [a for a in coco["annotations"] if a["image_id"] in image_ids],
    }


def model_file_name(platform: Platform, model_version: Any, name: str) -> str | None:
    """The file name of the model version's file `name`, None when it has none."""
    found = platform.find(f"file {name} of the model version", model_version.get_file, name)
    return None if found is None else str(found.filename)


def download_model_file(platform: Platform, model_version: Any, name: str, folder: Path) -> Path:
    """The model version's file `name`, downloaded; its file name comes from the platform, so
    it must be a plain name (no folder that would land elsewhere)."""
    found = platform.call(f"find file {name} of the model version", model_version.get_file, name)
    if Path(found.filename).name != found.filename or found.filename in ("", ".", ".."):
        raise PlatformError(f"{name} has an unsafe file name {found.filename!r}")
    folder.mkdir(parents=True, exist_ok=True)
    platform.call(f"download {name}", found.download, folder, True)
    return folder / found.filename
