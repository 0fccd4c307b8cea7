"""The operating point: the confidence threshold a deployed model keeps predictions at, chosen
from data, overall and per class.

On the val split, each prediction is matched to the ground truth as COCO matches it at IoU 0.5
(by score, each truth matched once, crowd regions ignored; classification: the top class right
or wrong), so precision and recall are known at every threshold. The threshold chosen is the
F1-best one, or with `target_precision` the lowest one whose precision reaches it (the most
recall at that precision). A class gets its own threshold from its val predictions when val
has truths of it, else the overall one. The test split then says what precision and recall
the model has at those thresholds (TABLE `operating-point`, `evaluation/operating_point.json`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from pictrain.config import IouType
from pictrain.evaluate.rotated import pair_ious

log = logging.getLogger(__name__)

TABLE = "operating-point"
MATCH_IOU = 0.5
FALLBACK_THRESHOLD = 0.25  # ultralytics' predict default, when val decides nothing
OVERALL = "all"
PER_CLASS_OVERALL = "all, per-class thresholds"


@dataclass(frozen=True)
class Scored:
    """Predictions as the operating point sees them: score, class index, whether it is right
    (matched a truth), and how many truths each class has."""

    scores: np.ndarray
    classes: np.ndarray
    correct: np.ndarray
    truths: np.ndarray  # per class index

    def of_class(self, cls: int) -> Scored:
        keep = self.classes == cls
        truths = np.zeros_like(self.truths)
        truths[cls] = self.truths[cls]
        return Scored(self.scores[keep], self.classes[keep], self.correct[keep], truths)

    def at(self, threshold: float) -> Rates:
        kept = self.scores >= threshold
        return Rates.of(int(self.correct[kept].sum()), int(kept.sum()), int(self.truths.sum()))

    def at_each(self, thresholds: Thresholds) -> Rates:
        kept = self.scores >= thresholds.of_each(self.classes)
        return Rates.of(int(self.correct[kept].sum()), int(kept.sum()), int(self.truths.sum()))


@dataclass(frozen=True)
class Rates:
    precision: float
    recall: float
    f1: float
    kept: int  # predictions at or above the threshold
    truths: int

    @classmethod
    def of(cls, right: int, kept: int, truths: int) -> Rates:
        precision = right / kept if kept else 0.0
        recall = right / truths if truths else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1, kept, truths)

    def row(self) -> list[float]:
        return [self.precision, self.recall, self.f1]


@dataclass(frozen=True)
class Thresholds:
    """The operating point: one threshold overall (what a deployment takes), one per class."""

    overall: float
    per_class: dict[str, float]
    names: list[str]
    chosen_by: str = "F1-best on val"

    @classmethod
    def fixed(cls, value: float, names: list[str], why: str) -> Thresholds:
        return cls(value, dict.fromkeys(names, value), names, why)

    def of(self, cls: int) -> float:
        return self.per_class.get(self.names[cls], self.overall)

    @property
    def lowest(self) -> float:
        """What a model is asked for, before each class's threshold is applied."""
        return min([self.overall, *self.per_class.values()])

    def of_each(self, classes: np.ndarray) -> np.ndarray:
        table = np.array([self.of(k) for k in range(len(self.names))] or [self.overall])
        return table[classes] if classes.size else np.zeros(0)

    def record(self) -> dict[str, Any]:
        """What ONNX metadata and config.yaml carry."""
        return {"threshold": self.overall, "per_class": self.per_class, "chosen_by": self.chosen_by}

    @classmethod
    def from_record(cls, record: Mapping[str, Any], names: list[str]) -> Thresholds:
        per_class = {str(k): float(v) for k, v in dict(record.get("per_class") or {}).items()}
        return cls(float(record["threshold"]), per_class, names, str(record.get("chosen_by", "")))


def to_keep(given: float | None, flag: str, exported: Any, names: list[str]) -> Thresholds:
    """What a prediction of an export is kept at: `given` (the user's `flag`), else the
    operating point the export carries (`pictrain.exports.metadata`), else ultralytics'
    default. An export is untrusted: a record that makes no sense is not used, loudly."""
    if given is not None:
        return Thresholds.fixed(given, names, f"{flag} {given}")
    if exported is not None:
        try:
            point = Thresholds.from_record(exported, names)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("the export's operating point is unreadable: not used")
        else:
            if all(0 <= value <= 1 for value in [point.overall, *point.per_class.values()]):
                how = point.chosen_by or "chosen at training"
                return replace(point, chosen_by=f"the model's operating point ({how}), per class")
            log.warning("the export's operating point is out of 0-1: not used")
    why = f"{FALLBACK_THRESHOLD}, ultralytics' default (the export carries no operating point)"
    return Thresholds.fixed(FALLBACK_THRESHOLD, names, why)


def choose(scored: Scored, names: list[str], target_precision: float | None) -> Thresholds:
    """From the val split's predictions."""
    how = (
        f"lowest threshold with precision >= {target_precision} on val"
        if target_precision is not None
        else "F1-best on val"
    )
    overall = _threshold(scored, target_precision)
    if overall is None:
        log.warning(
            "operating point: no val prediction matches the ground truth; threshold %s "
            "(ultralytics' default)",
            FALLBACK_THRESHOLD,
        )
        return Thresholds.fixed(FALLBACK_THRESHOLD, names, "no val prediction was right")
    per_class = {}
    for cls, name in enumerate(names):
        mine = scored.of_class(cls)
        found = _threshold(mine, target_precision) if mine.truths[cls] else None
        per_class[name] = found if found is not None else overall
    return Thresholds(overall, per_class, names, how)


def _threshold(scored: Scored, target_precision: float | None) -> float | None:
    """None when no prediction is right (nothing to choose from)."""
    if not scored.correct.any():
        return None
    order = np.argsort(-scored.scores, kind="stable")
    scores, right = scored.scores[order], scored.correct[order]
    # Keeping every prediction scoring >= scores[i]: ties kept together (the last of each run).
    last = np.r_[scores[1:] != scores[:-1], True]
    cum_right = np.cumsum(right)[last]
    kept = np.arange(1, len(scores) + 1)[last]
    thresholds = scores[last]
    precision = cum_right / kept
    recall = cum_right / max(int(scored.truths.sum()), 1)
    if target_precision is not None:
        reaching = np.nonzero(precision >= target_precision)[0]
        if reaching.size:
            return float(thresholds[reaching[-1]])
        log.warning(
            "operating point: no threshold reaches precision %s on val (at most %.3f): the "
            "F1-best one instead",
            target_precision,
            float(precision.max()),
        )
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return float(thresholds[int(np.argmax(f1))])  # the first maximum: the highest threshold


@dataclass
class Report:
    """Precision and recall on test at the operating point: the table and the JSON file."""

    thresholds: Thresholds
    overall: Rates
    overall_per_class: Rates
    classes: dict[str, Rates] = field(default_factory=dict)

    @classmethod
    def of(cls, thresholds: Thresholds, test: Scored) -> Report:
        classes = {
            name: test.of_class(k).at(thresholds.of(k))
            for k, name in enumerate(thresholds.names)
            if test.truths[k] or (test.classes == k).any()
        }
        return cls(thresholds, test.at(thresholds.overall), test.at_each(thresholds), classes)

    def table(self) -> dict[str, Any]:
        t = self.thresholds
        rows = [
            (OVERALL, t.overall, self.overall),
            (PER_CLASS_OVERALL, None, self.overall_per_class),
            *((name, t.per_class[name], rates) for name, rates in self.classes.items()),
        ]
        return {
            "columns": ["threshold", "test precision", "test recall", "test F1"],
            "rows": [name for name, _, _ in rows],
            "data": [[threshold, *rates.row()] for _, threshold, rates in rows],
        }

    def record(self) -> dict[str, Any]:
        def rates(r: Rates) -> dict[str, Any]:
            return {
                "precision": r.precision,
                "recall": r.recall,
                "f1": r.f1,
                "kept": r.kept,
                "truths": r.truths,
            }

        return {
            **self.thresholds.record(),
            "test": {
                OVERALL: rates(self.overall),
                PER_CLASS_OVERALL: rates(self.overall_per_class),
                "per_class": {name: rates(r) for name, r in self.classes.items()},
            },
        }

    @property
    def summary(self) -> str:
        r = self.overall
        return (
            f"operating point ({self.thresholds.chosen_by}): threshold "
            f"{self.thresholds.overall:.3f}, test precision {r.precision:.3f}, recall "
            f"{r.recall:.3f}"
        )


def threshold_of_table(table: Mapping[str, Any]) -> float:
    """The overall threshold of a logged `operating-point` table (what `pictrain deploy` sets);
    KeyError / ValueError when the table is not one."""
    row = list(table["rows"]).index(OVERALL)
    return float(table["data"][row][0])


# --- matching -----------------------------------------------------------------------------------


def match_instances(
    ground_truth: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    category_ids: Sequence[int],
    iou_type: IouType,
) -> Scored:
    """COCO's matching at IoU 0.5, area "all" (`COCOeval.evaluateImg`): within an image and a
    class, detections by descending score each take the best-overlapping truth not taken yet;
    crowd truths may be taken again and a detection on one is neither right nor wrong. "obb":
    by the rotated IoU of the oriented boxes' corners (`poly`)."""
    index = {cid: k for k, cid in enumerate(category_ids)}
    key = {"bbox": "bbox", "segm": "segmentation", "obb": "poly"}[iou_type]
    truths: dict[tuple[int, int], list[Mapping[str, Any]]] = defaultdict(list)
    for annotation in ground_truth["annotations"]:
        truths[annotation["image_id"], annotation["category_id"]].append(annotation)
    found: dict[tuple[int, int], list[Mapping[str, Any]]] = defaultdict(list)
    for result in results:
        found[result["image_id"], result["category_id"]].append(result)
    counts = np.zeros(len(category_ids), dtype=np.int64)
    for (_, category_id), objects in truths.items():
        counts[index[category_id]] += sum(1 for a in objects if not a["iscrowd"])
    scores, classes, correct = [], [], []
    for pair, detections in found.items():
        outcome = _match(detections, truths.get(pair, []), key)
        for detection, right in zip(detections, outcome, strict=True):
            if right is None:  # on a crowd region: ignored
                continue
            scores.append(detection["score"])
            classes.append(index[pair[1]])
            correct.append(right)
    return Scored(
        np.array(scores, dtype=np.float64),
        np.array(classes, dtype=np.int64),
        np.array(correct, dtype=bool),
        counts,
    )


def _match(
    detections: list[Mapping[str, Any]], truths: list[Mapping[str, Any]], key: str
) -> list[bool | None]:
    """Per detection (in the given order): right, wrong, or None (ignored, on a crowd)."""
    outcome: list[bool | None] = [False] * len(detections)
    if not truths:
        return outcome
    truths = sorted(truths, key=lambda a: a["iscrowd"])  # crowds last, as COCO sorts them
    crowd = [bool(a["iscrowd"]) for a in truths]
    order = sorted(range(len(detections)), key=lambda i: -detections[i]["score"])
    ious = _ious([detections[i][key] for i in order], [a[key] for a in truths], crowd, key)
    taken = [False] * len(truths)
    for row, i in enumerate(order):
        best, chosen = min(MATCH_IOU, 1 - 1e-10), -1
        for g in range(len(truths)):
            if taken[g] and not crowd[g]:
                continue
            if chosen > -1 and not crowd[chosen] and crowd[g]:
                break
            if ious[row, g] < best:
                continue
            best, chosen = ious[row, g], g
        if chosen > -1:
            taken[chosen] = True
            outcome[i] = None if crowd[chosen] else True
    return outcome


def _ious(found: list[Any], truths: list[Any], crowd: list[bool], key: str) -> np.ndarray:
    """(detections, truths) overlaps: pycocotools' for boxes and masks, the rotated IoU for
    oriented boxes; a crowd truth's overlap is the share of the detection it covers."""
    if key != "poly":
        return np.asarray(mask_utils.iou(found, truths, crowd)).reshape(len(found), len(truths))
    rows, cols = np.meshgrid(np.arange(len(found)), np.arange(len(truths)), indexing="ij")
    first = np.asarray(found, np.float64).reshape(-1, 4, 2)[rows.ravel()]
    second = np.asarray(truths, np.float64).reshape(-1, 4, 2)[cols.ravel()]
    pairs = pair_ious(first, second, np.asarray(crowd, bool)[cols.ravel()])
    return pairs.reshape(len(found), len(truths))


def score_classes(truth: Sequence[int], top1: Sequence[tuple[int, float]], classes: int) -> Scored:
    """Classification: each image's top class and its probability, right or wrong."""
    predicted = np.array([cls for cls, _ in top1], dtype=np.int64)
    actual = np.array(truth, dtype=np.int64)
    return Scored(
        np.array([score for _, score in top1], dtype=np.float64),
        predicted,
        predicted == actual,
        np.bincount(actual, minlength=classes) if actual.size else np.zeros(classes, np.int64),
    )
