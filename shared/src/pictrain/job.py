"""The pipeline, identical for every backend: fetch -> prepare -> train -> evaluate -> publish."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pictrain import artifacts, safeload
from pictrain.config import ModelConfig
from pictrain.data.keypoints import PoseOptions
from pictrain.data.prepare import PreparedDataset, prepare_dataset
from pictrain.envvars import STOP_TIMEOUT
from pictrain.errors import (
    INTERNAL_ERROR_EXIT_CODE,
    DeployParityError,
    JobInterrupted,
    PlatformError,
    UserError,
    user_facing,
)
from pictrain.evaluate import champion, operating_point, parity
from pictrain.evaluate.operating_point import Thresholds
from pictrain.evaluate.run import evaluate_test_split, score_split, weights_predictor
from pictrain.exportformats import MODEL_ARTIFACT, requested, unavailable
from pictrain.exports import deployment
from pictrain.params import IGNORED_TABLE, Parameters, fit_batch, parse_parameters
from pictrain.platform.base import (
    BEST_MODEL_ARTIFACT,
    CHECKPOINT_ARTIFACT,
    CONFIG_ARTIFACT,
    MANIFEST_ARTIFACT,
    Backend,
)
from pictrain.redact import redact
from pictrain.runstatus import JobStatus, report_failure, write_status
from pictrain.starting import StartingWeights
from pictrain.starting import choose as choose_starting_weights
from pictrain.stopsignal import raise_if_stopped, signals_raise
from pictrain.train.checkpoint import Checkpoint, pick_resumable, snapshot
from pictrain.train.devices import Devices, resolve_devices
from pictrain.train.models import check_model_name, check_starting_weights
from pictrain.train.origin import TrainingOrigin
from pictrain.train.runner import TrainResult, saved_weights, train

log = logging.getLogger(__name__)

# Seconds between SIGTERM and SIGKILL when PICTRAIN_STOP_TIMEOUT does not say (Kubernetes'
# default grace period; `docker stop` gives 10, SageMaker 120): docs/stopping.md.
DEFAULT_STOP_TIMEOUT_S = 30.0
# Kept for what follows the uploads: the failure's status calls, the supervisor's log file,
# exit code and final statuses.
STOP_RESERVE_S = 10.0


@dataclass
class Job:
    backend: Backend
    run_dir: Path
    config: ModelConfig
    _training: bool = field(default=False, init=False)  # last.pt, if any, is this attempt's

    def run(self) -> int:
        """Run to the end; return the process exit code. Never raises for a failed job."""
        with signals_raise():
            return self._run()

    def _run(self) -> int:
        try:
            write_status(self.run_dir, JobStatus.RUNNING)
            self.backend.set_status(JobStatus.RUNNING)
            self._pipeline()
            self.backend.flush()
            self.backend.set_status(JobStatus.DONE)
            write_status(self.run_dir, JobStatus.DONE, exit_code=0)
            log.info("done: results in %s", self.run_dir)
            return 0
        except (UserError, PlatformError, DeployParityError) as exc:
            return self._fail(str(exc), exc.exit_code)
        except JobInterrupted as exc:
            return self._fail(exc.reason, exc.exit_code, stop_deadline(exc.at))
        except Exception as exc:
            known = user_facing(exc, self.run_dir)  # a full disk, a read-only folder...
            if known is not None:
                return self._fail(str(known), known.exit_code)
            log.exception("internal error")
            return self._fail(
                f"internal error: {type(exc).__name__}: {exc}", INTERNAL_ERROR_EXIT_CODE
            )
        finally:
            self.backend.close()

    def _pipeline(self) -> None:
        parsed = parse_parameters(self.backend.parameters(), self.config.defaults)
        params = parsed.params
        model_name = params.model or self.config.model
        check_model_name(self.config.task, model_name, image=self.config.file is not None)
        devices = resolve_devices(params.device, params.batch_size)
        exports = requested(params.export_formats)
        if reason := unavailable(exports, bool(devices.gpus)):
            raise UserError(reason)
        for note in parsed.notes:
            log.warning("%s", note)
        if parsed.ignored:
            log.warning("%s", parsed.ignored_warning())
            self.backend.log_table(IGNORED_TABLE, parsed.ignored_table())
        log.info("parameters given: %s", parsed.values(parsed.given))
        log.info("image defaults: %s", parsed.values(parsed.from_image))
        log.info("left at their default: %s", ", ".join(parsed.defaulted))
        # Weights first: an ambiguous base model, or weights that would run code, fail before
        # the dataset is downloaded.
        starting = choose_starting_weights(
            params.pretrained,
            model_name,
            lambda: self.backend.base_weights(self.run_dir / "weights"),
        )
        if starting.path is not None:
            check_starting_weights(starting.path)
        origin = TrainingOrigin(model=model_name, weights_sha256=starting.sha256)
        splits = self.backend.datasets(self.run_dir / "downloads")
        dataset = prepare_dataset(
            self.config.task,
            splits,
            self.run_dir / "dataset",
            params.seed,
            params.holdout_fraction,
            PoseOptions.of(params),
        )
        raise_if_stopped()  # each step checks for a stop the handler could not raise
        params, note = fit_batch(params, dataset.summaries["train"].images_written)
        if note:
            log.warning("%s", note)
            devices = devices.with_batch(params.batch_size)
        if dataset.keypoints is not None and dataset.keypoints.flip_idx is None:
            params = params.model_copy(
                update={"fliplr": 0.0, "flipud": 0.0}
            )  # resolve_layout said why
        self.backend.log_labelmap(dataset.labelmap)
        for split, summary in dataset.summaries.items():  # the data-health report
            self.backend.log_table(f"{split}/conversion", summary.table())
            self.backend.log_bar(f"{split}/label-distribution", summary.label_distribution())
        resume = self._resumable(dataset, params, origin)
        self._training = True
        result = train(
            self.config.task,
            origin,
            starting.path,
            dataset.train_data,
            params,
            devices,
            self._train_dir,
            self.backend,
            resume,
        )
        self._training = False
        raise_if_stopped()
        self.backend.discard_checkpoint()
        for name, plot in result.plots.items():
            self.backend.log_image(name, plot)
        self.backend.store_artifact(BEST_MODEL_ARTIFACT, result.best)
        point = self._operating_point(result, dataset, params, devices)
        values = self._evaluate(result, dataset, params, devices, point)
        self._compare_champion(dataset, params, devices, values)
        raise_if_stopped()
        onnx = self._publish(result, dataset, params, model_name, starting, devices, point)
        gate = self._check_deploy_parity(onnx, dataset, params, values, point)
        self._deployment(result, dataset, params, devices, values, onnx, gate, point)
        if gate is not None:  # after the table: it tells which formats score as the weights
            gate.enforce()

    @property
    def _train_dir(self) -> Path:
        return self.run_dir / "train"

    def _resumable(
        self, dataset: PreparedDataset, params: Parameters, origin: TrainingOrigin
    ) -> Checkpoint | None:
        """This run's own last.pt (a relaunch on the same machine) or the stored checkpoint,
        whichever trained further, when it continues the same training. The weights of the run
        folder stay only when its last.pt is the one resumed: any other belong to another or
        an earlier training, and must not be uploaded as this one's."""
        local = self._train_dir / "weights" / "last.pt"
        candidates = [p for p in saved_weights(self._train_dir) if p == local]
        stored_dir = self.run_dir / "checkpoints" / "stored"
        stored = self.backend.stored_artifact(CHECKPOINT_ARTIFACT, stored_dir)
        if stored:
            candidates.append(stored)
        overrides = params.ultralytics_overrides()
        resume = pick_resumable(candidates, self.config.task, dataset.names, overrides, origin)
        if resume is None or resume.path != local:
            for stale in saved_weights(self._train_dir):
                stale.unlink()
        if resume:
            self._restore_best(stored_dir, resume)
        return resume

    def _restore_best(self, folder: Path, resume: Checkpoint) -> None:
        """A resumed run rewrites best.pt only when an epoch beats the earlier best: in a fresh
        container, bring the earlier attempt's best back first, or it is lost. Only the best
        of the resumed training (its fitness is the checkpoint's best): another training's
        would be evaluated and published as this one's. ultralytics unpickles best.pt
        unrestricted at the end (`pictrain.safeload`): it must load safely."""
        best = self._train_dir / "weights" / "best.pt"
        if best.is_file():
            if _is_best_of(best, resume):
                return
            best.unlink()
        stored = self.backend.stored_artifact(BEST_MODEL_ARTIFACT, folder)
        if stored and _is_best_of(stored, resume):
            best.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stored, best)
            log.info("restored the earlier attempt's best weights")

    def _operating_point(
        self, result: TrainResult, dataset: PreparedDataset, params: Parameters, devices: Devices
    ) -> Thresholds:
        """The confidence thresholds, chosen on val (`pictrain.evaluate.operating_point`)."""
        predictor = weights_predictor(result.best, params.image_size, devices.first)
        scored = score_split(self.config.task, predictor, dataset, "val")
        return operating_point.choose(scored, dataset.names, params.target_precision)

    def _evaluate(
        self,
        result: TrainResult,
        dataset: PreparedDataset,
        params: Parameters,
        devices: Devices,
        point: Thresholds,
    ) -> dict[str, float]:
        """The test split: values, tables and evaluations (at the operating point unless
        `conf_threshold` says), and precision and recall at the operating point."""
        sent = point
        if params.conf_threshold is not None:
            sent = Thresholds.fixed(params.conf_threshold, dataset.names, "conf_threshold")
        evaluation = evaluate_test_split(
            self.config.task,
            weights_predictor(result.best, params.image_size, devices.first),
            dataset,
            sent,
            self.run_dir / "evaluation",
        )
        for name, value in evaluation.values.items():
            self.backend.log_value(f"test/{name}", value)
        for name, table in evaluation.tables.items():
            self.backend.log_table(name, table)
        for name, heatmap in evaluation.heatmaps.items():
            self.backend.log_heatmap(name, heatmap)
        for name, plot in evaluation.plots.items():
            self.backend.log_image(name, plot)
        self.backend.add_evaluations(evaluation.evaluations)
        if evaluation.unsent:
            log.warning(
                "%d test predictions of labels without a skeleton not sent as evaluations: the "
                "platform takes keypoints only for labels that have one",
                evaluation.unsent,
            )
        if evaluation.scored is not None:
            report = operating_point.Report.of(point, evaluation.scored)
            self.backend.log_table(operating_point.TABLE, report.table())
            _write_json(self.run_dir / "evaluation" / "operating_point.json", report.record())
            log.info("%s", report.summary)
        return evaluation.values

    def _compare_champion(
        self,
        dataset: PreparedDataset,
        params: Parameters,
        devices: Devices,
        values: dict[str, float],
    ) -> None:
        """The base model version's weights on the same test split, by the same path."""
        found = self.backend.champion_weights(self.run_dir / "weights")
        if found is None:
            return
        outcome = champion.compare(
            self.config.task,
            *found,
            dataset,
            values,
            params.champion_tolerance,
            params.image_size,
            devices.first,
            self.run_dir / "evaluation" / "champion",
        )
        for name, value in outcome.values.items():
            self.backend.log_value(f"test/{name}", value)
        self.backend.log_table(champion.TABLE, outcome.table)
        _write_json(self.run_dir / "evaluation" / "champion.json", outcome.record())
        if outcome.verdict == champion.WORSE:
            log.warning("%s: `pictrain model publish` and `deploy` refuse it", outcome.message)
        else:
            log.info("%s", outcome.message)

    def _check_deploy_parity(
        self,
        onnx: Path,
        dataset: PreparedDataset,
        params: Parameters,
        values: dict[str, float],
        point: Thresholds,
    ) -> parity.Parity | None:
        """Score the stored ONNX export as the weights were scored; the caller enforces."""
        outcome = parity.check_export(
            self.config.task, onnx, dataset, values, point, self.run_dir / "evaluation" / "onnx"
        )
        if outcome is None:
            log.info("deploy parity not checked: the test split has nothing to score")
            return None
        for name, value in outcome.values.items():
            self.backend.log_value(f"test/{name}", value)
        self.backend.log_table(parity.TABLE, outcome.table)
        if outcome.verdict == "ok":
            log.info("%s", outcome.message)
        else:
            log.warning("%s", outcome.message)
        return outcome

    def _deployment(
        self,
        result: TrainResult,
        dataset: PreparedDataset,
        params: Parameters,
        devices: Devices,
        values: dict[str, float],
        latest: Path,
        gate: parity.Parity | None,
        point: Thresholds,
    ) -> None:
        """Every other export asked for, stored, scored and timed: the `deployment` table."""
        exports = deployment.Exports(
            task=self.config.task,
            weights=result.best,
            dataset=dataset,
            labelmap=dataset.labelmap,
            image_size=params.image_size,
            device=devices.first,
            thresholds=point,
            seed=params.seed,
            calibration_images=params.int8_calibration_images,
            export_dir=self.run_dir / "export",
            eval_dir=self.run_dir / "evaluation" / "exports",
            store=self.backend.store_artifact,
        )
        rows = exports.rows(
            requested(params.export_formats),
            latest,
            gate.onnx if gate else None,
            gate.weights if gate else None,
        )
        deployment.write_rows(rows, self.run_dir / "evaluation" / deployment.EXPORTS_FILE)
        self.backend.log_table(deployment.TABLE, deployment.table(rows))

    def _publish(
        self,
        result: TrainResult,
        dataset: PreparedDataset,
        params: Parameters,
        model_name: str,
        starting: StartingWeights,
        devices: Devices,
        point: Thresholds,
    ) -> Path:
        out = self.run_dir / "export"
        out.mkdir(exist_ok=True)
        onnx = artifacts.export_onnx(
            result.best,
            params.image_size,
            out / f"{MODEL_ARTIFACT}.onnx",
            self.config.task,
            dataset.labelmap,
            dataset.keypoints.skeleton() if dataset.keypoints else None,
            point.record(),
        )
        self.backend.store_artifact(MODEL_ARTIFACT, onnx)
        config = {
            "task": self.config.task,
            "model": model_name,
            "labelmap": dataset.labelmap,
            "operating_point": point.record(),
            "parameters": params.model_dump(),
        }
        if dataset.keypoints is not None:  # the point layout trained, flip_idx and sigmas
            config["keypoints"] = dataset.keypoints.described()
        config_file = artifacts.write_config(out / f"{CONFIG_ARTIFACT}.yaml", config)
        self.backend.store_artifact(CONFIG_ARTIFACT, config_file)
        inputs = {
            "splits": dataset.checksums(),
            "starting_weights": starting.record(),
            "devices": devices.manifest(),
        }
        manifest = artifacts.write_manifest(out / f"{MANIFEST_ARTIFACT}.json", inputs)
        self.backend.store_artifact(MANIFEST_ARTIFACT, manifest)
        return onnx

    def _fail(self, reason: str, exit_code: int, deadline: float | None = None) -> int:
        """Say why (console line and status.json first: they must hold whatever happens next),
        then upload the weights trained so far and tell the platform. A stopped job has until
        `deadline` (time.monotonic()) before its SIGKILL."""
        report_failure(self.run_dir, reason, exit_code)
        reason = redact(reason)
        try:
            self._store_trained(deadline)
            self.backend.set_status(JobStatus.FAILED, reason)
        except UserError as exc:  # the token was refused: nothing more gets through
            log.warning("could not report the failure to the platform: %s", exc)
        except Exception as exc:
            known = user_facing(exc, self.run_dir)
            if known is None:
                log.exception("could not report the failure")
            else:  # the disk that failed the job, full again: said once above
                log.warning("could not report the failure: %s", known)
        return exit_code

    def _store_trained(self, deadline: float | None) -> None:
        """The weights trained so far, and the checkpoint when training was under way. Their
        copies (stripped, or safe from ultralytics' rewrites) are skipped on a disk without
        room for them: the files themselves are stored."""
        kept = saved_weights(self._train_dir)
        checkpoints = self.run_dir / "checkpoints"
        for weights in kept[:1]:
            try:
                stored = _storable(weights, checkpoints)
            except safeload.UnsafeWeights as exc:
                log.warning("not storing the weights left in the run folder: %s", exc)
                continue
            self.backend.store_artifact(BEST_MODEL_ARTIFACT, stored)
            log.info("storing the weights trained so far (%s)", weights.name)
        last = self._train_dir / "weights" / "last.pt"
        if self._training and last in kept:
            if _room_for(last, checkpoints):
                last = snapshot(last, checkpoints, last.name)
            self.backend.store_checkpoint(last, deadline)


def _room_for(path: Path, folder: Path) -> bool:
    """Whether the disk of `folder` (of the run) has room for a copy of `path`."""
    return shutil.disk_usage(folder.parent).free > path.stat().st_size


def _storable(weights: Path, folder: Path) -> Path:
    """What to store of weights left in the run folder: a stripped copy in `folder` where the
    disk has room for it, else the file itself; raises for weights that would run code."""
    if _room_for(weights, folder):
        return safeload.stripped_copy(weights, folder / f"{weights.stem}-weights.pt")
    with contextlib.suppress(safeload.UnreadableWeights):  # stored as it is, as before
        safeload.load(weights)
    return weights


def _is_best_of(weights: Path, resume: Checkpoint) -> bool:
    """Whether earlier best weights are those of the resumed training; raises for weights that
    would run code."""
    try:
        best = safeload.load(weights, f"earlier best weights {weights}")
    except safeload.UnreadableWeights as exc:
        log.warning("not restored: %s", exc)
        return False
    fitness = (best.get("train_metrics") or {}).get("fitness")
    if fitness != resume.best_fitness:
        log.warning(
            "not restoring the best weights %s: another training's (fitness %s, the best of "
            "the resumed one %s)",
            weights,
            fitness,
            resume.best_fitness,
        )
        return False
    return True


def _write_json(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1))


def stop_deadline(signalled_at: float) -> float:
    """When uploads must be done after a stop signal: the platform's stop timeout
    (PICTRAIN_STOP_TIMEOUT), less what the status calls and the supervisor's last calls need."""
    value = STOP_TIMEOUT.read()
    timeout = float(value) if value else DEFAULT_STOP_TIMEOUT_S
    return signalled_at + timeout - STOP_RESERVE_S
