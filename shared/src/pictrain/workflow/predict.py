"""`pictrain predict`: one image through the deployment (`deployment.predict`) or through an
exported file itself (`--model model-latest.onnx`, or any export a run stored: OpenVINO's
`.zip` or folder, `.torchscript`, `.engine`; no platform); the result as JSON (boxes, polygons,
classes or poses, by label name) and drawn on a PNG (poses as their skeleton, from the export's
metadata).

The serving's answer is read in Picsellia's prediction format (`detection_classes` as label
indexes, `detection_scores`, `detection_boxes` as [top, left, bottom, right], `detection_masks`
as outlines); an answer in another shape is printed as it came and not drawn.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pictrain.config import TASK_SPECS, task_spec
from pictrain.errors import PlatformError, UserError

if TYPE_CHECKING:
    from pictrain.evaluate.instance import Instance

log = logging.getLogger(__name__)
# A deployment's type is its model version's: the first dataset type of a task; a type two
# tasks start with (oriented boxes' models are SEGMENTATION ones) reads as the first's.
TASK_OF_TYPE = {spec.dataset_types[0]: task for task, spec in reversed(TASK_SPECS.items())}
# The JSON key of what was found, by `TaskSpec.evaluation_shape`.
KEY_OF_SHAPE = {
    "rectangles": "boxes",
    "polygons": "polygons",
    "classifications": "classes",
    "keypoints": "poses",
}
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6"]


@dataclass
class Found:
    label: str
    score: float
    box: list[float] | None = None  # x, y, w, h in the image's pixels
    polygon: list[list[float]] | None = None
    keypoints: list[list[float]] | None = None  # x, y, confidence, in the layout's order


@dataclass
class Prediction:
    image: str
    source: str
    task: str
    found: list[Found] = field(default_factory=list)
    raw: Any = None  # a serving answer in an unknown format, as it came
    edges: list[list[int]] = field(default_factory=list)  # pose: the skeleton, from 1

    def as_json(self) -> dict[str, Any]:
        if self.raw is not None:
            return {"image": self.image, "source": self.source, "response": self.raw}
        items = [{k: v for k, v in asdict(f).items() if v is not None} for f in self.found]
        if task_spec(self.task).per_image:
            items = [{"label": f.label, "score": f.score} for f in self.found]
        key = KEY_OF_SHAPE[task_spec(self.task).evaluation_shape]
        return {"image": self.image, "source": self.source, key: items}


def predict_local(model_path: Path, image: Path, threshold: float | None) -> Prediction:
    """`threshold` None: the model's operating point (each class's threshold, chosen on val
    by the job), else ultralytics' default for an export without one."""
    from pictrain.evaluate.onnx_model import open_export, read_image
    from pictrain.evaluate.operating_point import to_keep

    model = open_export(model_path, "--model")
    try:
        pixels = read_image(image)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    kept = to_keep(threshold, "--threshold", model.operating_point, model.names)
    per_image = task_spec(model.task).per_image
    found = [
        _found(i, model.names, per_image)
        for i in model.predict(pixels, conf=kept.lowest)
        if i.score >= kept.of(i.cls)
    ]
    edges = (model.skeleton or {}).get("skeleton", [])
    return Prediction(str(image), str(model_path), model.task, found, edges=edges)


def _found(instance: Instance, names: list[str], per_image: bool) -> Found:
    """An oriented box is its 4 corners as predicted (they may reach out of the image), with
    no upright box; classification has no box."""
    outline = instance.polygon if instance.corners is None else instance.corners.tolist()
    upright = per_image or instance.corners is not None
    points = instance.keypoints
    return Found(
        names[instance.cls],
        round(float(instance.score), 4),
        None if upright else [round(float(v), 1) for v in instance.box],
        [[round(float(x), 1), round(float(y), 1)] for x, y in outline] if outline else None,
        [[round(x, 1), round(y, 1), round(c, 3)] for x, y, c in points.tolist()]
        if points is not None
        else None,
    )


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


def predict_deployed(
    platform: Any, deployment: Any, image: Path, monitor: bool = True
) -> Prediction:
    """`monitor`: the image goes to the deployment's monitoring (SDK default), as a prediction
    to review and a datalake data (docs/continuous-training.md)."""
    version = platform.call("read the deployed version", deployment.get_model_version)
    try:  # the SDK retries the serving's 5xx itself
        response = deployment.predict(str(image), monitor=monitor)
    except Exception as exc:
        raise PlatformError(f"the deployment could not predict {image.name}: {exc}") from None
    source = f"deployment {deployment.name}"
    return from_serving(response, image, source, deployment.type.value, version.labels or {})


def _skeleton(pen: Any, points: list[list[float]], edges: list[list[int]], colour: str) -> None:
    """The visible points (confidence KEYPOINT_VISIBLE or more) and the edges between them."""
    from pictrain.evaluate.instance import KEYPOINT_VISIBLE

    visible = [c >= KEYPOINT_VISIBLE for _, _, c in points]
    for a, b in edges:
        if visible[a - 1] and visible[b - 1]:
            pen.line([tuple(points[a - 1][:2]), tuple(points[b - 1][:2])], fill=colour, width=2)
    for (x, y, _), shown in zip(points, visible, strict=True):
        if shown:
            pen.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)


def where_images_go(deployment: str, monitor: bool) -> str:
    """Said before predicting on a deployment (on stderr: stdout is the JSON lines)."""
    if monitor:
        return (
            f"the images go to deployment {deployment}'s monitoring: each is stored in the "
            "datalake as a prediction to review, which continuous training may then learn from "
            "(--no-monitor: predictions only)"
        )
    return f"--no-monitor: the images stay out of deployment {deployment}'s monitoring"


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
        if item.keypoints:
            _skeleton(pen, item.keypoints, prediction.edges, colour)
        if item.box and not task_spec(prediction.task).per_image:
            x, y, w, h = item.box
            pen.rectangle([x, y, x + w, y + h], outline=colour, width=2)
            pen.text((x + 2, y + 1), text, fill=colour)
        elif item.polygon:  # an oriented box: the label at its top corner
            x, y = min(item.polygon, key=lambda point: (point[1], point[0]))
            pen.text((max(x, 0) + 2, max(y, 0) + 1), text, fill=colour)
        else:
            pen.text((4, 4 + 12 * k), text, fill=colour)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{image.stem}.png"
    canvas.save(path)
    return path
