"""The Picsellia backend: the experiment, read and written through the official SDK."""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from pathlib import Path
from typing import Any

from picsellia import exceptions as px
from picsellia.types.enums import InferenceType, LogType
from picsellia.types.enums import JobStatus as ExperimentStatus

from pictrain.data.splits import canonical_split
from pictrain.errors import PlatformError, UserError
from pictrain.platform.assets import fetch_split
from pictrain.platform.base import (
    BEST_MODEL_ARTIFACT,
    CHECKPOINT_ARTIFACT,
    DatasetSplit,
    Evaluation,
    JobStatus,
)
from pictrain.platform.connect import call_platform, connect, find_experiment
from pictrain.platform.curves import CurveWriter
from pictrain.platform.env import PicselliaContext
from pictrain.platform.evaluations import EVALUATIONS_PER_CALL, evaluation_format, shapes_of
from pictrain.platform.retry import RetryPolicy
from pictrain.platform.sender import BackgroundSender

log = logging.getLogger(__name__)
WEIGHT_SUFFIXES = (".pt", ".pth")
PRETRAINED_ARTIFACT = "pretrained-weights"
# Publishing an experiment as a model version keeps only the artifacts named model-latest,
# config and checkpoint-*-latest; continuous training then starts from that version's files.
# The best weights go under such a name too, or it would start from scratch.
PUBLISHED_WEIGHTS_ARTIFACT = "checkpoint-weights-latest"
DATASET_TYPE = {
    "detect": InferenceType.OBJECT_DETECTION,
    "segment": InferenceType.SEGMENTATION,
    "classify": InferenceType.CLASSIFICATION,
}
STATUS = {
    JobStatus.RUNNING: ExperimentStatus.RUNNING,
    JobStatus.DONE: ExperimentStatus.SUCCESS,
    JobStatus.FAILED: ExperimentStatus.FAILED,
}


class PicselliaBackend:
    def __init__(
        self, context: PicselliaContext, task: str, policy: RetryPolicy | None = None
    ) -> None:
        self._policy = policy or RetryPolicy()
        self._task = task
        self.experiment = find_experiment(connect(context, self._policy), context, self._call)
        self._sender = BackgroundSender(self._policy.patient())
        self._curves = CurveWriter(self.experiment)
        self._assets: dict[str, tuple[str, dict[str, Any]]] = {}  # file stem -> asset id, labels
        self._checkpoint: Path | None = None  # the newest checkpoint handed over

    # --- reading -------------------------------------------------------------------------

    def parameters(self) -> dict[str, Any]:
        try:
            data = self._call("read the parameters log", self.experiment.get_log, "parameters").data
        except px.ResourceNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise UserError(
                "the experiment's `parameters` log must be a mapping of names to values"
            )
        return data

    def datasets(self, dest: Path) -> dict[str, DatasetSplit]:
        attached = self._call(
            "list the attached dataset versions", self.experiment.get_attached_dataset_versions
        )
        chosen: dict[str, tuple[str, Any]] = {}
        for alias, version in sorted(attached.items()):
            name = canonical_split(alias)
            if name is None:
                log.warning(
                    "ignoring the dataset version attached as %r (not train/val/test)", alias
                )
                continue
            if name in chosen:
                raise UserError(f"two dataset versions are attached as the {name} split")
            chosen[name] = (alias, version)
        # Every check before the first download: a wrong version fails in seconds, not after
        # the other splits were fetched.
        for alias, version in chosen.values():
            self._check_type(alias, version)
        splits = {}
        for name, (_, version) in chosen.items():
            fetched = fetch_split(self._call, name, version, dest / name)
            self._assets.update(fetched.assets)
            splits[name] = fetched.split
        return splits

    def base_weights(self, dest: Path) -> Path | None:
        """The experiment's `pretrained-weights`, else the base model version's weights file."""
        try:
            artifact = self._call(
                "find pretrained-weights", self.experiment.get_artifact, PRETRAINED_ARTIFACT
            )
        except px.ResourceNotFoundError:
            pass
        else:
            path = self._download(artifact, dest / "experiment", PRETRAINED_ARTIFACT)
            log.info(
                "starting weights: the experiment's %s file (%s)", PRETRAINED_ARTIFACT, path.name
            )
            return path
        try:
            version = self._call(
                "find the base model version", self.experiment.get_base_model_version
            )
        except (px.ResourceNotFoundError, px.NoBaseModelVersionError):
            return None
        files = self._call("list the base model files", version.list_files)
        model_file = starting_weights_file(files)
        if model_file is None:
            log.info(
                "the base model version %s has no .pt file: training from scratch", version.name
            )
            return None
        path = self._download(model_file, dest / "base-model", model_file.name)
        log.info(
            "starting weights: file %s (%s) of base model version %s",
            model_file.name,
            path.name,
            version.name,
        )
        return path

    def stored_artifact(self, name: str, dest: Path) -> Path | None:
        """The experiment's artifact of that name, downloaded, or None."""
        try:
            artifact = self._call(f"find {name}", self.experiment.get_artifact, name)
        except px.ResourceNotFoundError:
            return None
        return self._download(artifact, dest, name)

    # --- writing (in the background, in order) ---------------------------------------------

    def log_series(self, name: str, step: int, value: float) -> None:
        self._sender.submit(f"log {name}", partial(self._curves.append, name, step, value))

    def log_value(self, name: str, value: float) -> None:
        self._log(name, value, LogType.VALUE)

    def log_table(self, name: str, table: dict[str, Any]) -> None:
        self._log(name, table, LogType.TABLE)

    def log_image(self, name: str, path: Path) -> None:
        self._log(name, str(path), LogType.IMAGE)

    def log_labelmap(self, labelmap: dict[str, str]) -> None:
        self._log("labelmap", labelmap, LogType.LABELMAP)

    def store_artifact(self, name: str, path: Path) -> None:
        self._sender.submit(
            f"store artifact {name}", partial(self.experiment.store, name, str(path))
        )
        if name == BEST_MODEL_ARTIFACT:
            self.store_artifact(PUBLISHED_WEIGHTS_ARTIFACT, path)

    def store_checkpoint(self, path: Path) -> None:
        self._checkpoint = path
        self._sender.submit(f"store {CHECKPOINT_ARTIFACT}", partial(self._store_checkpoint, path))

    def discard_checkpoint(self) -> None:
        self._checkpoint = None
        self._sender.submit(f"delete {CHECKPOINT_ARTIFACT}", self._delete_checkpoint)

    def add_evaluations(self, evaluations: list[Evaluation]) -> None:
        payload = {}
        skipped = shapes = 0
        for evaluation in evaluations:
            asset_id, labels = self._asset_of(evaluation.file_name)
            known = [s for s in shapes_of(evaluation) if s.label in labels]
            skipped += len(shapes_of(evaluation)) - len(known)
            shapes += len(known)
            payload[asset_id] = evaluation_format(self._task, known, labels)
        if skipped:
            log.warning("%d predictions have a label the test dataset lacks: not sent", skipped)
        items = list(payload.items())
        for start in range(0, len(items), EVALUATIONS_PER_CALL):
            batch = dict(items[start : start + EVALUATIONS_PER_CALL])
            self._sender.submit(
                f"send evaluations {start + 1}-{start + len(batch)}",
                partial(self.experiment.add_evaluations, batch),
            )
        if shapes:  # the platform's computation fails on evaluations without any shape
            self._sender.submit(
                "start the evaluation metrics computation",
                partial(self.experiment.compute_evaluations_metrics, DATASET_TYPE[self._task]),
            )

    def set_status(self, status: JobStatus, reason: str | None = None) -> None:
        if reason:
            self._log("failure reason", reason, LogType.VALUE)
        self._sender.submit(
            f"set the experiment status to {status.value}",
            partial(self.experiment.update_job_status, STATUS[status]),
        )

    def flush(self) -> None:
        """Wait for every queued call; a call that never went through fails the job."""
        self._sender.drain()
        if self._sender.failures:
            failed = ", ".join(self._sender.failures)
            self._sender.failures.clear()
            raise PlatformError(f"platform calls failed after retries: {failed}")

    def close(self) -> None:
        self._sender.close(timeout=300)
        if self._sender.failures:
            log.error("unsent to the platform: %s", ", ".join(self._sender.failures))

    # --- internals ---------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A synchronous, idempotent call: retried, and a lasting outage is a PlatformError."""
        return call_platform(self._policy, what, fn, *args, **kwargs)

    def _log(self, name: str, data: Any, kind: LogType) -> None:
        self._sender.submit(f"log {name}", partial(self.experiment.log, name, data, kind))

    def _store_checkpoint(self, path: Path) -> None:
        """Upload unless a newer checkpoint was handed over since; the file is ours to remove."""
        if path == self._checkpoint:
            self.experiment.store(CHECKPOINT_ARTIFACT, str(path))
        path.unlink(missing_ok=True)

    def _delete_checkpoint(self) -> None:
        with contextlib.suppress(px.ResourceNotFoundError):
            self.experiment.get_artifact(CHECKPOINT_ARTIFACT).delete()

    def _asset_of(self, file_name: str) -> tuple[str, dict[str, Any]]:
        try:
            return self._assets[Path(file_name).stem]
        except KeyError:
            raise PlatformError(f"evaluated image {file_name} is no fetched test asset") from None

    def _check_type(self, alias: str, version: Any) -> None:
        expected = DATASET_TYPE[self._task]
        if version.type != expected:
            raise UserError(
                f"the dataset version attached as {alias!r} is a {_name(version.type)} dataset; "
                f"this image trains {self._task} and needs {_name(expected)} datasets"
            )

    def _download(self, downloadable: Any, folder: Path, what: str) -> Path:
        if Path(downloadable.filename).name != downloadable.filename:
            raise UserError(f"{what} has an unsafe file name {downloadable.filename!r}")
        self._call(f"download {what}", downloadable.download, folder, True)
        path = folder / downloadable.filename
        if not path.is_file():
            raise PlatformError(f"{what} ({downloadable.filename}) did not download")
        return path


def starting_weights_file(files: list[Any]) -> Any | None:
    """Which of a base model version's files a job starts from (also what publishing checks)."""
    return next((f for f in files if f.filename.endswith(WEIGHT_SUFFIXES)), None)


def _name(kind: Any) -> str:
    """`OBJECT_DETECTION`, not `InferenceType.OBJECT_DETECTION`."""
    return str(getattr(kind, "value", kind))
