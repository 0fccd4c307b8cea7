"""Evaluate a model on the test split: write `evaluation/`, return what to send.

The same path scores the trained weights and their ONNX export (`Predictor`), so the two
are comparable number for number (`pictrain.evaluate.parity`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pictrain.config import IOU_SUFFIX, task_spec
from pictrain.confusion import plot_confusion
from pictrain.data.prepare import PreparedDataset
from pictrain.evaluate.classification import (
    classification_report,
    predict_top5,
    read_class_split,
)
from pictrain.evaluate.coco_eval import evaluate_coco
from pictrain.evaluate.ground_truth import EvalImage, GroundTruth, IouType, build_ground_truth
from pictrain.evaluate.instance import SCORING_CONFIDENCE, Instance
from pictrain.evaluate.operating_point import (
    Scored,
    Thresholds,
    match_instances,
    score_classes,
)
from pictrain.evaluate.predict import coco_results, predict, to_evaluation
from pictrain.platform.base import Classification, Evaluation

log = logging.getLogger(__name__)

# Evaluation files per COCO kind: coco_stats.json, coco_stats_segm.json...
FILE_TAIL = {"bbox": "", "segm": "_segm", "keypoints": "_keypoints", "obb": ""}
CONFUSION_MATRIX = "test/confusion-matrix"


@dataclass
class TestEvaluation:
    """Everything the test split gives the platform: values, tables, plots and evaluations."""

    values: dict[str, float] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    heatmaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)  # IMAGE log name -> file
    evaluations: list[Evaluation] = field(default_factory=list)
    scored: Scored | None = None  # each prediction right or wrong (the operating point's input)
    # pose: predictions kept out of `evaluations`, of labels without a skeleton (a MULTI
    # version's rectangle-only labels take no keypoints on the platform)
    unsent: int = 0


@dataclass(frozen=True)
class Predictor:
    """A model as the evaluation sees it: instances per image (detect, segment), or each
    image's five best classes with their probabilities (classify)."""

    instances: Callable[[list[EvalImage]], Iterator[tuple[EvalImage, list[Instance]]]]
    top5: Callable[[list[Path]], Iterator[list[tuple[int, float]]]]


def weights_predictor(weights: Path, image_size: int, device: str) -> Predictor:
    """ultralytics' own inference on the trained `.pt` weights."""
    return Predictor(
        instances=lambda images: predict(weights, images, image_size, device),
        top5=lambda paths: predict_top5(weights, paths, image_size, device),
    )


def export_predictor(path: Path) -> Predictor:
    """An export (any format: `pictrain.evaluate.runtimes`), run as a deployment runs it."""
    from pictrain.evaluate.onnx_model import OnnxModel

    model = OnnxModel.load(path)
    return Predictor(
        instances=lambda images: (
            (image, model.predict(image.path, conf=SCORING_CONFIDENCE)) for image in images
        ),
        top5=lambda paths: (
            [(i.cls, i.score) for i in model.predict(path, conf=0.0)] for path in paths
        ),
    )


def evaluate_test_split(
    task: str,
    predictor: Predictor,
    dataset: PreparedDataset,
    thresholds: Thresholds,
    out_dir: Path,
) -> TestEvaluation:
    """Scored on the whole ranking (COCO, top-5); evaluations keep what `thresholds` keep."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not task_spec(task).scored:
        return _classification(predictor, dataset, thresholds, out_dir)
    return _instances(task, predictor, dataset, thresholds, out_dir)


def score_split(task: str, predictor: Predictor, dataset: PreparedDataset, split: str) -> Scored:
    """Each prediction on `split` right or wrong: what the operating point is chosen from."""
    spec = task_spec(task)
    if not spec.scored:
        labelled = read_class_split(dataset.root / split)
        top5 = predictor.top5([path for path, _ in labelled])
        return score_classes(
            [cls for _, cls in labelled], [row[0] for row in top5], len(dataset.names)
        )
    iou_type = spec.operating_iou
    truth, results = _predictions(predictor, dataset, split, (iou_type,))
    return match_instances(
        truth.datasets[iou_type], results[iou_type], truth.category_ids, iou_type
    )


def _predictions(
    predictor: Predictor,
    dataset: PreparedDataset,
    split: str,
    iou_types: tuple[IouType, ...],
    each: Callable[[EvalImage, list[Instance]], None] | None = None,
) -> tuple[GroundTruth, dict[str, list[dict[str, Any]]]]:
    """The split's ground truth and the predictions as COCO results per kind; `each` sees every
    image's instances as they come (they are not kept: masks are the size of the image)."""
    truth = build_ground_truth(
        dataset.indexes[split],
        dataset.summaries[split].written,
        dataset.images_dir(split),
        dataset.names,
        iou_types,
        dataset.keypoints,
    )
    if truth.left_out:
        reasons = ", ".join(f"{n} ({why})" for why, n in truth.left_out.items())
        log.warning("%s annotations not scored: %s", split, reasons)
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in iou_types}
    for image, instances in predictor.instances(truth.images):
        for iou_type in iou_types:
            results[iou_type].extend(coco_results(image, instances, truth.category_ids, iou_type))
        if each is not None:
            each(image, instances)
    return truth, results


def _instances(
    task: str,
    predictor: Predictor,
    dataset: PreparedDataset,
    thresholds: Thresholds,
    out_dir: Path,
) -> TestEvaluation:
    spec = task_spec(task)
    outcome = TestEvaluation()
    layout = dataset.keypoints
    skeletal = {dataset.names.index(label) for label in layout.labels} if layout else None

    def evaluation(image: EvalImage, instances: list[Instance]) -> None:
        name = dataset.source_name(image.path.name)
        if skeletal is not None:
            sent = [i for i in instances if i.cls in skeletal]
            unsent = (i for i in instances if i.cls not in skeletal)
            outcome.unsent += sum(1 for i in unsent if i.score >= thresholds.of(i.cls))
            instances = sent
        outcome.evaluations.append(
            to_evaluation(name, instances, dataset.names, thresholds, spec.evaluation_shape)
        )

    truth, results = _predictions(predictor, dataset, "test", spec.scored, evaluation)
    sigmas = dataset.keypoints.sigmas if dataset.keypoints else None  # those it trained with
    for iou_type in spec.scored:
        ground_truth = truth.datasets[iou_type]
        report = evaluate_coco(ground_truth, results[iou_type], iou_type, sigmas=sigmas)
        suffix, tail = IOU_SUFFIX[iou_type], FILE_TAIL[iou_type]
        log.info("test split, %d images, %s:\n%s", len(truth.images), iou_type, report.summary)
        # COCO's -1 means "nothing to measure" (e.g. no large objects): not a score to chart.
        outcome.values.update({f"{k}{suffix}": v for k, v in report.stats.items() if v >= 0})
        per_class = report.per_class_ap
        outcome.tables[f"test/per-class-AP{suffix}"] = {
            "columns": ["AP50-95"],
            "rows": list(per_class),
            "data": [[v] for v in per_class.values()],
        }
        _write(out_dir, f"ground_truth{tail}.json", ground_truth)
        _write(out_dir, f"coco_stats{tail}.json", report.stats)
        _write(out_dir, f"per_class_ap{tail}.json", per_class)
        _write(out_dir, f"predictions{tail}.json", results[iou_type])
    iou_type = spec.operating_iou
    outcome.scored = match_instances(
        truth.datasets[iou_type], results[iou_type], truth.category_ids, iou_type
    )
    return outcome


def _classification(
    predictor: Predictor, dataset: PreparedDataset, thresholds: Thresholds, out_dir: Path
) -> TestEvaluation:
    labelled = read_class_split(dataset.root / "test")
    paths = [path for path, _ in labelled]
    top5 = list(predictor.top5(paths))
    ranked = [[cls for cls, _ in row] for row in top5]
    report = classification_report([cls for _, cls in labelled], ranked, dataset.names)
    log.info(
        "test split, %d images: top-1 %.3f, top-5 %.3f",
        len(paths),
        report.accuracy_top1,
        report.accuracy_top5,
    )
    names = dataset.names
    per_class = report.per_class
    scored = score_classes([cls for _, cls in labelled], [row[0] for row in top5], len(names))
    outcome = TestEvaluation(
        scored=scored,
        values={"accuracy_top1": report.accuracy_top1, "accuracy_top5": report.accuracy_top5},
        tables={
            "test/per-class": {
                "columns": ["precision", "recall", "f1", "support"],
                "rows": list(per_class),
                "data": [list(metrics.values()) for metrics in per_class.values()],
            },
        },
        # Picsellia draws a HEATMAP as its confusion-matrix view (rows: true, columns: predicted).
        heatmaps={
            CONFUSION_MATRIX: {"categories": names, "values": report.confusion.tolist()},
        },
        plots={
            "test/confusion_matrix": plot_confusion(
                report.confusion,
                names,
                out_dir / "test_confusion_matrix.png",
                "test split confusion matrix (best weights)",
            )
        },
        # The top class where it reaches its class's threshold, else no class: what a
        # deployment at the operating point answers.
        evaluations=[
            Evaluation(
                file_name=dataset.source_name(path.name),
                classifications=[
                    Classification(names[cls], score)
                    for cls, score in row[:1]
                    if score >= thresholds.of(cls)
                ],
            )
            for path, row in zip(paths, top5, strict=True)
        ],
    )
    _write(out_dir, "classification_report.json", {**outcome.values, "per_class": per_class})
    _write(out_dir, "confusion_matrix.json", {"names": names, "matrix": report.confusion.tolist()})
    return outcome


def _write(out_dir: Path, name: str, content: Any) -> None:
    (out_dir / name).write_text(json.dumps(content, indent=1))
