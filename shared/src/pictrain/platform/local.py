"""The local backend: a dataset folder in; what the platform would get, written to a run folder.

Folder contract: `DIR/parameters.json|yaml` (optional), `DIR/<split>/images/` and
`DIR/<split>/annotations.json` (COCO) per split; only `train` is required. An optional
`DIR/pretrained-weights.pt` is the starting point, as the experiment file of that name is.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from pictrain.data.splits import DatasetSplit
from pictrain.errors import UserError
from pictrain.platform.base import CHECKPOINT_ARTIFACT, LABELMAP_LOG, Evaluation, is_sendable
from pictrain.runstatus import JobStatus
from pictrain.splitnames import canonical_split
from pictrain.starting import PRETRAINED_ARTIFACT, StartingWeights
from pictrain.userfiles import read_text

PARAMETER_FILES = ("parameters.json", "parameters.yaml", "parameters.yml")
WEIGHTS_FILE = f"{PRETRAINED_ARTIFACT}.pt"


class LocalBackend:
    def __init__(self, dataset_dir: Path, run_dir: Path) -> None:
        if not dataset_dir.is_dir():
            raise UserError(f"dataset folder {dataset_dir} does not exist")
        self.dataset_dir = dataset_dir
        self.run_dir = run_dir
        self._artifacts = run_dir / "artifacts"
        self._plots = run_dir / "plots"
        for folder in (self._artifacts, self._plots):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._curves: set[str] = set()
        self._warned: set[str] = set()

    def parameters(self) -> dict[str, Any]:
        found = [self.dataset_dir / n for n in PARAMETER_FILES if (self.dataset_dir / n).is_file()]
        if len(found) > 1:  # which one trains would be a guess
            names = " and ".join(p.name for p in found)
            raise UserError(f"{names} are both in {self.dataset_dir}: keep one")
        return _read_mapping(found[0]) if found else {}

    def datasets(self, dest: Path) -> dict[str, DatasetSplit]:
        splits: dict[str, DatasetSplit] = {}
        for folder in sorted(p for p in self.dataset_dir.iterdir() if p.is_dir()):
            name = canonical_split(folder.name)
            if name is None:
                continue
            if name in splits:
                raise UserError(f"two folders in {self.dataset_dir} are the {name} split")
            coco = folder / "annotations.json"
            if not coco.is_file():
                raise UserError(f"{folder} has no annotations.json (COCO)")
            splits[name] = DatasetSplit(name, folder / "images", coco)
        if "train" not in splits:
            entries = sorted(self.dataset_dir.iterdir())
            found = ", ".join(p.name + "/" * p.is_dir() for p in entries) or "nothing"
            raise UserError(
                f"{self.dataset_dir} has no train/ folder (found: {found}); a local dataset is "
                "train/images/ + train/annotations.json (COCO), val/ and test/ alike and optional"
            )
        return splits

    def base_weights(self, dest: Path) -> StartingWeights | None:
        """The folder's `pretrained-weights.pt`, as the experiment file of that name."""
        weights = self.dataset_dir / WEIGHTS_FILE
        return StartingWeights.found("experiment", weights) if weights.is_file() else None

    def champion_weights(self, dest: Path) -> tuple[Path, str] | None:
        """A local run has no base model version."""
        return None

    def stored_artifact(self, name: str, dest: Path) -> Path | None:
        """What an earlier run of the same name (`--name`) stored."""
        return next(iter(sorted(self._artifacts.glob(f"{name}.*"))), None)

    def log_series(self, name: str, step: int, value: float) -> None:
        if name not in self._curves:
            self._curves.add(name)
            # A rerun under the same name (resumed or not) replaces the curve from its first step.
            self._drop_metrics(lambda r: _is_point_from(r, name, step))
        if is_sendable(name, value, step, self._warned):
            self._append("metrics.jsonl", {"name": name, "step": step, "value": value})

    def log_value(self, name: str, value: float) -> None:
        self._drop_metrics(lambda r: r["name"] == name and r["step"] is None)
        if is_sendable(name, value, None, self._warned):
            self._append("metrics.jsonl", {"name": name, "step": None, "value": value})

    def log_table(self, name: str, table: dict[str, Any]) -> None:
        self._write_json(self.run_dir / "tables" / f"{_slug(name)}.json", table)

    def log_heatmap(self, name: str, heatmap: dict[str, Any]) -> None:
        self._write_json(self.run_dir / "heatmaps" / f"{_slug(name)}.json", heatmap)

    def log_bar(self, name: str, bar: dict[str, list[Any]]) -> None:
        self._write_json(self.run_dir / "bars" / f"{_slug(name)}.json", bar)

    def log_image(self, name: str, path: Path) -> None:
        shutil.copyfile(path, self._plots / f"{_slug(name)}{path.suffix}")

    def log_labelmap(self, labelmap: dict[str, str]) -> None:
        self._write_json(self._artifacts / f"{LABELMAP_LOG}.json", labelmap)

    def store_artifact(self, name: str, path: Path) -> None:
        shutil.copyfile(path, self._artifacts / f"{name}{path.suffix}")

    def store_checkpoint(self, path: Path, deadline: float | None = None) -> None:
        """A file move: always in time."""
        path.replace(self._checkpoint_file)

    def discard_checkpoint(self) -> None:
        self._checkpoint_file.unlink(missing_ok=True)

    def add_evaluations(self, evaluations: list[Evaluation]) -> None:
        for evaluation in evaluations:
            self._append("evaluations.jsonl", asdict(evaluation))

    def set_status(self, status: JobStatus, reason: str | None = None) -> None:
        """Nothing more to do: the job writes the run folder's status.json for every backend."""

    def flush(self) -> None:
        """Nothing is buffered: every write above is on disk when it returns."""

    def close(self) -> None:
        """Nothing to release."""

    @property
    def _checkpoint_file(self) -> Path:
        return self._artifacts / f"{CHECKPOINT_ARTIFACT}.pt"

    def _drop_metrics(self, unwanted: Callable[[dict[str, Any]], bool]) -> None:
        """Remove earlier records (of a previous run under this name) before writing anew."""
        metrics = self.run_dir / "metrics.jsonl"
        with self._lock:
            if not metrics.is_file():
                return
            lines = metrics.read_text().splitlines(keepends=True)
            kept = [line for line in lines if not unwanted(json.loads(line))]
            if len(kept) < len(lines):
                metrics.write_text("".join(kept))

    def _append(self, file_name: str, record: dict[str, Any]) -> None:
        with self._lock, (self.run_dir / file_name).open("a") as stream:
            stream.write(json.dumps(record) + "\n")

    @staticmethod
    def _write_json(path: Path, content: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2))


def _read_mapping(path: Path) -> dict[str, Any]:
    text = read_text(path)
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{path.name} is not valid: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path.name} must hold a mapping of parameter names to values")
    return data


def _is_point_from(record: dict[str, Any], name: str, step: int) -> bool:
    return record["name"] == name and record["step"] is not None and record["step"] >= step


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
