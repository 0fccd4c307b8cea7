"""`pictrain preannotate` in the image: the processing job Picsellia runs on a dataset version.

`job_id` -> the job's processing context (the version, the model version, the parameters);
everything that can be wrong is checked before anything is written (parameters first, before
any download); then the pass (`run.preannotate`) writes the predictions of the model version's
`model-latest` as annotations and tags the assets to label next.

Whose annotation is an asset's: an asset this processing annotates is tagged `pre-annotated`
first, then written; so an annotated asset without the tag is a human's (left as it is unless
`replace_annotations`), one with it was pre-annotated by an earlier run (never written again,
reviewed or not). A reviewer who has checked a pre-annotation removes the tag: the asset is
then labelled, for the scores too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pictrain.errors import (
    INTERNAL_ERROR_EXIT_CODE,
    JobInterrupted,
    PlatformError,
    UserError,
    user_facing,
)
from pictrain.exportformats import MODEL_ARTIFACT
from pictrain.platform.connect import connect
from pictrain.platform.env import PicselliaContext
from pictrain.platform.processing import (
    AssetRef,
    AssetsRefused,
    VersionAssets,
    download_model_file,
    launched_on,
    read_context,
)
from pictrain.platform.retry import RetryPolicy
from pictrain.platform.session import Platform
from pictrain.preannotate.checks import (
    check_model_file,
    check_skeletons,
    check_task,
    check_types,
    labels_to_create,
)
from pictrain.preannotate.model import Predictor
from pictrain.preannotate.params import PreannotateParameters, read_parameters
from pictrain.preannotate.run import Item, preannotate
from pictrain.preannotate.scoring import Candidate, Signals
from pictrain.preannotate.shapes import Found, written_as
from pictrain.runstatus import JobStatus, report_failure, write_status
from pictrain.stopsignal import signals_raise

log = logging.getLogger(__name__)

PREANNOTATED_TAG = "pre-annotated"  # whose annotation an asset holds (module docstring)
METADATA_PREFIX = "to_label_"  # the score's keys in the asset's data custom metadata
SHOWN_PICKS = 5


def run_job(context: PicselliaContext, run_dir: Path) -> int:
    """The job to its end; its exit code (0, 2 bad input, 3 platform, 143/130 stopped)."""
    with signals_raise():
        try:
            write_status(run_dir, JobStatus.RUNNING)
            for line in _run(context, run_dir):
                log.info("%s", line)
            write_status(run_dir, JobStatus.DONE, exit_code=0)
            return 0
        except (UserError, PlatformError) as exc:
            return report_failure(run_dir, str(exc), exc.exit_code)
        except JobInterrupted as exc:
            return report_failure(run_dir, exc.reason, exc.exit_code)
        except Exception as exc:
            known = user_facing(exc, run_dir)
            if known is not None:
                return report_failure(run_dir, str(known), known.exit_code)
            log.exception("internal error")
            reason = f"internal error: {type(exc).__name__}: {exc}"
            return report_failure(run_dir, reason, INTERNAL_ERROR_EXIT_CODE)


def _run(context: PicselliaContext, run_dir: Path) -> list[str]:
    if not context.job_id:
        raise UserError("no job_id: a pre-annotation runs as a Picsellia processing job")
    policy = RetryPolicy()
    platform = Platform(connect(context, policy), policy)
    client = platform.client
    job = platform.find("the job", client.get_job_by_id, context.job_id)
    if job is None:
        raise UserError(f"job {context.job_id} not found in this organization")
    processing = read_context(platform, job)
    parsed = read_parameters(processing.parameters)  # bad values fail before any download
    params = parsed.params
    for key, why in parsed.ignored.items():
        log.warning("parameter %r ignored: %s", key, why)
    version = platform.find(
        "the dataset version", client.get_dataset_version_by_id, processing.dataset_version_id
    )
    if version is None:
        raise UserError(f"dataset version {processing.dataset_version_id} not found")
    if processing.model_version_id is None:
        raise UserError("the processing was launched without a model version (model_version_id)")
    model_version = platform.find(
        "the model version", client.get_model_version_by_id, processing.model_version_id
    )
    if model_version is None:
        raise UserError(f"model version {processing.model_version_id} not found")
    model_label = f"{model_version.name}"
    assets = VersionAssets(platform, version, launched_on(platform, processing))
    check_types(assets.kind, assets.label, str(model_version.type.value), model_label)
    onnx_name = check_model_file(platform, model_version, model_label)
    if not next(assets.pages(1), None):
        raise UserError(f"dataset version {assets.label} has no assets to pre-annotate")
    path = download_model_file(platform, model_version, MODEL_ARTIFACT, run_dir / "model")
    if path.name != onnx_name:  # untrusted: only ONNX is run, by onnxruntime
        raise PlatformError(f"{MODEL_ARTIFACT} changed from {onnx_name} to {path.name}: not run")
    what = f"{MODEL_ARTIFACT} of model version {model_label}"
    predictor = Predictor.load(path, what, params.confidence_threshold, params.to_label > 0)
    check_task(assets.kind, assets.label, predictor.task)
    labels = assets.label_names()
    strategy = params.label_matching_strategy
    missing = labels_to_create(predictor.names, labels, strategy, assets.label)
    _compare_labelmaps(model_version, predictor.names)
    layout = predictor.model.skeleton
    category_keys = check_skeletons(predictor.task, layout, assets.skeletons(), assets.label)
    log.info(
        "pre-annotating dataset version %s with model version %s (%s, %s), keeping predictions "
        "at %s",
        assets.label,
        model_label,
        predictor.task,
        ", ".join(predictor.names),
        predictor.thresholds.chosen_by,
    )
    created = [name for name in missing if assets.add_label(name)]
    if created:
        log.info("labels created in %s: %s", assets.label, ", ".join(created))
    target = VersionTarget(
        assets,
        labels + missing,
        written_as(predictor.task, assets.kind),
        category_keys,
        run_dir / "batch",
        params,
        model_version,
    )
    summary, done = preannotate(target, predictor, params)
    return summary.lines() + done


def _compare_labelmaps(model_version: Any, names: list[str]) -> None:
    """The export's labelmap is the truth (its output order); a version's labels that say
    otherwise are worth a warning, not a failure."""
    given = model_version.labels or {}
    listed = [given[k] for k in sorted(given, key=lambda k: int(k))] if given else []
    if listed and listed != names:
        log.warning(
            "model version %s's labels %s differ from its export's labelmap %s: the export's "
            "are used",
            model_version.name,
            listed,
            names,
        )


class VersionTarget:
    """The dataset version as the pass's target (`run.Target`)."""

    def __init__(
        self,
        assets: VersionAssets,
        labels: list[str],
        form: str,
        category_keys: dict[str, Any],
        folder: Path,
        params: PreannotateParameters,
        model_version: Any,
    ) -> None:
        self.assets = assets
        self.labels = labels
        self.form = form  # what a prediction is written as in this version (shapes.written_as)
        self.category_keys = category_keys  # pose: the point layout every category carries
        self.folder = folder
        self.params = params
        self.model_version_id = str(model_version.id)
        self._page: dict[str, AssetRef] = {}

    def batches(self, size: int) -> Iterator[list[Item]]:
        for page in self.assets.pages(size):
            annotated = self.assets.annotated(page)
            ours = self.assets.tagged([a for a in page if a.id in annotated], PREANNOTATED_TAG)
            missing = self.assets.download(page, self.folder)
            self._page = {a.id: a for a in page}
            yield [
                Item(
                    a.id,
                    a.filename,
                    None if a.id in missing else self.folder / a.saved_as,
                    state="new" if a.id not in annotated else "ours" if a.id in ours else "human",
                    problem=missing.get(a.id),
                )
                for a in page
            ]
            for a in page:
                (self.folder / a.saved_as).unlink(missing_ok=True)
                if a.id in annotated and a.id not in ours and not self.params.replace_annotations:
                    self.assets.forget(a, METADATA_PREFIX)  # labelled now: a score no more

    def write(self, found: list[tuple[Item, list[Found]]], replace: bool) -> dict[str, str]:
        """The pre-annotated tag first (whose annotation it is), then the annotations; a
        batch the platform refuses is written again one asset at a time, so one bad asset is
        that asset's failure."""
        annotated = [(item, annotations) for item, annotations in found if annotations]
        if not annotated:
            return {}
        self.assets.tag([self._page[item.key] for item, _ in annotated], PREANNOTATED_TAG)
        try:
            self._write(annotated, replace)
            return {}
        except AssetsRefused as exc:
            if len(annotated) == 1:
                return {annotated[0][0].key: str(exc)}
        refused = {}
        for one in annotated:
            try:
                self._write([one], replace)
            except AssetsRefused as exc:
                refused[one[0].key] = str(exc)
        return refused

    def _write(self, found: list[tuple[Item, list[Found]]], replace: bool) -> None:
        categories = {name: number for number, name in enumerate(sorted(self.labels), 1)}
        images, annotations = [], []
        for image_id, (item, found_here) in enumerate(found, 1):
            width, height = item.size
            file_name = self._page[item.key].saved_as
            images.append(
                {"id": image_id, "file_name": file_name, "width": width, "height": height}
            )
            for annotation in found_here:
                number = len(annotations) + 1
                annotations.append(annotation.coco(number, image_id, categories[annotation.label]))
        used = {a["category_id"] for a in annotations}
        document = {
            "images": images,
            "annotations": annotations,
            "categories": [
                {"id": k, "name": n, **self.category_keys}
                for n, k in categories.items()
                if k in used
            ],
        }
        self.assets.write(document, [self._page[item.key] for item, _ in found], replace)

    def score(self, item: Item, signals: Signals) -> None:
        record = {f"{METADATA_PREFIX}{k}": v for k, v in signals.record().items()}
        record[f"{METADATA_PREFIX}model_version"] = self.model_version_id
        self.assets.record(self._page[item.key], record)

    def finish(self, picks: list[Candidate]) -> list[str]:
        """The picks carry the tag; assets an earlier run picked that are no longer among them
        lose it (they were labelled since, or others score higher now)."""
        tag = self.params.to_label_tag
        wanted = {p.key for p in picks}
        stale = [a for a in self.assets.with_tag(tag) if a.id not in wanted]
        self.assets.untag(stale, tag)
        added = self.assets.tag(self.assets.by_ids(sorted(wanted)), tag)
        shown = ", ".join(f"{p.name} ({p.score:.2f})" for p in picks[:SHOWN_PICKS])
        more = f" and {len(picks) - SHOWN_PICKS} more" if len(picks) > SHOWN_PICKS else ""
        return [
            f"{len(picks)} assets to label next tagged {tag} ({added} newly, {len(stale)} "
            f"untagged): {shown}{more}; every score is in the assets' custom metadata "
            f"({METADATA_PREFIX}score)"
        ]
