"""The job inside DDP workers, on the CPU: ultralytics' own generated DDP file, started by
torch.distributed.run with two processes in a gloo group (`ddp_worker.py` says why it opens the
group itself), with pictrain's trainer class and the parent's relay to a real backend.

What a multi-GPU run needs from the workers: curves that reach the backend while training still
runs, each epoch once (rank 1 sends nothing), a periodic checkpoint behind its epoch's points
that records what it trains, the offline AMP check and restricted weights loading in every
worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pictrain.data.convert import convert_detection, write_data_yaml
from pictrain.data.labels import labelmap_from
from pictrain.envvars import CHECKPOINT_MINUTES
from pictrain.platform.local import LocalBackend
from pictrain.synthetic import make_detection_dataset
from pictrain.train.checkpoint import read_checkpoint
from pictrain.train.origin import TrainingOrigin, handed_to_trainers
from pictrain.train.relay import Relay

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")
EPOCHS = 2
CURVES = ("train/box_loss", "val/mAP50(B)", "lr/pg0")


class Recorder(LocalBackend):
    """The local backend, noting for each call when it came and whether training still ran."""

    def __init__(self, root: Path) -> None:
        (root / "data").mkdir(parents=True)
        super().__init__(root / "data", root / "run")
        self.calls: list[tuple[float, str, bool]] = []
        self.workers: subprocess.Popen[bytes] | None = None

    def log_series(self, name: str, step: int, value: float) -> None:
        self._note(f"{name}@{step}")
        super().log_series(name, step, value)

    def store_checkpoint(self, path: Path) -> None:
        self._note(f"checkpoint {path.name}")
        super().store_checkpoint(path)

    def _note(self, what: str) -> None:
        running = self.workers is not None and self.workers.poll() is None
        self.calls.append((time.time(), what, running))


def _data_yaml(root: Path) -> Path:
    coco = make_detection_dataset(root / "coco", n_images=12, image_size=64, seed=0)["train"]
    names = labelmap_from([coco])
    convert_detection(coco, coco.parent / "images", root / "yolo", "train", names)
    return write_data_yaml(root / "yolo", names, ["train"])


def _generated_ddp_file(data_yaml: Path, save_dir: Path) -> str:
    """What ultralytics' DDP parent writes: our trainer class, built as `Model.train` builds it."""
    from ultralytics import YOLO
    from ultralytics.utils.dist import generate_ddp_file

    from pictrain.train.trainers import DetectionTrainer, trainer_for

    model = YOLO("yolov8n.yaml")
    assert trainer_for(model) is DetectionTrainer
    overrides = {
        "model": "yolov8n.yaml",
        "task": "detect",
        "mode": "train",
        "data": str(data_yaml),
        "epochs": EPOCHS,
        "imgsz": 64,
        "batch": 4,
        "workers": 0,
        "device": "cpu",
        "seed": 0,
        "plots": False,
        "project": str(save_dir.parent),
        "name": save_dir.name,
        "exist_ok": True,
    }
    trainer = DetectionTrainer(overrides=overrides, _callbacks=model.callbacks)
    trainer.model = trainer.get_model(cfg=model.model.yaml, verbose=False)
    return generate_ddp_file(trainer)


def test_ddp_workers_stream_curves_and_checkpoints_through_the_relay(tmp_path: Path) -> None:
    from ultralytics.utils.dist import find_free_network_port

    data_yaml = _data_yaml(tmp_path / "dataset")
    save_dir = tmp_path / "runs" / "train"
    generated = _generated_ddp_file(data_yaml, save_dir)
    notes = tmp_path / "notes"
    notes.mkdir()
    backend = Recorder(tmp_path / "backend")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", str(find_free_network_port()), str(WORKER), generated, str(notes)]

    origin = TrainingOrigin(model="yolov8n", weights_sha256=None)
    try:
        with Relay(tmp_path / "runs" / "relay", backend) as relay, handed_to_trainers(origin):
            # a checkpoint at every epoch but the last
            env = {**os.environ, CHECKPOINT_MINUTES.name: "0"}
            backend.workers = subprocess.Popen(command, env=env)
            assert backend.workers.wait(timeout=600) == 0
        ended = time.time()
    finally:  # as ultralytics' ddp_cleanup does
        Path(generated).unlink()
        Path(generated).with_suffix(".pt").unlink()

    calls = [what for _, what, _ in backend.calls]
    for name in CURVES:  # each epoch once: rank 1 relays nothing
        assert [c for c in calls if c.startswith(f"{name}@")] == [f"{name}@1", f"{name}@2"]
    epoch1 = [i for i, c in enumerate(calls) if c.endswith("@1")]
    epoch2 = [i for i, c in enumerate(calls) if c.endswith("@2")]
    assert calls.index("checkpoint epoch1.pt") == max(epoch1) + 1 < min(epoch2)
    assert "checkpoint epoch2.pt" not in calls  # the last epoch ends the training: none
    live = [(at, running) for at, what, running in backend.calls if what.endswith("@1")]
    assert all(running and at < ended for at, running in live), live
    assert relay.steps == {1, 2}

    stored = read_checkpoint(backend.run_dir / "artifacts" / "last-checkpoint.pt")
    assert stored is not None and stored.epochs_done == 1 and stored.resumable
    assert stored.origin == origin
    for rank in (0, 1):
        check = (notes / f"amp-check-rank{rank}.txt").read_text()
        assert check == "pictrain.train.amp.check_amp_offline", rank
        assert (notes / f"safe-load-rank{rank}.txt").read_text() == "True", rank
    assert (save_dir / "results.csv").is_file()
