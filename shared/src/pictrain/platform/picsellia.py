"""The Picsellia backend: the experiment, read and written through the official SDK."""

from __future__ import annotations

import contextlib
import json
import logging
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from picsellia import Client
from picsellia import exceptions as px
from picsellia.types.enums import AnnotationFileType, InferenceType, LogType
from picsellia.types.enums import JobStatus as ExperimentStatus
from picsellia.types.payload import (
    ClassificationFormat,
    EvaluationFormat,
    PolygonFormat,
    RectangleFormat,
)

from pictrain.data.splits import canonical_split
from pictrain.errors import PlatformError, UserError
from pictrain.platform.base import (
    CHECKPOINT_ARTIFACT,
    Classification,
    DatasetSplit,
    Detection,
    Evaluation,
    JobStatus,
    Polygon,
)
from pictrain.platform.env import PicselliaContext
from pictrain.platform.retry import RetryPolicy, exception_chain, is_transient
from pictrain.platform.sender import BackgroundSender

log = logging.getLogger(__name__)
T = TypeVar("T")

DOWNLOAD_WORKERS = 8
EVALUATIONS_PER_CALL = 100  # the SDK's own limit
WEIGHT_SUFFIXES = (".pt", ".pth")
PRETRAINED_ARTIFACT = "pretrained-weights"
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
        self._client = self._connect(context)
        self.experiment = self._find_experiment(context)
        self._sender = BackgroundSender(self._policy.patient())
        self._assets: dict[str, tuple[str, dict[str, Any]]] = {}  # file stem -> asset id, labels
        self._curves: set[str] = set()
        self._attempted: set[tuple[str, int]] = set()  # curve points posted at least once
        self._kept: dict[str, list[Any]] = {}  # curve -> the earlier points it must start from
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
        return {
            name: self._fetch(name, version, dest / name) for name, (_, version) in chosen.items()
        }

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
        for model_file in files:
            if model_file.filename.endswith(WEIGHT_SUFFIXES):
                path = self._download(model_file, dest / "base-model", model_file.name)
                log.info(
                    "starting weights: file %s (%s) of base model version %s",
                    model_file.name,
                    path.name,
                    version.name,
                )
                return path
        log.info("the base model version %s has no .pt file: training from scratch", version.name)
        return None

    def last_checkpoint(self, dest: Path) -> Path | None:
        """The experiment's `last-checkpoint` file, stored by an earlier, unfinished attempt."""
        try:
            artifact = self._call(
                f"find {CHECKPOINT_ARTIFACT}", self.experiment.get_artifact, CHECKPOINT_ARTIFACT
            )
        except px.ResourceNotFoundError:
            return None
        return self._download(artifact, dest, CHECKPOINT_ARTIFACT)

    # --- writing (in the background, in order) ---------------------------------------------

    def log_series(self, name: str, step: int, value: float) -> None:
        self._sender.submit(f"log {name}", partial(self._append_point, name, step, value))

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
            known = [s for s in _shapes(evaluation) if s.label in labels]
            skipped += len(_shapes(evaluation)) - len(known)
            shapes += len(known)
            payload[asset_id] = _evaluation_format(self._task, known, labels)
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
        try:
            return self._policy.call(what, fn, *args, **kwargs)
        except (px.ResourceNotFoundError, px.NoBaseModelVersionError, px.NoDataError, UserError):
            raise
        except px.UnauthorizedError:
            raise UserError("the platform refused the API token (expired or revoked?)") from None
        except Exception as exc:
            if is_transient(exc) or isinstance(exc, px.PicselliaError):
                raise PlatformError(f"could not {what}: {exc}") from None
            raise

    def _log(self, name: str, data: Any, kind: LogType) -> None:
        self._sender.submit(f"log {name}", partial(self.experiment.log, name, data, kind))

    def _append_point(self, name: str, step: int, value: float) -> None:
        """A LINE log appends what is posted, so the first point of a curve in this process
        first trims the stored curve to the step - 1 points before it: a relaunch from epoch 1
        starts the curve again, a resumed one drops what its previous attempt logged after
        the checkpoint.

        Appending is not idempotent: when a retried post may have landed (a dropped reply),
        the stored curve tells whether this point is already there.
        """
        if (name, step) in self._attempted and len(self._stored_points(name)) >= step:
            return
        self._attempted.add((name, step))
        if name not in self._curves:
            self._start_curve(name, step)
            self._curves.add(name)
        self.experiment.log(name, [value], LogType.LINE)

    def _start_curve(self, name: str, step: int) -> None:
        """Rewrite the curve as its first step - 1 points (delete, post them again) if it holds
        more. What to keep is read once: a retry after the delete must not read it back empty."""
        stored = self._stored_points(name)
        if name not in self._kept:
            self._kept[name] = stored[: step - 1]
            if len(stored) < step - 1:
                log.warning(
                    "curve %s holds %d points before epoch %d: earlier points were lost",
                    name,
                    len(stored),
                    step,
                )
        kept = self._kept[name]
        if stored == kept:
            return
        with contextlib.suppress(px.ResourceNotFoundError):
            self.experiment.get_log(name).delete()
        if kept:
            self.experiment.log(name, kept, LogType.LINE)

    def _store_checkpoint(self, path: Path) -> None:
        """Upload unless a newer checkpoint was handed over since; the file is ours to remove."""
        if path == self._checkpoint:
            self.experiment.store(CHECKPOINT_ARTIFACT, str(path))
        path.unlink(missing_ok=True)

    def _delete_checkpoint(self) -> None:
        with contextlib.suppress(px.ResourceNotFoundError):
            self.experiment.get_artifact(CHECKPOINT_ARTIFACT).delete()

    def _stored_points(self, name: str) -> list[Any]:
        try:
            data = self.experiment.get_log(name).data
        except px.ResourceNotFoundError:
            return []
        return data if isinstance(data, list) else []

    def _asset_of(self, file_name: str) -> tuple[str, dict[str, Any]]:
        try:
            return self._assets[Path(file_name).stem]
        except KeyError:
            raise PlatformError(f"evaluated image {file_name} is no fetched test asset") from None

    def _connect(self, context: PicselliaContext) -> Client:
        def connect() -> Client:
            return Client(
                api_token=context.api_token.get_secret_value(),
                organization_id=context.organization_id,
                organization_name=context.organization_name,
                host=context.host,
            )

        try:
            return self._policy.call(f"connect to {context.host}", connect)
        except Exception as exc:
            if _caused_by(exc, px.UnauthorizedError):
                raise UserError(
                    f"{context.host} refused the API token (expired or revoked?)"
                ) from None
            if _caused_by(exc, px.ResourceNotFoundError):
                raise UserError("the organization was not found with this API token") from None
            raise PlatformError(f"cannot connect to {context.host}: {_first_line(exc)}") from None

    def _find_experiment(self, context: PicselliaContext) -> Any:
        try:
            if context.experiment_id:
                return self._call(
                    "find the experiment", self._client.get_experiment_by_id, context.experiment_id
                )
            project = self._call("find the project", self._client.get_project, context.project_name)
            return self._call(
                "find the experiment", project.get_experiment, context.experiment_name
            )
        except px.ResourceNotFoundError:
            wanted = context.experiment_id or f"{context.project_name}/{context.experiment_name}"
            raise UserError(f"experiment {wanted} not found in this organization") from None

    def _check_type(self, alias: str, version: Any) -> None:
        expected = DATASET_TYPE[self._task]
        if version.type != expected:
            raise UserError(
                f"the dataset version attached as {alias!r} is a {_name(version.type)} dataset; "
                f"this image trains {self._task} and needs {_name(expected)} datasets"
            )

    def _fetch(self, split: str, version: Any, folder: Path) -> DatasetSplit:
        """Assets saved as <asset id>.<ext>: a user's file name can never escape the folder."""
        images = folder / "images"
        images.mkdir(parents=True, exist_ok=True)
        try:
            listed = self._call(f"list the {split} assets", version.list_assets)
        except px.NoDataError:
            raise UserError(f"the dataset version attached as {split} has no assets") from None
        assets = list(listed)
        log.info("downloading %d %s images", len(assets), split)
        # MultiAsset.download swallows per-file failures: check every file afterwards.
        self._call(
            f"download the {split} images",
            listed.download,
            images,
            max_workers=DOWNLOAD_WORKERS,
            use_id=True,
        )
        for asset in assets:
            if not (images / asset.id_with_extension).is_file():
                self._call(f"download {asset.filename}", asset.download, images, True, use_id=True)
        labels = {
            label.name: label for label in self._call(f"list {split} labels", version.list_labels)
        }
        by_filename = {asset.filename: asset.id_with_extension for asset in assets}
        for asset in assets:
            self._assets[Path(asset.id_with_extension).stem] = (str(asset.id), labels)
        exported = Path(
            self._call(
                f"export the {split} annotations",
                version.export_annotation_file,
                AnnotationFileType.COCO,
                str(folder / "export"),
            )
        )
        coco_file = folder / "annotations.json"
        coco_file.write_text(
            json.dumps(_rename_images(json.loads(exported.read_text()), by_filename))
        )
        return DatasetSplit(split, images, coco_file, version_id=str(version.id))

    def _download(self, downloadable: Any, folder: Path, what: str) -> Path:
        if Path(downloadable.filename).name != downloadable.filename:
            raise UserError(f"{what} has an unsafe file name {downloadable.filename!r}")
        self._call(f"download {what}", downloadable.download, folder, True)
        path = folder / downloadable.filename
        if not path.is_file():
            raise PlatformError(f"{what} ({downloadable.filename}) did not download")
        return path


def _rename_images(coco: dict[str, Any], by_filename: dict[str, str]) -> dict[str, Any]:
    """Point the export's file names at the files as saved; images without an asset are left
    as they are, so the converter reports them missing instead of this silently dropping them."""
    for image in coco.get("images", []):
        image["file_name"] = by_filename.get(image["file_name"], image["file_name"])
    return coco


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(seen, kind) for seen in exception_chain(exc))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _name(kind: Any) -> str:
    """`OBJECT_DETECTION`, not `InferenceType.OBJECT_DETECTION`."""
    return str(getattr(kind, "value", kind))


Shape = Detection | Polygon | Classification


def _shapes(evaluation: Evaluation) -> list[Shape]:
    return [*evaluation.detections, *evaluation.polygons, *evaluation.classifications]


def _evaluation_format(task: str, shapes: list[Shape], labels: dict[str, Any]) -> EvaluationFormat:
    """The SDK's payload for one asset. It rejects numpy scalars, float coordinates and int
    scores, hence the explicit conversions."""
    if task == "segment":
        return EvaluationFormat(
            polygons=[
                PolygonFormat(
                    polygon=[[int(x), int(y)] for x, y in p.points],
                    label_id=labels[p.label].id,
                    score=float(p.score),
                )
                for p in shapes
                if isinstance(p, Polygon)
            ]
        )
    if task == "classify":
        return EvaluationFormat(
            classifications=[
                ClassificationFormat(label_id=labels[c.label].id, score=float(c.score))
                for c in shapes
                if isinstance(c, Classification)
            ]
        )
    return EvaluationFormat(
        rectangles=[
            RectangleFormat(
                x=int(d.x),
                y=int(d.y),
                w=int(d.w),
                h=int(d.h),
                label_id=labels[d.label].id,
                score=float(d.score),
            )
            for d in shapes
            if isinstance(d, Detection)
        ]
    )
