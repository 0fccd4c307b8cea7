"""`pictrain data upload`: each split folder to the datalake with the split's tags, in parallel,
resumable, unreadable files reported and skipped.

A file counts as uploaded when the datalake holds a data of that file name carrying every tag
of its split: a rerun sends only the others, and a retried upload first checks that its lost
attempt did not land. The SDK's `upload_data` cannot do either (it draws its own bars, logs a
traceback per failed file and cannot be retried file by file without twins), so each file goes
through the same uploader it uses, one by one.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picsellia.sdk.data import Data, MultiData
from picsellia.services.data_uploader import DataUploader
from picsellia.services.error_manager import ErrorManager
from picsellia.types.enums import DataUploadStatus

from pictrain.errors import PlatformError, UserError
from pictrain.workflow.progress import Progress
from pictrain.workflow.project import SplitSection
from pictrain.workflow.session import Platform

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
WORKERS = 8
FILENAMES_PER_QUERY = 500  # file names per lookup, well under the SDK's 1,000 per chunk


@dataclass
class SplitUpload:
    """One split folder: what is to send, and how it went."""

    name: str
    tags: list[str]
    files: list[Path]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # file name, why
    present: int = 0
    uploaded: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.uploaded} uploaded", f"{self.present} already there"]
        for count, what in ((self.unreadable, "unreadable, skipped"), (self.failed, "failed")):
            if count:
                examples = "; ".join(f"{n}: {why}" for n, why in count[:3])
                parts.append(f"{len(count)} {what} ({examples})")
        return f"{self.name} [{', '.join(self.tags)}]: {', '.join(parts)}"


def plan_upload(folders: dict[str, tuple[Path, SplitSection]]) -> list[SplitUpload]:
    """Every folder is checked before anything is sent: a missing one is the user's error."""
    plans = []
    for name, (folder, split) in folders.items():
        if not folder.is_dir():
            raise UserError(f"split {name}: image folder {folder} does not exist")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"split {name}: no image in {folder} ({', '.join(IMAGE_SUFFIXES)})")
        plan = SplitUpload(name, split.tags, [])
        for path in files:
            problem = _unreadable(path)
            if problem:
                plan.unreadable.append((path.name, problem))
            else:
                plan.files.append(path)
        plans.append(plan)
    return plans


def _unreadable(path: Path) -> str | None:
    """Why the file is no image, or None. Whatever stops Pillow counts (decoders raise many
    kinds, and libraries patch `Image.open`: ultralytics, once imported, tries HEIF)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def upload(platform: Platform, plans: list[SplitUpload]) -> None:
    datalake = platform.call("find the datalake", platform.client.get_datalake)
    for plan in plans:
        tags = [
            platform.call(f"get or create tag {t}", datalake.get_or_create_data_tag, t)
            for t in plan.tags
        ]
        present = _present(platform, datalake, plan.tags, [p.name for p in plan.files])
        todo = [p for p in plan.files if p.name not in present]
        plan.present = len(plan.files) - len(todo)
        sender = _Sender(platform, datalake, [t.id for t in tags], plan.tags)
        with (
            Progress(len(todo), f"upload {plan.name}") as progress,
            ThreadPoolExecutor(WORKERS) as pool,
        ):
            futures = {pool.submit(sender.send, path): path for path in todo}
            for future in as_completed(futures):
                progress.update()
                problem = future.result()
                if problem:
                    plan.failed.append((futures[future].name, problem))
                else:
                    plan.uploaded += 1
        sender.wait_for_processing()


def _present(platform: Platform, datalake: Any, tags: list[str], names: list[str]) -> set[str]:
    """File names already in the datalake with every tag given."""
    found: set[str] = set()
    for start in range(0, len(names), FILENAMES_PER_QUERY):
        chunk = names[start : start + FILENAMES_PER_QUERY]
        data = platform.find(
            f"data of {chunk[0]}...",
            lambda chunk=chunk: datalake.list_data(filenames=chunk, tags=tags, intersect_tags=True),
        )
        found.update(d.filename for d in data or [])
    return found


class _Sender:
    """Uploads one file, retried; a retry first looks for the file its lost attempt sent."""

    def __init__(self, platform: Platform, datalake: Any, tag_ids: list[Any], tags: list[str]):
        self.platform, self.datalake, self.tag_ids, self.tags = platform, datalake, tag_ids, tags
        self.pending: list[Data] = []

    def send(self, path: Path) -> str | None:
        """None once the file is in the datalake, else why it could not be sent."""
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and _present(self.platform, self.datalake, self.tags, [path.name]):
                return
            errors = ErrorManager()
            uploader = DataUploader(
                self.datalake.connection,
                self.datalake.id,
                self.datalake.connector_id,
                computed_tag_ids=self.tag_ids,
                source=None,
                fill_metadata=False,
                upload_dir=None,
                error_manager=errors,
            )
            response = uploader.upload((path, None, None, None))
            if response is None:
                raise errors.errors[0].parent or errors.errors[0]
            data = Data(self.datalake.connection, self.datalake.id, response.json())
            if not data.is_ready():
                self.pending.append(data)

        try:
            self.platform.call(f"upload {path.name}", attempt)
        except Exception as exc:  # reported in the summary; the other files go on
            return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None

    def wait_for_processing(self) -> None:
        """As `upload_data` does: files the platform still processes are waited for."""
        if not self.pending:
            return
        log.info("waiting for the platform to process %d files", len(self.pending))
        multi = MultiData(self.datalake.connection, self.datalake.id, self.pending)
        try:
            self.platform.call("wait for processing", multi.wait_for_upload_done, 5.0, 30)
        except PlatformError as exc:
            log.warning("some files are still being processed by the platform: %s", exc)
        failed = [d.filename for d in self.pending if d.upload_status == DataUploadStatus.ERROR]
        if failed:
            log.warning("the platform could not process %s", ", ".join(failed[:5]))
