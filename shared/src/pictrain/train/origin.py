"""What a training is (its `model` and starting weights), recorded inside its checkpoints.

A checkpoint carries its architecture and its trained weights: resumed under another `model`
or other starting weights, ultralytics would go on training the old ones while `config.yaml`
names the new. The job's trainers write this record into every last.pt they save (a small file
added to the checkpoint's zip archive; torch reads only its own records), so it goes wherever
the checkpoint goes: the stored `last-checkpoint` a platform relaunch downloads, or the run
folder a local one reads. A checkpoint without it (written by an earlier pictrain, or saved
again by other code) is not resumed. The job hands the record to its trainers, in its own
process and in DDP workers alike, through `PICTRAIN_TRAINING_ORIGIN`.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from pictrain.envvars import TRAINING_ORIGIN

RECORD = "pictrain-origin.json"
MAX_RECORD_BYTES = 4096  # read from untrusted files: a record is ~100 bytes


class TrainingOrigin(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    weights_sha256: str | None  # None: trained from the architecture's config, no weights

    def difference(self, now: TrainingOrigin) -> str | None:
        """Why a checkpoint of this training does not continue `now`'s, or None."""
        if self.model != now.model:
            return f"it trains model {self.model}, not {now.model}"
        if self.weights_sha256 != now.weights_sha256:
            return (
                f"it started from {_start(self.weights_sha256)}, "
                f"this run from {_start(now.weights_sha256)}"
            )
        return None


def _start(sha: str | None) -> str:
    return f"weights sha256 {sha[:12]}..." if sha else "scratch"


def tag(checkpoint: Path, origin: TrainingOrigin) -> None:
    """Add the record to a checkpoint file just saved (a millisecond: nothing is rewritten)."""
    with zipfile.ZipFile(checkpoint, "a") as archive:
        folder = archive.namelist()[0].split("/")[0]  # torch keeps every record in one folder
        archive.writestr(f"{folder}/{RECORD}", origin.model_dump_json())


def read(checkpoint: Path) -> TrainingOrigin | None:
    """The record a checkpoint carries, or None (none, or not one we wrote)."""
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            entry = next(i for i in archive.infolist() if i.filename.endswith(f"/{RECORD}"))
            if entry.file_size > MAX_RECORD_BYTES:
                return None
            return TrainingOrigin.model_validate_json(archive.read(entry))
    except (OSError, zipfile.BadZipFile, StopIteration, ValidationError):
        return None


@contextlib.contextmanager
def handed_to_trainers(origin: TrainingOrigin) -> Iterator[None]:
    """While training: what `tag_saved` records, for this process and the ones it starts."""
    saved = TRAINING_ORIGIN.read()
    TRAINING_ORIGIN.set(origin.model_dump_json())
    try:
        yield
    finally:
        TRAINING_ORIGIN.set(saved)


def tag_saved(checkpoint: Path) -> None:
    """In a trainer, after it saved `checkpoint`: the record the job handed over, if any."""
    value = TRAINING_ORIGIN.read()
    if value:
        tag(checkpoint, TrainingOrigin.model_validate_json(value))
