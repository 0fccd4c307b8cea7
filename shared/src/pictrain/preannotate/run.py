"""The pre-annotation pass, the same over a dataset version and over a local folder: a batch of
assets at a time (fetched, predicted, written, scored, its files removed), so memory and disk
hold one batch whatever the version's size; one progress line per batch; an asset that cannot
be read or written is counted, never the job's failure. The target (`Target`) is where the
assets live: it says which a human annotated, writes the annotations and keeps the scores.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from pictrain.evaluate.onnx_model import read_image
from pictrain.platform.evaluations import Unsendable
from pictrain.preannotate.model import Predictor
from pictrain.preannotate.params import PreannotateParameters
from pictrain.preannotate.scoring import Candidate, Ranking, Signals, fingerprint, measure
from pictrain.preannotate.shapes import Found, annotations

log = logging.getLogger(__name__)

EXAMPLES = 3
PROGRESS_EVERY_S = 10.0  # one progress line per this many seconds at most
# "new": no annotation; "human": annotated, not by this processing; "ours": pre-annotated by
# an earlier run (its marker tag), reviewed or not yet.
State = Literal["new", "human", "ours"]


@dataclass
class Item:
    key: str  # asset id, or the file's path in the folder
    name: str  # for messages
    path: Path | None  # None: the file could not be fetched (`problem` says why)
    state: State = "new"
    problem: str | None = None
    size: tuple[int, int] = (0, 0)  # width, height, once read


class Target(Protocol):
    labels: list[str]  # the label names an annotation may carry
    form: str  # what a prediction is written as there (`shapes.written_as`)

    def batches(self, size: int) -> Iterator[list[Item]]: ...

    def write(self, found: list[tuple[Item, list[Found]]], replace: bool) -> dict[str, str]:
        """Annotations for these items (possibly none); returns the refused ones, by key."""
        ...

    def score(self, item: Item, signals: Signals) -> None: ...

    def finish(self, picks: list[Candidate]) -> list[str]: ...


@dataclass
class Summary:
    assets: int = 0
    written: int = 0  # assets annotated by this run
    shapes: int = 0  # annotations written
    empty: int = 0  # nothing kept at the thresholds
    human: int = 0  # a human's annotation, left as it is
    replaced: int = 0  # a human's annotation, replaced (replace_annotations)
    earlier: int = 0  # pre-annotated by an earlier run
    scored: int = 0
    unknown_labels: Counter[str] = field(default_factory=Counter)
    unsendable: Unsendable = field(default_factory=Unsendable)
    failures: Counter[str] = field(default_factory=Counter)  # kind -> assets
    examples: dict[str, list[str]] = field(default_factory=dict)  # kind -> the first few

    def fail(self, kind: str, item: Item, reason: str) -> None:
        self.failures[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES:
            shown.append(f"{item.name}: {reason}")

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def progress(self, seconds: float) -> str:
        rate = self.assets / seconds if seconds > 0 else 0.0
        return (
            f"pre-annotation: {self.assets} assets ({rate:.1f}/s): {self.written} annotated, "
            f"{self.human} a human's left as they are, {self.earlier} pre-annotated before, "
            f"{self.empty} with nothing kept, {self.failed} failed"
        )

    def lines(self) -> list[str]:
        lines = [
            f"{self.assets} assets: {self.written} pre-annotated now ({self.shapes} "
            f"annotations, {self.replaced} of them replacing a human's), {self.empty} with no "
            f"prediction kept, {self.human} annotated by a human and left as they are, "
            f"{self.earlier} pre-annotated by an earlier run"
        ]
        if self.unknown_labels:
            listed = ", ".join(f"{n} ({c})" for n, c in sorted(self.unknown_labels.items()))
            lines.append(
                f"{sum(self.unknown_labels.values())} predictions dropped, their label not in "
                f"the version: {listed} (label_matching_strategy add creates them)"
            )
        if self.unsendable:
            lines.append(f"not written (the platform refuses them): {self.unsendable}")
        for kind, count in self.failures.items():
            lines.append(f"{count} assets {kind}, e.g. {'; '.join(self.examples[kind])}")
        return lines


def preannotate(
    target: Target, predictor: Predictor, params: PreannotateParameters
) -> tuple[Summary, list[str]]:
    """The pass; returns its summary and what the target did with the picks."""
    summary = Summary()
    ranking = Ranking(params.to_label)
    known = set(target.labels)
    started = logged = time.monotonic()
    for batch in target.batches(params.batch_size):
        found: list[tuple[Item, list[Found]]] = []
        for item in batch:
            summary.assets += 1
            annotations_ = _visit(item, predictor, params, known, summary, ranking, target)
            if annotations_ is not None:
                found.append((item, annotations_))
        _write(target, found, params.replace_annotations, summary)
        if time.monotonic() - logged >= PROGRESS_EVERY_S:
            logged = time.monotonic()
            log.info("%s", summary.progress(logged - started))
    log.info("%s", summary.progress(time.monotonic() - started))
    summary.scored = ranking.scored
    if not params.to_label:
        return summary, []
    picks, skipped = ranking.select()
    done = target.finish(picks)
    if skipped:
        done.append(f"{skipped} high scorers passed over as near-duplicates of labelled images")
    return summary, done


def _visit(
    item: Item,
    predictor: Predictor,
    params: PreannotateParameters,
    known: set[str],
    summary: Summary,
    ranking: Ranking,
    target: Target,
) -> list[Found] | None:
    """The annotations to write for this item (None: nothing to write), its score kept."""
    if item.path is None:
        summary.fail("not fetched", item, item.problem or "no file")
        return None
    try:
        pixels = read_image(item.path)
    except ValueError as exc:
        summary.fail("unreadable", item, str(exc).replace(str(item.path), "the file"))
        return None
    item.size = (pixels.shape[1], pixels.shape[0])
    scoring = params.to_label > 0
    if item.state == "human" and not params.replace_annotations:
        summary.human += 1
        if scoring:
            ranking.labelled(fingerprint(pixels))
        return None
    candidates = predictor.candidates(pixels)
    kept = predictor.kept(candidates)
    found = annotations(target.form, kept, predictor.names, item.size, summary.unsendable)
    for annotation in found:
        if annotation.label not in known:
            summary.unknown_labels[annotation.label] += 1
    found = [a for a in found if a.label in known]
    if scoring:
        mirrored = None
        if params.flip_consistency:
            mirrored = predictor.kept(predictor.candidates(np.ascontiguousarray(pixels[:, ::-1])))
        levels = [predictor.thresholds.of(k) for k in range(len(predictor.names))]
        signals = measure(predictor.task, candidates, kept, mirrored, levels, item.size[0])
        ranking.add(item.key, item.name, fingerprint(pixels), signals)
        target.score(item, signals)
    if item.state == "ours":
        summary.earlier += 1
        return None
    return found


def _write(
    target: Target, found: list[tuple[Item, list[Found]]], replace: bool, summary: Summary
) -> None:
    for replacing in (False, True):
        group = [(i, a) for i, a in found if (i.state == "human") == replacing]
        if not group:
            continue
        refused = target.write(group, replacing)
        for item, annotations_ in group:
            if item.key in refused:
                summary.fail("refused by the platform", item, refused[item.key])
            elif annotations_:
                summary.written += 1
                summary.replaced += replacing
                summary.shapes += len(annotations_)
            else:
                summary.empty += 1
