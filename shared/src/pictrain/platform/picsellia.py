"""The Picsellia backend: the experiment, read and written through the official SDK."""

from __future__ import annotations

import contextlib
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

from picsellia import exceptions as px
from picsellia.types.enums import ExperimentStatus, LogType
from picsellia.types.enums import JobStatus as LegacyJobStatus

from pictrain.config import task_spec
from pictrain.errors import PlatformError, TokenRefused, UserError
from pictrain.platform.assets import asset_id_of, fetch_split
from pictrain.platform.base import (
    BEST_MODEL_ARTIFACT,
    CHECKPOINT_ARTIFACT,
    FAILURE_REASON_LOG,
    LABELMAP_LOG,
    PARAMETERS_LOG,
    PUBLISHED_WEIGHTS_ARTIFACT,
    DatasetSplit,
    Evaluation,
    is_sendable,
)
from pictrain.platform.base_files import BaseFiles
from pictrain.platform.connect import call_platform, connect, find_experiment
from pictrain.platform.curves import CurveWriter
from pictrain.platform.enums import dataset_type_problem, inference_type
from pictrain.platform.env import PicselliaContext
from pictrain.platform.evaluations import (
    EVALUATIONS_PER_CALL,
    Unsendable,
    evaluation_format,
    sendable,
    shapes_of,
)
from pictrain.platform.retry import RetryPolicy
from pictrain.platform.sender import BackgroundSender
from pictrain.platform.uploads import UploadMeter
from pictrain.runstatus import JobStatus
from pictrain.splitnames import canonical_split
from pictrain.starting import StartingWeights

log = logging.getLogger(__name__)
# On a stop, a checkpoint stored this recently is kept rather than replaced by an upload that
# would not finish before the SIGKILL: a relaunch loses at most this much training.
FRESH_CHECKPOINT_MINUTES = 30
# The experiment's own status, as Picsellia's base image sets it (`experiment.update`), and the
# older per-experiment job status (`update_job_status`), a different field kept as an extra.
EXPERIMENT_STATUS = {
    JobStatus.RUNNING: ExperimentStatus.RUNNING,
    JobStatus.DONE: ExperimentStatus.SUCCESS,
    JobStatus.FAILED: ExperimentStatus.FAILED,
}
LEGACY_JOB_STATUS = {
    JobStatus.RUNNING: LegacyJobStatus.RUNNING,
    JobStatus.DONE: LegacyJobStatus.SUCCESS,
    JobStatus.FAILED: LegacyJobStatus.FAILED,
}


class PicselliaBackend:
    def __init__(
        self, context: PicselliaContext, task: str, policy: RetryPolicy | None = None
    ) -> None:
        self._policy = policy or RetryPolicy()
        self._spec = task_spec(task)
        self.experiment = find_experiment(connect(context, self._policy), context, self._call)
        self._sender = BackgroundSender(self._policy.patient())
        self._curves = CurveWriter(self.experiment)
        self._warned: set[str] = set()  # metrics found non-finite
        self._labels: dict[str, dict[str, Any]] = {}  # asset id -> its version's labels by name
        self._checkpoint: Path | None = None  # the newest checkpoint handed over
        self._checkpoint_stored_at: float | None = None  # time.monotonic() of the last one
        self._meter = UploadMeter()
        self._base_files = BaseFiles(self.experiment, self._call, self._download)

    # --- reading -------------------------------------------------------------------------

    def parameters(self) -> dict[str, Any]:
        try:
            data = self._call(
                "read the parameters log", self.experiment.get_log, PARAMETERS_LOG
            ).data
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
            fetched = fetch_split(self._call, self._policy, name, version, dest / name)
            self._labels.update(fetched.labels)
            splits[name] = fetched.split
        return splits

    def base_weights(self, dest: Path) -> StartingWeights | None:
        """By name, in the order `pictrain.platform.weights` documents; a copy of the base
        model version's file is not the experiment's own (`base_files.py`)."""
        return self._base_files.starting(dest)

    def champion_weights(self, dest: Path) -> tuple[Path, str] | None:
        return self._base_files.champion(dest)

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
        if is_sendable(name, value, None, self._warned):
            self._log(name, value, LogType.VALUE)

    def log_table(self, name: str, table: dict[str, Any]) -> None:
        self._log(name, table, LogType.TABLE)

    def log_heatmap(self, name: str, heatmap: dict[str, Any]) -> None:
        self._log(name, heatmap, LogType.HEATMAP)

    def log_bar(self, name: str, bar: dict[str, list[Any]]) -> None:
        self._log(name, bar, LogType.BAR)

    def log_image(self, name: str, path: Path) -> None:
        self._log(name, str(path), LogType.IMAGE)

    def log_labelmap(self, labelmap: dict[str, str]) -> None:
        self._log(LABELMAP_LOG, labelmap, LogType.LABELMAP)

    def store_artifact(self, name: str, path: Path) -> None:
        self._meter.queued(path.stat().st_size)
        self._sender.submit(f"store artifact {name}", partial(self._store, name, path))
        if name == BEST_MODEL_ARTIFACT:
            self.store_artifact(PUBLISHED_WEIGHTS_ARTIFACT, path)

    def store_checkpoint(self, path: Path, deadline: float | None = None) -> None:
        size = path.stat().st_size
        if deadline is not None and self._keeps_stored_checkpoint(size, deadline):
            self._checkpoint = None  # nor a periodic one still queued: it would not fit either
            path.unlink(missing_ok=True)
            return
        self._checkpoint = path
        self._meter.queued(size)
        self._sender.submit(f"store {CHECKPOINT_ARTIFACT}", partial(self._store_checkpoint, path))

    def discard_checkpoint(self) -> None:
        self._checkpoint = None
        self._sender.submit(f"delete {CHECKPOINT_ARTIFACT}", self._delete_checkpoint)

    def add_evaluations(self, evaluations: list[Evaluation]) -> None:
        payload = {}
        unknown = shapes = 0
        dropped = Unsendable()
        for evaluation in evaluations:
            asset_id, labels = self._asset_of(evaluation.file_name)
            known = [s for s in shapes_of(evaluation) if s.label in labels]
            unknown += len(shapes_of(evaluation)) - len(known)
            kept = sendable(known, dropped)
            shapes += len(kept)
            payload[asset_id] = evaluation_format(self._spec.evaluation_shape, kept, labels)
        if unknown:
            log.warning("%d predictions have a label the test dataset lacks: not sent", unknown)
        if dropped:
            log.warning("predictions the platform would refuse, not sent: %s", dropped)
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
                partial(self.experiment.compute_evaluations_metrics, inference_type(self._spec)),
            )

    def set_status(self, status: JobStatus, reason: str | None = None) -> None:
        """Status calls are no data: one that fails is logged, and never fails the run."""
        if reason:
            self._sender.submit(
                "log the failure reason",
                partial(self.experiment.log, FAILURE_REASON_LOG, reason, LogType.VALUE),
                data=False,
            )
        experiment_status = EXPERIMENT_STATUS[status]
        self._sender.submit(
            f"set the experiment status to {experiment_status.value}",
            partial(self.experiment.update, status=experiment_status),
            data=False,
        )
        self._sender.submit(
            f"set the experiment's job status to {LEGACY_JOB_STATUS[status].value}",
            partial(self.experiment.update_job_status, LEGACY_JOB_STATUS[status]),
            data=False,
        )

    def flush(self) -> None:
        """Wait for every queued call; data that never arrived (curves, artifacts,
        evaluations) fails the job; a lost status call does not."""
        self._sender.drain()
        if self._sender.refused:
            raise TokenRefused()
        if self._sender.failures:
            failed = ", ".join(self._sender.failures)
            self._sender.failures.clear()
            raise PlatformError(f"platform calls failed after retries: {failed}")

    def close(self) -> None:
        self._sender.close(timeout=300)
        if self._sender.refused:
            log.error("%d platform calls dropped: %s", self._sender.dropped, TokenRefused())
        elif self._sender.failures:
            log.error("unsent to the platform: %s", ", ".join(self._sender.failures))

    # --- internals ---------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A synchronous, idempotent call: retried, and a lasting outage is a PlatformError."""
        return call_platform(self._policy, what, fn, *args, **kwargs)

    def _log(self, name: str, data: Any, kind: LogType) -> None:
        self._sender.submit(f"log {name}", partial(self.experiment.log, name, data, kind))

    def _store(self, name: str, path: Path) -> None:
        self._meter.upload(path, partial(self.experiment.store, name, str(path)))

    def _store_checkpoint(self, path: Path) -> None:
        """Upload unless a newer checkpoint was handed over since; the file is ours to remove."""
        if path == self._checkpoint:
            self._store(CHECKPOINT_ARTIFACT, path)
            self._checkpoint_stored_at = time.monotonic()
        else:
            self._meter.dropped(path.stat().st_size)
        path.unlink(missing_ok=True)

    def _keeps_stored_checkpoint(self, size: int, deadline: float) -> bool:
        """Stopping: a checkpoint this run stored less than FRESH_CHECKPOINT_MINUTES ago is
        worth more than an upload the SIGKILL would cut short (and the status calls after it)."""
        if self._checkpoint_stored_at is None:
            return False
        now = time.monotonic()
        age_minutes = (now - self._checkpoint_stored_at) / 60
        seconds = self._meter.seconds_for(size)
        if age_minutes >= FRESH_CHECKPOINT_MINUTES or seconds is None or now + seconds <= deadline:
            return False
        log.info(
            "not storing the last checkpoint: its upload would take ~%.0f s (%.0f MB, after what"
            " is queued) and %.0f s are left before the stop; the one stored %.1f min ago stays",
            seconds,
            size / 1e6,
            max(0.0, deadline - now),
            age_minutes,
        )
        return True

    def _delete_checkpoint(self) -> None:
        with contextlib.suppress(px.ResourceNotFoundError):
            self.experiment.get_artifact(CHECKPOINT_ARTIFACT).delete()

    def _asset_of(self, file_name: str) -> tuple[str, dict[str, Any]]:
        """The asset id and labels of an image named `<asset id>.<ext>` as fetched."""
        asset_id = asset_id_of(file_name)
        try:
            return asset_id, self._labels[asset_id]
        except KeyError:
            raise PlatformError(f"evaluated image {file_name} is no fetched test asset") from None

    def _check_type(self, alias: str, version: Any) -> None:
        problem = dataset_type_problem(self._spec, version.type)
        if problem:
            raise UserError(f"the dataset version attached as {alias!r} is {problem}")

    def _download(self, downloadable: Any, folder: Path, what: str) -> Path:
        if Path(downloadable.filename).name != downloadable.filename:
            raise UserError(f"{what} has an unsafe file name {downloadable.filename!r}")
        self._call(f"download {what}", downloadable.download, folder, True)
        path = folder / downloadable.filename
        if not path.is_file():
            raise PlatformError(f"{what} ({downloadable.filename}) did not download")
        return path
