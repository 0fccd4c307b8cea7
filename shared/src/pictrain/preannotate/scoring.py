"""What to label next: each image no human labelled scored by how much the model would learn
from it, and the top N picked without near-duplicates of what is labelled or already picked.

Three uncertainty signals, each in 0-1 (1: most worth a human's time), averaged over those the
model's head gives; why these, from the active-learning literature: docs/preannotate.md.
- confidence: how close the least certain prediction is to its class's threshold (a
  detection at the threshold could go either way; classification: 1 - the top probability);
- margin: how close the second-best class comes to the best one (its score over the best's);
- flip: how much the predictions on the mirror image disagree with the plain ones.
Diversity: a cheap embedding of the picture, its 8 x 8 colour thumbnail (mean removed, unit
length, 192 bytes); an image whose embedding is within `NEAR_DUPLICATE_COSINE` of a labelled or
an already picked one's is not picked (a burst of near-identical frames is labelled once).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import cv2
import numpy as np

from pictrain.evaluate.instance import Instance

# Cosine of two thumbnails. On the synthetic shapes, re-encoded and brightness-shifted copies
# stay above 0.99 and different pictures below 0.88 (docs/preannotate.md); a perceptual hash
# (dHash) mixed the two up there, its bits dominated by the smooth backgrounds.
NEAR_DUPLICATE_COSINE = 0.95
THUMBNAIL = 8
_SCALE = 127  # an embedding is stored as int8: unit vector x 127
SPARE_PER_PICK = 4  # candidates kept per image to pick: room for near-duplicates skipped
MIN_KEPT = 256


@dataclass(frozen=True)
class Signals:
    confidence: float
    margin: float | None  # None: the head gives one class score per prediction
    flip: float | None  # None: not asked (flip_consistency false)

    @property
    def score(self) -> float:
        values = [v for v in (self.confidence, self.margin, self.flip) if v is not None]
        return sum(values) / len(values)

    def record(self) -> dict[str, float | None]:
        """Rounded, as written beside the asset."""
        return {
            "score": round(self.score, 4),
            "confidence": round(self.confidence, 4),
            "margin": None if self.margin is None else round(self.margin, 4),
            "flip": None if self.flip is None else round(self.flip, 4),
        }


def measure(
    task: str,
    candidates: list[Instance],
    kept: list[Instance],
    mirrored: list[Instance] | None,
    threshold_of: list[float],
    width: int,
) -> Signals:
    """`candidates`: down to the scoring floor; `kept`: at the thresholds (`threshold_of` by
    class index); `mirrored`: what was kept on the image flipped left-right, or None."""
    flip = None if mirrored is None else disagreement(task, kept, unmirror(mirrored, width))
    confidence = _confidence(task, candidates, threshold_of)
    return Signals(confidence, _margin(task, candidates, kept), flip)


def _confidence(task: str, candidates: list[Instance], threshold_of: list[float]) -> float:
    if task == "classify":
        return 1.0 - (candidates[0].score if candidates else 0.0)

    def closeness(instance: Instance) -> float:
        """1 at the threshold, down to 0 at a score of 0 and of 1 (linearly on each side)."""
        threshold, score = threshold_of[instance.cls], instance.score
        return score / threshold if score < threshold else (1.0 - score) / (1.0 - threshold)

    return max((closeness(i) for i in candidates), default=0.0)


def _margin(task: str, candidates: list[Instance], kept: list[Instance]) -> float | None:
    """Over what is kept (classification: the top class, kept or not): a weak detection's two
    best class scores are both low, which says nothing about which class it is."""
    judged = candidates[:1] if task == "classify" else kept
    rated = [i for i in judged if i.runner_up is not None]
    if judged and not rated:
        return None
    return max((min(i.runner_up / i.score, 1.0) for i in rated if i.score > 0), default=0.0)


def unmirror(instances: list[Instance], width: int) -> list[Instance]:
    """Boxes predicted on the mirror image, back in the image's own frame."""
    return [
        Instance(i.cls, (width - i.box[0] - i.box[2], *i.box[1:]), None, i.score) for i in instances
    ]


def disagreement(task: str, plain: list[Instance], mirrored: list[Instance]) -> float:
    """0 when both see the same (same classes, boxes overlapping fully), 1 when nothing
    matches. Boxes are matched greedily by IoU within a class; each unmatched one counts 0."""
    if task == "classify":
        if not plain or not mirrored:
            return float(bool(plain) != bool(mirrored))
        if plain[0].cls != mirrored[0].cls:
            return 1.0
        return abs(plain[0].score - mirrored[0].score)
    if not plain and not mirrored:
        return 0.0
    pairs = sorted(
        (
            (_iou(a.box, b.box), i, j)
            for i, a in enumerate(plain)
            for j, b in enumerate(mirrored)
            if a.cls == b.cls
        ),
        reverse=True,
    )
    used_plain: set[int] = set()
    used_mirrored: set[int] = set()
    overlap = 0.0
    for iou, i, j in pairs:
        if iou > 0 and i not in used_plain and j not in used_mirrored:
            used_plain.add(i)
            used_mirrored.add(j)
            overlap += iou
    return 1.0 - overlap / max(len(plain), len(mirrored))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(width, 0.0) * max(height, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def fingerprint(pixels: np.ndarray) -> bytes:
    """The picture's embedding: its colour thumbnail, mean removed, unit length, as int8."""
    small = cv2.resize(pixels, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA)
    vector = small.astype(np.float32).ravel()
    vector -= vector.mean()
    vector /= float(np.linalg.norm(vector)) or 1.0
    return np.round(vector * _SCALE).astype(np.int8).tobytes()


def similarity(digest: bytes, others: np.ndarray) -> np.ndarray:
    """Cosine of `digest` with each row of `others` (int8 embeddings)."""
    one = np.frombuffer(digest, np.int8).astype(np.int32)
    return (others.astype(np.int32) @ one) / float(_SCALE * _SCALE)


@dataclass(frozen=True, order=True)
class Candidate:
    score: float
    key: str = field(compare=True)
    name: str = field(compare=False)
    digest: bytes = field(compare=False)
    signals: Signals = field(compare=False)


@dataclass
class Ranking:
    """The best candidates seen so far (bounded: `wanted` x SPARE_PER_PICK), and the
    embeddings of every labelled image (192 bytes each)."""

    wanted: int
    _best: list[Candidate] = field(default_factory=list)
    _labelled: bytearray = field(default_factory=bytearray)
    scored: int = 0

    def labelled(self, digest: bytes) -> None:
        self._labelled += digest

    def add(self, key: str, name: str, digest: bytes, signals: Signals) -> None:
        self.scored += 1
        candidate = Candidate(signals.score, key, name, digest, signals)
        keep = max(self.wanted * SPARE_PER_PICK, MIN_KEPT)
        if len(self._best) < keep:
            heapq.heappush(self._best, candidate)
        elif candidate > self._best[0]:
            heapq.heapreplace(self._best, candidate)

    def select(self) -> tuple[list[Candidate], int]:
        """The top `wanted` by score, none a near-duplicate of a labelled or picked image;
        and how many were passed over as near-duplicates."""
        width = THUMBNAIL * THUMBNAIL * 3
        seen = np.frombuffer(bytes(self._labelled), np.int8).reshape(-1, width)
        picked: list[Candidate] = []
        skipped = 0
        for candidate in sorted(self._best, key=lambda c: (-c.score, c.key)):
            if len(picked) == self.wanted:
                break
            if seen.size and similarity(candidate.digest, seen).max() >= NEAR_DUPLICATE_COSINE:
                skipped += 1
                continue
            picked.append(candidate)
            seen = np.vstack([seen, np.frombuffer(candidate.digest, np.int8)[None]])
        return picked, skipped
