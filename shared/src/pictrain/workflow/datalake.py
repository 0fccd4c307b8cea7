"""`pictrain data upload`: each split folder to the datalake with the split's tags, in parallel,
resumable, unreadable files reported and skipped, each file there once (`platform/datalake.py`:
a rerun sends only what is missing, twins are healed whoever made them).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from pictrain.errors import UserError
from pictrain.platform.connect import first_line
from pictrain.platform.datalake import SplitFiles
from pictrain.platform.session import Platform
from pictrain.workflow.progress import Progress
from pictrain.workflow.project import SplitSection

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
WORKERS = 8


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
    twins_removed: int = 0
    twins_left: list[str] = field(default_factory=list)  # one line each, with its fix

    def summary(self) -> str:
        parts = [f"{self.uploaded} uploaded", f"{self.present} already there"]
        if self.twins_removed:
            parts.append(f"{self.twins_removed} twins removed")
        for count, what in ((self.unreadable, "unreadable, skipped"), (self.failed, "failed")):
            if count:
                examples = "; ".join(f"{n}: {why}" for n, why in count[:3])
                parts.append(f"{len(count)} {what} ({examples})")
        return f"{self.name} [{', '.join(self.tags)}]: {', '.join(parts)}"


def plan_upload(folders: dict[str, tuple[Path, SplitSection]]) -> list[SplitUpload]:
    """Every folder is checked before anything is sent: a missing one is the user's error, and
    so are splits whose tags cannot tell their files apart."""
    for name, (_, split) in folders.items():
        for other, (_, wider) in folders.items():
            if other != name and set(split.tags) <= set(wider.tags):
                raise UserError(
                    f"split {name}: its tags {split.tags} are all tags of split {other}: a file "
                    f"of {other} would count as one of {name}; give each split a tag of its own"
                )
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
        return first_line(exc)
    return None


def upload(platform: Platform, plans: list[SplitUpload]) -> None:
    datalake = platform.call("find the datalake", platform.client.get_datalake)
    for plan in plans:
        tags = [
            platform.call(f"get or create tag {t}", datalake.get_or_create_data_tag, t)
            for t in plan.tags
        ]
        files = SplitFiles(platform, datalake, tags)
        present = files.by_name(p.name for p in plan.files)
        todo = [p for p in plan.files if p.name not in present]
        plan.present = len(plan.files) - len(todo)
        with (
            Progress(len(todo), f"upload {plan.name}") as progress,
            ThreadPoolExecutor(WORKERS) as pool,
        ):
            futures = {pool.submit(files.upload, path): path for path in todo}
            try:
                for future in as_completed(futures):
                    progress.update()
                    try:
                        future.result()
                    except Exception as exc:  # reported in the summary; the other files go on
                        plan.failed.append((futures[future].name, first_line(exc)))
                    else:
                        plan.uploaded += 1
            except BaseException:  # Ctrl-C: the files not started are left for the rerun
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        healing = files.heal(plan.files)
        plan.twins_removed, plan.twins_left = healing.removed, healing.left
        files.wait_for_processing(d for twins in healing.data.values() for d in twins)
