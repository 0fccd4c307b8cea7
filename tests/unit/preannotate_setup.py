"""What the pre-annotation tests start from: a dataset version half labelled by a human (plus
one unreadable file), a model whose export predicts a label the version lacks, the processing
registered and launched through the commands a user runs, and the job run as the platform runs
it. Shared by the pre-annotation test modules."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pictrain.cli import main
from pictrain.envvars import RETRY_BASE_DELAY
from pictrain.synthetic import make_detection_dataset
from tests.emulator import Emulator
from tests.emulator.routes.asset_tags import tagged
from tests.emulator.state import DatasetVersion
from tests.unit.onnx_stub import constant_model

LABELS = ["circle", "square", "bogus"]  # the version has circle, square, triangle
IMAGES = Path(__file__).parents[2] / "images"
SIZE = 64
BROKEN = "broken.jpg"
PREANNOTATED = "pre-annotated"


def detect_model(path: Path, names: list[str] = LABELS) -> Path:
    """Every image: a circle (0.9, square 0.5 second) and a `bogus` box (0.8); and a weak
    square (0.1) the uncertainty sees but the threshold drops."""
    out = np.zeros((1, 4 + len(names), 12), np.float32)
    out[0, :4, 0] = [20, 20, 10, 10]
    out[0, 4, 0], out[0, 5, 0] = 0.9, 0.5
    out[0, :4, 1] = [44, 30, 12, 8]
    out[0, 4 + len(names) - 1, 1] = 0.8
    out[0, :4, 2] = [40, 50, 10, 10]
    out[0, 5, 2] = 0.1
    return constant_model(path, [out], "detect", names, SIZE)


def pose_model(path: Path, names: list[str], layout: dict[str, Any] | None) -> Path:
    """Every image: one object of the first label, its points inside its box (even ones
    confident, odd ones not); the export's point layout `layout` (None: left out)."""
    points = len(layout["keypoints"]) if layout else 5
    out = np.zeros((1, 4 + len(names) + 3 * points, 6), np.float32)
    out[0, :4, 0] = [30, 30, 20, 20]
    out[0, 4, 0] = 0.9
    for k in range(points):
        out[0, 4 + len(names) + 3 * k : 7 + len(names) + 3 * k, 0] = [
            25 + 2 * k,
            28 + k,
            0.9 - (k % 2) * 0.8,
        ]
    model = constant_model(path, [out], "pose", names, SIZE, kind="raw")
    return _with_metadata(model, {"skeleton": json.dumps(layout)} if layout else {})


def obb_model(path: Path, names: list[str]) -> Path:
    """Every image: one bar of the first label, turned 30 degrees."""
    out = np.zeros((1, 4 + len(names) + 1, 6), np.float32)
    out[0, :4, 0] = [32, 32, 24, 8]
    out[0, 4, 0] = 0.9
    out[0, -1, 0] = np.pi / 6
    return constant_model(path, [out], "obb", names, SIZE, kind="raw")


def _with_metadata(path: Path, extra: dict[str, str]) -> Path:
    import onnx

    model = onnx.load(str(path))
    for key, value in extra.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def half_labelled(
    root: Path, n_images: int = 8, maker: Any = make_detection_dataset
) -> tuple[Path, Path]:
    """A folder of synthetic images and a COCO file annotating its first half, plus one file
    that is no image (an asset nobody can read)."""
    (coco,) = maker(root / "data", n_images, SIZE, seed=0).values()
    document = json.loads(coco.read_text())
    human = {image["id"] for image in document["images"][: n_images // 2]}
    document["annotations"] = [a for a in document["annotations"] if a["image_id"] in human]
    (coco.parent / "images" / BROKEN).write_bytes(b"not an image")
    document["images"].append({"id": 999, "file_name": BROKEN, "width": SIZE, "height": SIZE})
    half = root / "half.json"
    half.write_text(json.dumps(document))
    return coco.parent / "images", half


def write_project(root: Path, parameters: str = "to_label = 2") -> Path:
    project = root / "picsellia.toml"
    project.write_text(
        f'[image]\nname = "yolov8-detection"\nregistry = "ghcr.io/acme"\ntag = "0.1.0"\n'
        f'images_dir = "{IMAGES}"\n\n[dataset]\nname = "emulated-dataset"\n'
        'type = "OBJECT_DETECTION"\n\n'
        f"[preannotate]\nparameters = {{ {parameters} }}\n"
    )
    return project


def pictrain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        main(list(args))
    except SystemExit as exited:
        code = int(exited.code or 0)
    else:
        code = 0
    out = capsys.readouterr()
    return code, out.out + out.err


@dataclass
class Setup:
    emulator: Emulator
    project: Path
    version_id: uuid.UUID
    model_version_id: uuid.UUID
    runs: Path

    @property
    def version(self) -> DatasetVersion:
        return self.emulator.state.dataset_versions[self.version_id]

    def command(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
        flags = ["--project", str(self.project), "--env-file", str(self.project.parent / "none")]
        return pictrain(capsys, *args, *flags)

    def launch(self, capsys: pytest.CaptureFixture[str]) -> Any:
        """`pictrain register preannotate`, then `pictrain preannotate launch`: the job."""
        for args in (
            ("register", "preannotate"),
            (
                "preannotate",
                "launch",
                "--version",
                str(self.version_id),
                "--model",
                str(self.model_version_id),
            ),
        ):
            code, output = self.command(capsys, *args)
            assert code == 0, output
        (job,) = self.emulator.launched_processings(self.version_id)
        return job

    def run_job(
        self, job: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
    ) -> tuple[int, str]:
        """The job as the image runs it on the platform, its worker in this process: its exit
        code and what it printed and logged."""
        caplog.clear()
        with pytest.MonkeyPatch.context() as patched:
            for name in ("API_TOKEN", "ORGANIZATION_ID", "PICSELLIA_HOST"):
                patched.delenv(name, raising=False)
            for name, value in self.emulator.processing_env(job).items():
                patched.setenv(name, value)
            with caplog.at_level(logging.INFO):
                code, output = pictrain(
                    capsys, "preannotate", "--worker", "--runs-dir", str(self.runs)
                )
        return code, output + caplog.text

    def snapshot(self) -> dict[str, Any]:
        """What the version holds, asset by asset (shapes, tags, custom metadata)."""
        state = self.emulator.state
        return {
            state.datas[a.data_id].filename: (
                a.annotated,
                repr(a.shapes),
                sorted(state.tags[t].name for t in a.tag_ids),
                dict(state.datas[a.data_id].custom_metadata),
            )
            for a in self.version.assets
        }

    def tagged(self, name: str) -> list[str]:
        state = self.emulator.state
        return sorted(
            state.datas[a.data_id].filename for a in tagged(self.version, name, state.tags)
        )


def setup(
    emulator: Emulator,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    model_files: dict[str, Path] | None = None,
    parameters: str = "to_label = 2",
    dataset_type: str = "OBJECT_DETECTION",
    labels: list[str] = LABELS,
    maker: Any = make_detection_dataset,
    model_type: str | None = None,
) -> Setup:
    images, coco = half_labelled(root, maker=maker)
    version_id = emulator.seed_dataset_version(images, coco, dataset_type=dataset_type)
    files = (
        model_files if model_files is not None else {"model-latest": detect_model(root / "m.onnx")}
    )
    kind = model_type or dataset_type
    model_version_id = emulator.seed_model_version(files, labels=labels, dataset_type=kind)
    for name, value in {**emulator.user_env(), RETRY_BASE_DELAY.name: "0.01"}.items():
        monkeypatch.setenv(name, value)
    return Setup(
        emulator, write_project(root, parameters), version_id, model_version_id, root / "runs"
    )


WRITES = ("POST", "PATCH", "PUT", "DELETE")
READS_BY_POST = ("/retrieve_presigned_url", "/generate_presigned_url")  # the SDK asks by POST


def writes(emulator: Emulator, since: int) -> list[tuple[str, str]]:
    """Requests after the `since`-th that change what the platform holds."""
    return [
        (r.method, r.path)
        for r in emulator.state.requests[since:]
        if r.method in WRITES and not r.path.endswith(READS_BY_POST)
    ]
