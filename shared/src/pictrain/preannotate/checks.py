"""What must hold before a pre-annotation writes anything, checked by the job and, earlier, by
`pictrain preannotate launch`: a model version with an ONNX `model-latest`, a dataset version of
the type it predicts, labels in common. Each failure is one line and exit 2, nothing written."""

from __future__ import annotations

from typing import Any

from pictrain.config import TASK_SPECS, task_spec
from pictrain.errors import UserError
from pictrain.exportformats import MODEL_ARTIFACT
from pictrain.platform.processing import model_file_name
from pictrain.platform.session import Platform

NOT_CONFIGURED = "NOT_CONFIGURED"
# The version types the SDK's COCO import writes shapes into (`coco_importer.read_annotations`:
# a MULTI version gets none of them, MASK wants RLE masks no export predicts).
WRITABLE = ("OBJECT_DETECTION", "SEGMENTATION", "CLASSIFICATION", "KEYPOINT")


def check_model_file(platform: Platform, model_version: Any, label: str) -> str:
    """The file name of the model version's `model-latest`, an ONNX file (what Picsellia's own
    pre-annotation and serving load)."""
    name = model_file_name(platform, model_version, MODEL_ARTIFACT)
    if name is None:
        raise UserError(
            f"model version {label} has no file {MODEL_ARTIFACT}: pre-annotation runs its "
            "ONNX export (publish a trained experiment with `pictrain model publish`)"
        )
    if not name.lower().endswith(".onnx"):
        raise UserError(f"model version {label}: its {MODEL_ARTIFACT} is {name}, not ONNX")
    return name


def writable_types(task: str) -> tuple[str, ...]:
    """The version types a model of `task` pre-annotates: those it trains on that the import
    writes."""
    return tuple(kind for kind in task_spec(task).dataset_types if kind in WRITABLE)


def check_types(version_kind: str, version_label: str, model_kind: str, model_label: str) -> None:
    """The dataset version takes what the model version predicts (its type is its task's
    first dataset type); a model version without a type is checked on its export's task."""
    if version_kind == NOT_CONFIGURED:
        wanted = f" ({model_kind})" if model_kind != NOT_CONFIGURED else ""
        raise UserError(
            f"dataset version {version_label} has no type: set it to the model's{wanted} first"
        )
    tasks = [t for t, spec in TASK_SPECS.items() if spec.dataset_types[0] == model_kind]
    allowed = sorted({kind for task in tasks for kind in writable_types(task)})
    if allowed and version_kind not in allowed:
        raise UserError(
            f"dataset version {version_label} is {version_kind} and model version "
            f"{model_label} ({model_kind}) pre-annotates {' or '.join(allowed)} versions"
        )


def check_task(version_kind: str, version_label: str, task: str) -> None:
    """The export's task writes into a version of this type."""
    allowed = writable_types(task)
    if version_kind not in allowed:
        raise UserError(
            f"dataset version {version_label} is {version_kind}: a {task} model pre-annotates "
            f"{' or '.join(allowed) or 'no'} versions"
        )


def check_skeletons(
    task: str, layout: dict[str, Any] | None, version_skeletons: dict[str, Any], label: str
) -> dict[str, Any]:
    """A pose model's point layout (its export's `skeleton`: COCO's `keypoints` names and
    `skeleton` edges), which a label of the version that has a skeleton must share; {} for the
    other tasks. What the COCO categories of a pose annotation carry."""
    if task != "pose":
        return {}
    if layout is None:
        raise UserError(
            "the pose export carries no point layout (`skeleton` in its metadata: exported by "
            "a pictrain image): its points could not be named"
        )
    for name, skeleton in version_skeletons.items():
        ours = {
            "vertices": list(layout["keypoints"]),
            "edges": [list(e) for e in layout["skeleton"]],
        }
        theirs = {
            "vertices": list(skeleton["vertices"]),
            "edges": [list(e) for e in skeleton["edges"]],
        }
        if ours != theirs:
            raise UserError(
                f"label {name} of dataset version {label} has another skeleton "
                f"({len(theirs['vertices'])} points) than the model's ({len(ours['vertices'])})"
            )
    return {
        "keypoints": list(layout["keypoints"]),
        "skeleton": [list(e) for e in layout["skeleton"]],
    }


def labels_to_create(
    model_names: list[str], version_labels: list[str], strategy: str, label: str
) -> list[str]:
    """The model's labels the version lacks that the strategy creates ([] unless `add`);
    no label in common, or (`exact`) any difference, is the user's error."""
    missing = [name for name in model_names if name not in version_labels]
    if strategy == "add":
        return missing
    if strategy == "exact" and set(model_names) != set(version_labels):
        raise UserError(
            f"label_matching_strategy exact: the model's labels {sorted(model_names)} are not "
            f"dataset version {label}'s {sorted(version_labels)}"
        )
    if len(missing) == len(model_names):
        raise UserError(
            f"the model's labels ({', '.join(model_names)}) share none with dataset version "
            f"{label} ({', '.join(version_labels) or 'no label'}): label_matching_strategy "
            "add creates them"
        )
    return []
