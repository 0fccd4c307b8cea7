"""`pictrain predict`: one image through the deployment (`deployment.predict`) or through an
exported file itself (`--model model-latest.onnx`, or any export a run stored: OpenVINO's
`.zip` or folder, `.torchscript`, `.engine`; no platform); the result as JSON (boxes, polygons or
classes, by label name) and drawn on a PNG.

The serving's answer is read in Picsellia's prediction format (`detection_classes` as label
indexes, `detection_scores`, `detection_boxes` as [top, left, bottom, right], `detection_masks`
as outlines); an answer in another shape is printed as it came and not drawn.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pictrain.errors import PlatformError, UserError
from pictrain.platform.enums import DATASET_TYPE

log = logging.getLogger(__name__)
TASK_OF_TYPE = {kind.value: task for task, kind in DATASET_TYPE.items()}
KEY_OF_TASK = {"detect": "boxes", "segment": "polygons", "classify": "classes"}
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6"]


@dataclass
class Found:
    label: str
    score: float
    box: list[float] | None = None  # x, y, w, h in the image's pixels
    polygon: list[list[float]] | None = None


@dataclass
class Prediction:
    image: str
    source: str
    task: str
    found: list[Found] = field(default_factory=list)
    raw: Any = None  # a serving answer in an unknown format, as it came

    def as_json(self) -> dict[str, Any]:
        if self.raw is not None:
            return {"image": self.image, "source": self.source, "response": self.raw}
        items = [{k: v for k, v in asdict(f).items() if v is not None} for f in self.found]
        if self.task == "classify":
            items = [{"label": f.label, "score": f.score} for f in self.found]
        return {"image": self.image, "source": self.source, KEY_OF_TASK[self.task]: items}


def predict_local(model_path: Path, image: Path, threshold: float) -> Prediction:
    from pictrain.evaluate.onnx_model import open_export, read_image

    model = open_export(model_path, "--model")
    try:
        pixels = read_image(image)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    found = [
        Found(
            model.names[i.cls],
            round(float(i.score), 4),
            None if model.task == "classify" else [round(float(v), 1) for v in i.box],
            [[round(float(x), 1), round(float(y), 1)] for x, y in i.polygon] if i.polygon else None,
        )
        for i in model.predict(pixels, conf=threshold)
    ]
    return Prediction(str(image), str(model_path), model.task, found)


def from_serving(
    response: Any, image: Path, source: str, kind: str, labels: dict[str, str]
) -> Prediction:
    task = TASK_OF_TYPE.get(kind, "detect")
    try:
        classes = response["detection_classes"]
        scores = response["detection_scores"]
        boxes = response.get("detection_boxes") or [None] * len(classes)
        masks = response.get("detection_masks") or [None] * len(classes)
        found = [
            Found(
                labels.get(str(c), str(c)),
                round(float(s), 4),
                [box[1], box[0], box[3] - box[1], box[2] - box[0]] if box else None,
                mask,
            )
            for c, s, box, mask in zip(classes, scores, boxes, masks, strict=True)
        ]
    except (KeyError, TypeError, ValueError, IndexError):
        log.warning("the serving answered in a format pictrain does not know: printed as is")
        return Prediction(str(image), source, task, raw=response)
    return Prediction(str(image), source, task, found)


def predict_deployed(platform: Any, deployment: Any, image: Path) -> Prediction:
    version = platform.call("read the deployed version", deployment.get_model_version)
    try:
        response = deployment.predict(str(image))  # the SDK retries the serving's 5xx itself
    except Exception as exc:
        raise PlatformError(f"the deployment could not predict {image.name}: {exc}") from None
    source = f"deployment {deployment.name}"
    return from_serving(response, image, source, deployment.type.value, version.labels or {})


def draw(prediction: Prediction, image: Path, out: Path) -> Path | None:
    """The image with what was found drawn on it, as `<out>/<image stem>.png`."""
    if prediction.raw is not None:
        return None
    from PIL import Image, ImageDraw

    with Image.open(image) as opened:
        canvas = opened.convert("RGB")
    pen = ImageDraw.Draw(canvas)
    for k, item in enumerate(prediction.found):
        colour = COLOURS[k % len(COLOURS)]
        text = f"{item.label} {item.score:.2f}"
        if item.polygon:
            pen.polygon([tuple(p) for p in item.polygon], outline=colour, width=2)
        if item.box and prediction.task != "classify":
            x, y, w, h = item.box
            pen.rectangle([x, y, x + w, y + h], outline=colour, width=2)
            pen.text((x + 2, y + 1), text, fill=colour)
        else:
            pen.text((4, 4 + 12 * k), text, fill=colour)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{image.stem}.png"
    canvas.save(path)
    return path
