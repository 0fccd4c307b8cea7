"""One split's files in the datalake, each once, whatever the server does with a twin.

A file is there when the datalake holds a data of its name carrying every tag of its split.
An upload looks before each retry. Twins (two data of one name and tags) still come from two
uploads at once, a Ctrl-C and a rerun, or an older pictrain whose lost replies the SDK re-sent;
no 409 prevents them, so they are looked for after every upload and healed.

Only data holding the file's very bytes are twins: a data of the same name and tags holding
another image is someone else's and is left alone. Healing deletes data, and deleting a data
also deletes its assets in every dataset version
(`Data.delete`'s docstring); twins made by a re-sent reply share one stored file, which the
platform may delete with either. So of each group one data is kept: one that a dataset version
uses, else one whose stored file no twin shares, else a fresh upload; a twin is deleted only
when no version uses it and its stored file is not the kept one's. What stays is named, with
the steps that let a rerun finish.

The SDK's `upload_data` draws a progress bar per call and retries nothing file by file, so one
file goes through the uploader it uses (`DataUploader`, internal; its errors come back through
an `ErrorManager`, as `upload_data`'s docstring shows): docs/architecture.md lists these.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picsellia.services.data_uploader import DataUploader
from picsellia.services.error_manager import ErrorManager
from picsellia.types.enums import DataUploadStatus

from pictrain.checksums import sha256
from pictrain.errors import PlatformError
from pictrain.platform.connect import first_line
from pictrain.platform.session import Platform

log = logging.getLogger(__name__)
FILENAMES_PER_QUERY = 500  # file names per lookup, well under the SDK's 1,000 per chunk
PROCESSING_WAIT = (5.0, 30)  # seconds between polls, polls: as `upload_data` waits


@dataclass
class Healing:
    """What healing found: twins deleted, groups left with their fix, and the data of every
    file afterwards (by file name)."""

    removed: int = 0
    left: list[str] = field(default_factory=list)
    data: dict[str, list[Any]] = field(default_factory=dict)


class SplitFiles:
    """The files of one split, uploaded with its tags (SDK `Tag`s)."""

    def __init__(self, platform: Platform, datalake: Any, tags: list[Any]) -> None:
        self.platform, self.datalake, self.tags = platform, datalake, tags
        self.tag_names = [tag.name for tag in tags]

    def by_name(self, names: Iterable[str]) -> dict[str, list[Any]]:
        """The data of these file names carrying every tag, by file name."""
        names = list(names)
        found: dict[str, list[Any]] = defaultdict(list)
        for start in range(0, len(names), FILENAMES_PER_QUERY):
            chunk = names[start : start + FILENAMES_PER_QUERY]
            data = self.platform.find(
                f"data of {chunk[0]}...",
                lambda chunk=chunk: self.datalake.list_data(
                    filenames=chunk, tags=self.tag_names, intersect_tags=True
                ),
            )
            for item in data or []:
                found[item.filename].append(item)
        return dict(found)

    def upload(self, path: Path, besides: frozenset[str] = frozenset()) -> None:
        """Upload once, retried: a retry first looks whether a lost attempt landed, i.e. for a
        data of that name other than the ids in `besides`."""
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and self._landed(path.name, besides):
                return
            errors = ErrorManager()
            uploader = DataUploader(
                self.datalake.connection,
                self.datalake.id,
                self.datalake.connector_id,
                computed_tag_ids=[tag.id for tag in self.tags],
                source=None,
                fill_metadata=False,
                upload_dir=None,
                error_manager=errors,
            )
            if uploader.upload((path, None, None, None)) is None:
                raise errors.errors[0].parent or errors.errors[0]

        self.platform.call(f"upload {path.name}", attempt)

    def heal(self, paths: list[Path]) -> Healing:
        """Find the twins among these files' data and keep one of each (see the module)."""
        healing = Healing(data=self.by_name(p.name for p in paths))
        by_name = {p.name: p for p in paths}
        groups = {
            name: copies
            for name, found in healing.data.items()
            if len(found) > 1 and len(copies := self._copies(by_name[name], found)) > 1
        }
        if not groups:
            return healing
        used = self._versions_using([d.id for twins in groups.values() for d in twins])
        for name, twins in sorted(groups.items()):
            keeper = keeper_of(twins, used)
            if keeper is None:  # a re-sent reply's twins, unused: a fresh copy is kept
                path = by_name[name]
                self.upload(path, besides=frozenset(str(d.id) for d in twins))
                twins = self._copies(path, self.by_name([name]).get(name, []))
                keeper = keeper_of(twins, used)
            if keeper is None:
                raise PlatformError(f"could not upload a fresh copy of {name}")
            removable = [
                d
                for d in twins
                if d is not keeper and d.id not in used and d.object_name != keeper.object_name
            ]
            for twin in removable:
                self.platform.remove(f"delete a twin of {name} ({twin.id})", twin.delete)
            healing.removed += len(removable)
            gone = {d.id for d in removable}
            healing.data[name] = [d for d in self.by_name([name]).get(name, []) if d.id not in gone]
            kept = [d for d in twins if d.id not in gone]
            if len(kept) > 1:
                healing.left.append(self._fix(name, keeper, kept, used))
        return healing

    def _copies(self, path: Path, found: list[Any]) -> list[Any]:
        """The data among `found` that hold this very file: a data of the same name and tags
        holding another image is someone else's, and is left alone."""
        digest = sha256(path)
        with tempfile.TemporaryDirectory(prefix="pictrain-twins-") as folder:
            return [d for d in found if self._digest(d, Path(folder)) == digest]

    def _digest(self, data: Any, folder: Path) -> str | None:
        try:
            self.platform.call(
                f"download {data.filename} ({data.id})", data.download, folder, True, True
            )
            return sha256(folder / data.id_with_extension)
        except Exception as exc:  # a copy that cannot be read is no proven twin: left alone
            log.warning("could not read data %s (%s): %s", data.id, data.filename, first_line(exc))
            return None

    def wait_for_processing(self, data: Iterable[Any]) -> None:
        """As `upload_data` does: files the platform still processes are waited for."""
        pending = [d for d in data if not d.is_ready()]
        if pending:
            log.info("waiting for the platform to process %d files", len(pending))
        for item in pending:
            try:
                self.platform.call(
                    f"wait for {item.filename}", item.wait_for_upload_done, *PROCESSING_WAIT
                )
            except PlatformError as exc:
                log.warning("%s is still being processed by the platform: %s", item.filename, exc)
        failed = [d.filename for d in pending if d.upload_status == DataUploadStatus.ERROR]
        if failed:
            log.warning("the platform could not process %s", ", ".join(failed[:5]))

    def _landed(self, name: str, besides: frozenset[str]) -> bool:
        return any(str(d.id) not in besides for d in self.by_name([name]).get(name, []))

    def _versions_using(self, data_ids: list[Any]) -> dict[Any, list[str]]:
        """Data id -> the dataset versions (`dataset/version`) holding it as an asset."""
        client = self.platform.client
        used: dict[Any, list[str]] = defaultdict(list)
        for dataset in self.platform.call("list the datasets", client.list_datasets):
            versions = self.platform.call(f"list versions of {dataset.name}", dataset.list_versions)
            for version in versions:
                where = f"{dataset.name}/{version.version}"
                assets = self.platform.find(
                    f"assets of {where}",
                    lambda version=version: version.list_assets(data_ids=data_ids),
                )
                for asset in assets or []:
                    used[asset.data_id].append(where)
        return dict(used)

    def _fix(self, name: str, keeper: Any, kept: list[Any], used: dict[Any, list[str]]) -> str:
        """What stays, and the steps after which a rerun heals it."""
        tags = ", ".join(self.tag_names)
        listed = "; ".join(
            f"{d.id} in {', '.join(used[d.id])}" if d.id in used else f"{d.id} (unused)"
            for d in kept
        )
        others = [d for d in kept if d is not keeper and d.id in used]
        if others:
            steps = (
                f"remove the assets of data {', '.join(str(d.id) for d in others)} from those "
                "dataset versions in Picsellia, then run `pictrain data upload` again"
            )
        else:  # unused twins share the kept data's stored file: a fresh copy replaces them
            steps = (
                f"remove the asset of data {keeper.id} from {', '.join(used[keeper.id])} in "
                "Picsellia, run `pictrain data upload` again (a fresh copy replaces the twins), "
                "then `pictrain data dataset`"
            )
        return f"{name} [{tags}]: {len(kept)} data ({listed}): {steps}"


def keeper_of(twins: list[Any], used: dict[Any, list[str]]) -> Any | None:
    """The data to keep: one a dataset version uses, else one whose stored file no twin shares
    (ties by id, so concurrent runs keep the same one); None when every stored file is shared."""
    in_use = [d for d in twins if d.id in used]
    if in_use:
        return min(in_use, key=lambda d: str(d.id))
    shared = Counter(d.object_name for d in twins)
    alone = [d for d in twins if shared[d.object_name] == 1]
    return min(alone, key=lambda d: str(d.id)) if alone else None
