"""What a run leaves behind: the deployable ONNX, the resolved config, a manifest."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from pictrain.envvars import GIT_SHA

TRACKED_PACKAGES = ("pictrain", "ultralytics", "torch", "torchvision", "picsellia", "pycocotools")


def export_onnx(
    weights: Path,
    image_size: int,
    dest: Path,
    task: str,
    labelmap: dict[str, str],
    skeleton: dict[str, Any] | None = None,
    operating_point: dict[str, Any] | None = None,
) -> Path:
    """The export Picsellia's pre-annotation and serving consume (`model-latest`): static
    1x3xNxN, opset 18, the raw head (NMS outside the graph) or YOLO26's NMS-free one, input
    `images`, pictrain's metadata (`pictrain.exports.metadata`; for pose also the point layout,
    `skeleton`), with the thresholds to keep predictions at, `operating_point` (JSON:
    `threshold`, `per_class`, `chosen_by`)."""
    from pictrain.exportformats import LATEST
    from pictrain.exports.export import export

    made = export(
        weights,
        LATEST,
        image_size,
        dest.parent,
        task,
        labelmap,
        skeleton=skeleton,
        operating_point=operating_point,
    )
    if made.resolve() != dest.resolve():
        made.replace(dest)
    return dest


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_manifest(path: Path, inputs: dict[str, Any]) -> Path:
    """Versions, code revision and input checksums: enough to tell two runs apart later."""
    manifest = {
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in TRACKED_PACKAGES},
        "git_sha": _git_sha(),
        "inputs": inputs,
    }
    path.write_text(json.dumps(manifest, indent=2))
    return path


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_sha() -> str | None:
    """Baked into images as PICTRAIN_GIT_SHA; from the checkout when run from source."""
    if sha := GIT_SHA.read():
        return sha
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
