"""The pipeline, identical for every backend: fetch -> prepare -> train -> evaluate -> publish."""

from __future__ import annotations

import logging
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pictrain import artifacts
from pictrain.config import ModelConfig
from pictrain.data.prepare import PreparedDataset, prepare_dataset
from pictrain.errors import INTERNAL_ERROR_EXIT_CODE, JobInterrupted, PlatformError, UserError
from pictrain.evaluate.run import evaluate_test_split
from pictrain.params import Parameters, parse_parameters
from pictrain.platform.base import BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT, Backend, JobStatus
from pictrain.train.checkpoint import Checkpoint, pick_resumable, snapshot
from pictrain.train.models import check_model_name
from pictrain.train.runner import TrainResult, checkpoints, train

log = logging.getLogger(__name__)


@dataclass
class Job:
    backend: Backend
    run_dir: Path
    config: ModelConfig
    _training: bool = field(default=False, init=False)  # last.pt, if any, is this attempt's

    def run(self) -> int:
        """Run to the end; return the process exit code. Never raises for a failed job."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            with _signals_raise():
                self.backend.set_status(JobStatus.RUNNING)
                self._pipeline()
                self.backend.flush()
                self.backend.set_status(JobStatus.DONE)
                log.info("done: results in %s", self.run_dir)
                return 0
        except (UserError, PlatformError) as exc:
            return self._fail(str(exc), exc.exit_code)
        except JobInterrupted as exc:
            return self._fail(f"stopped by {exc}", exc.exit_code)
        except Exception as exc:
            log.exception("internal error")
            return self._fail(
                f"internal error: {type(exc).__name__}: {exc}", INTERNAL_ERROR_EXIT_CODE
            )
        finally:
            self.backend.close()

    def _pipeline(self) -> None:
        params, defaulted = parse_parameters(self.backend.parameters(), self.config.defaults)
        model_name = params.model or self.config.model
        check_model_name(self.config.task, model_name)
        log.info("parameters: %s", params.model_dump(exclude_defaults=True))
        log.info("left at their default: %s", ", ".join(defaulted))
        splits = self.backend.datasets(self.run_dir / "downloads")
        dataset = prepare_dataset(self.config.task, splits, self.run_dir / "dataset", params.seed)
        self.backend.log_labelmap(dataset.labelmap)
        weights = self.backend.base_weights(self.run_dir / "weights")
        if weights is not None:  # which weights a run started from, checkable against a file
            log.info("starting weights %s: sha256 %s", weights.name, artifacts.sha256(weights))
        resume = self._resumable(dataset, params)
        self._training = True
        result = train(
            self.config.task,
            model_name,
            weights,
            dataset.train_data,
            params,
            self._train_dir,
            self.backend,
            resume,
        )
        self._training = False
        self.backend.discard_checkpoint()
        for plot in result.plots:
            self.backend.log_image(plot.stem, plot)
        self.backend.store_artifact(BEST_MODEL_ARTIFACT, result.best)
        self._evaluate(result, dataset, params)
        self._publish(result, dataset, params, model_name, weights)

    @property
    def _train_dir(self) -> Path:
        return self.run_dir / "train"

    def _resumable(self, dataset: PreparedDataset, params: Parameters) -> Checkpoint | None:
        """This run's own last.pt (a relaunch on the same machine) or the stored checkpoint,
        whichever trained further, when it continues the same training."""
        candidates = [p for p in checkpoints(self._train_dir) if p.name == "last.pt"]
        stored_dir = self.run_dir / "checkpoints" / "stored"
        stored = self.backend.stored_artifact(CHECKPOINT_ARTIFACT, stored_dir)
        if stored:
            candidates.append(stored)
        overrides = params.ultralytics_overrides()
        resume = pick_resumable(candidates, self.config.task, dataset.names, overrides)
        if resume:
            self._restore_best(stored_dir)
        return resume

    def _restore_best(self, folder: Path) -> None:
        """A resumed run rewrites best.pt only when an epoch beats the earlier best: in a fresh
        container, bring the earlier attempt's best back first, or it is lost."""
        best = self._train_dir / "weights" / "best.pt"
        if best.is_file():
            return
        stored = self.backend.stored_artifact(BEST_MODEL_ARTIFACT, folder)
        if stored:
            best.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stored, best)
            log.info("restored the earlier attempt's best weights")

    def _evaluate(self, result: TrainResult, dataset: PreparedDataset, params: Parameters) -> None:
        evaluation = evaluate_test_split(
            self.config.task,
            result.best,
            dataset,
            params.image_size,
            params.device,
            params.conf_threshold,
            self.run_dir / "evaluation",
        )
        for name, value in evaluation.values.items():
            self.backend.log_value(f"test/{name}", value)
        for name, table in evaluation.tables.items():
            self.backend.log_table(name, table)
        for plot in evaluation.plots:
            self.backend.log_image(plot.stem, plot)
        self.backend.add_evaluations(evaluation.evaluations)

    def _publish(
        self,
        result: TrainResult,
        dataset: PreparedDataset,
        params: Parameters,
        model_name: str,
        weights: Path | None,
    ) -> None:
        out = self.run_dir / "export"
        out.mkdir(exist_ok=True)
        onnx = artifacts.export_onnx(result.best, params.image_size, out / "model-latest.onnx")
        self.backend.store_artifact("model-latest", onnx)
        config = {
            "task": self.config.task,
            "model": model_name,
            "labelmap": dataset.labelmap,
            "parameters": params.model_dump(),
        }
        self.backend.store_artifact("config", artifacts.write_config(out / "config.yaml", config))
        inputs = {
            "splits": dataset.checksums(),
            "base_weights": (
                {"file": weights.name, "sha256": artifacts.sha256(weights)} if weights else None
            ),
        }
        manifest = artifacts.write_manifest(out / "manifest.json", inputs)
        self.backend.store_artifact("manifest", manifest)

    def _fail(self, reason: str, exit_code: int) -> int:
        log.error("FAILED: %s", reason)
        try:
            kept = checkpoints(self._train_dir)
            for checkpoint in kept[:1]:
                self.backend.store_artifact(BEST_MODEL_ARTIFACT, checkpoint)
                log.info("uploaded the weights trained so far (%s)", checkpoint.name)
            last = self._train_dir / "weights" / "last.pt"
            if self._training and last in kept:
                self.backend.store_checkpoint(
                    snapshot(last, self.run_dir / "checkpoints", last.name)
                )
                log.info("stored the checkpoint: a relaunch resumes from it")
            self.backend.set_status(JobStatus.FAILED, reason)
        except Exception:
            log.exception("could not report the failure")
        return exit_code


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM (docker stop, platform abort) into an exception so the failure path runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise JobInterrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
