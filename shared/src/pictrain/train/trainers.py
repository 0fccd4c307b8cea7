"""pictrain's ultralytics trainers: the job's hooks in every process that trains.

ultralytics' multi-GPU launcher (`ultralytics.utils.dist.generate_ddp_file`) writes a script
that each DDP worker runs: it unpickles the trainer's class, which cloudpickle stores by module
and name for a class of an installed package, and builds it with the parent's arguments and
callbacks. Callbacks bound to the parent's backend cannot cross that boundary (ultralytics #6168),
but this class does: in every worker it installs the offline AMP check and checks that weights
load safely (`pictrain.safeload`), on rank 0 the same epoch-metric and periodic-checkpoint
callbacks as a single-process run, writing to the parent's relay (`pictrain.train.relay`); each
last.pt it saves records what it trains (`pictrain.train.origin`), and the files ultralytics'
final validation unpickles unrestricted are loaded with the restricted loader first.
"""

from __future__ import annotations

import logging
from copy import deepcopy
from pathlib import Path
from typing import Any

from ultralytics.cfg import DEFAULT_CFG
from ultralytics.models import yolo
from ultralytics.models.rtdetr.train import RTDETRTrainer as UltralyticsRTDETRTrainer
from ultralytics.utils import RANK

from pictrain import safeload, stopsignal
from pictrain.confusion import redraw_validation
from pictrain.envvars import DDP_RELAY
from pictrain.train import amp, origin
from pictrain.train.checkpoint import PeriodicCheckpoint, interval_seconds
from pictrain.train.metrics import EpochMetrics
from pictrain.train.relay import SpoolWriter, TrainingSink

log = logging.getLogger(__name__)

# ultralytics events after which rank 0 tells the parent's watchdog it is alive.
PROGRESS_EVENTS = (
    "on_pretrain_routine_end",
    "on_train_batch_end",
    "on_val_batch_end",
    "on_fit_epoch_end",
    "on_model_save",
)


def attach(target: Any, sink: TrainingSink, checkpoints: Path) -> EpochMetrics:
    """The job's callbacks on a model or trainer: each epoch's points, then (after them, on the
    same sink) a periodic checkpoint snapshot written under `checkpoints`."""
    metrics = EpochMetrics(sink)
    metrics.attach(target)
    PeriodicCheckpoint(sink, checkpoints, interval_seconds()).attach(target)
    return metrics


def _epoch_logged(trainer: Any) -> None:
    """The end of the epoch's `save_model` hold: a stop kept meanwhile is raised now."""
    stopsignal.release()


class _JobTrainer:
    """Mixed in before an ultralytics trainer class."""

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: Any = None, _callbacks: Any = None):
        amp.install()  # every process: each worker imports a fresh ultralytics
        safeload.require_safe_mode()  # before a resume's check_resume loads the checkpoint
        super().__init__(cfg, overrides, _callbacks)  # type: ignore[call-arg]
        self.add_callback("on_train_end", _redraw_confusion)  # type: ignore[attr-defined]
        relay = DDP_RELAY.read()
        if RANK == 0 and relay:  # a DDP worker, rank 0: the one that validates and saves
            writer = SpoolWriter(Path(relay))
            attach(self, writer, writer.folder)
            for event in PROGRESS_EVENTS:
                self.add_callback(event, lambda trainer: writer.alive())  # type: ignore[attr-defined]
        # last: after the epoch's points and checkpoint (the runner's callbacks, or a DDP
        # worker's just above)
        self.add_callback("on_fit_epoch_end", _epoch_logged)  # type: ignore[attr-defined]

    def train(self) -> None:
        if self.ddp and self.args.batch < 1:  # type: ignore[attr-defined]
            self._auto_batch_per_gpu()
        super().train()  # type: ignore[misc]

    def save_model(self) -> bool:
        # Held until the epoch's curve points are queued (`_epoch_logged`, the last
        # on_fit_epoch_end callback): a stored checkpoint is never ahead of its curves.
        stopsignal.hold()
        try:
            saved: bool = super().save_model()  # type: ignore[misc]
            origin.tag_saved(self.last)  # type: ignore[attr-defined]
        except BaseException:
            stopsignal.release()
            raise
        return saved

    def final_eval(self) -> None:
        """ultralytics strips last.pt and best.pt with an unrestricted unpickler first."""
        if RANK in {-1, 0}:
            for weights in (self.last, self.best):  # type: ignore[attr-defined]
                if weights.exists():
                    safeload.load(weights)
        super().final_eval()  # type: ignore[misc]

    def _auto_batch_per_gpu(self) -> None:
        """ultralytics' AutoBatch runs on one GPU only and refuses DDP; size the batch on the
        first GPU and give every GPU that much. The parent keeps a CUDA context on that GPU
        (~0.5 GB) for the rest of training: AutoBatch aims at 60% of its memory, which leaves
        room for it."""
        import torch
        from ultralytics.utils.autobatch import check_train_batch_size

        trainer: Any = self
        if isinstance(trainer.model, torch.nn.Module):
            probe = deepcopy(trainer.model)
        else:  # a resume: the checkpoint's path, which the workers must get as it is
            probe = safeload.network(Path(trainer.model))
            probe.requires_grad_(True)  # the stored EMA has none, training does
        first = int(trainer.args.device.split(",")[0])
        per_gpu = check_train_batch_size(
            probe.to(torch.device("cuda", first)),
            imgsz=trainer.args.imgsz,
            amp=bool(trainer.args.amp),
            batch=trainer.args.batch,
        )
        del probe
        torch.cuda.empty_cache()
        trainer.args.batch = trainer.batch_size = per_gpu * trainer.world_size
        log.info(
            "batch_size -1: AutoBatch found %d images per GPU on GPU %d, %d for the %d GPUs",
            per_gpu,
            first,
            trainer.batch_size,
            trainer.world_size,
        )


def _redraw_confusion(trainer: Any) -> None:
    """After the final validation (rank 0 only: ultralytics calls on_train_end there): its
    confusion matrices with the true class on rows, as every other matrix of the run."""
    confusion = getattr(trainer.validator, "confusion_matrix", None)
    if trainer.args.plots and confusion is not None:
        redraw_validation(confusion, Path(trainer.save_dir))


class DetectionTrainer(_JobTrainer, yolo.detect.DetectionTrainer):
    """YOLO detection."""


class SegmentationTrainer(_JobTrainer, yolo.segment.SegmentationTrainer):
    """YOLO segmentation."""


class ClassificationTrainer(_JobTrainer, yolo.classify.ClassificationTrainer):
    """YOLO classification."""


class PoseTrainer(_JobTrainer, yolo.pose.PoseTrainer):
    """YOLO pose."""


class OBBTrainer(_JobTrainer, yolo.obb.OBBTrainer):
    """YOLO oriented boxes."""


class RTDETRTrainer(_JobTrainer, UltralyticsRTDETRTrainer):
    """RT-DETR detection."""


_OURS = {
    base: ours
    for ours in (
        DetectionTrainer,
        SegmentationTrainer,
        ClassificationTrainer,
        PoseTrainer,
        OBBTrainer,
        RTDETRTrainer,
    )
    for base in ours.__bases__[1:]
}


def trainer_for(model: Any) -> type:
    """Ours in place of the ultralytics trainer `model` would use."""
    return _OURS[model.task_map[model.task]["trainer"]]
