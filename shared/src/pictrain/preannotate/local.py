"""`pictrain preannotate --local DIR --model FILE --out FILE.json`: the same pass over a folder of
images, no platform. It writes a COCO file (every image read, the model's labelmap as its
categories, one annotation per kept prediction with its `score`) and, beside it,
`<out>.to-label.csv`: every image's score and signals, best first, the picked ones marked."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pictrain.config import task_spec
from pictrain.data.images import IMAGE_SUFFIXES
from pictrain.errors import UserError
from pictrain.evaluate.onnx_model import OnnxModel
from pictrain.preannotate.run import Item
from pictrain.preannotate.scoring import Candidate, Signals
from pictrain.preannotate.shapes import Found, written_as

CSV_SUFFIX = ".to-label.csv"
CSV_COLUMNS = ("rank", "file", "score", "confidence", "margin", "flip", "picked")


def scores_file(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".json") + CSV_SUFFIX)


class LocalFolder:
    """The images of `folder` (its files, sorted; no subfolders), as the pass's target."""

    def __init__(self, folder: Path, out: Path, model: OnnxModel) -> None:
        if not folder.is_dir():
            raise UserError(f"--local {folder} is not a folder")
        if out.is_dir():  # said before the pass, not when its file is put in place
            raise UserError(f"--out {out} is a folder, not a file")
        self.folder, self.out = folder, out
        self.labels = list(model.names)
        # as written into a version of the task's own type (an oriented box: its corners)
        self.form = written_as(model.task, task_spec(model.task).dataset_types[0])
        self.category_keys = model.skeleton or {}  # pose: the point layout
        self.files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise UserError(f"--local {folder} holds no image ({suffixes})")
        out.parent.mkdir(parents=True, exist_ok=True)  # a folder that cannot be: said now
        self._images: list[dict[str, Any]] = []
        self._annotations: list[dict[str, Any]] = []
        self._scores: dict[str, Signals] = {}

    def batches(self, size: int) -> Iterator[list[Item]]:
        for start in range(0, len(self.files), size):
            yield [Item(p.name, p.name, p) for p in self.files[start : start + size]]

    def write(self, found: list[tuple[Item, list[Found]]], replace: bool) -> dict[str, str]:
        categories = {name: index for index, name in enumerate(self.labels)}
        for item, found_here in found:
            image_id = len(self._images) + 1
            width, height = item.size
            self._images.append(
                {"id": image_id, "file_name": item.key, "width": width, "height": height}
            )
            for annotation in found_here:
                number = len(self._annotations) + 1
                entry = annotation.coco(number, image_id, categories[annotation.label])
                self._annotations.append(entry)
        return {}

    def score(self, item: Item, signals: Signals) -> None:
        self._scores[item.key] = signals

    def finish(self, picks: list[Candidate]) -> list[str]:
        picked = {p.key for p in picks}
        path = scores_file(self.out)
        ranked = sorted(self._scores.items(), key=lambda kv: (-kv[1].score, kv[0]))
        with path.open("w", newline="") as out:
            rows = csv.writer(out)
            rows.writerow(CSV_COLUMNS)
            for rank, (key, signals) in enumerate(ranked, 1):
                record = signals.record()
                rows.writerow(
                    [rank, key, *(record[k] for k in CSV_COLUMNS[2:6]), int(key in picked)]
                )
        return [f"{len(picks)} images to label next marked in {path} (best first)"]

    def save(self) -> Path:
        categories = [
            {"id": i, "name": name, **self.category_keys} for i, name in enumerate(self.labels)
        ]
        document = {
            "images": self._images,
            "categories": categories,
            "annotations": self._annotations,
        }
        partial = self.out.with_name(self.out.name + ".part")
        partial.write_text(json.dumps(document))
        partial.replace(self.out)
        return self.out
