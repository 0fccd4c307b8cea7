"""What must hold before a pre-annotation writes anything, checked by the job and, earlier, by
`pictrain preannotate launch`: a model version with an ONNX `model-latest`, a dataset version of
the type it predicts, labels in common. Each failure is one line and exit 2, nothing written."""

from __future__ import annotations

from typing import Any

from pictrain.errors import UserError
from pictrain.platform.base import MODEL_ARTIFACT
from pictrain.platform.enums import DATASET_TYPE
from pictrain.platform.processing import model_file_name
from pictrain.platform.session import Platform

NOT_CONFIGURED = "NOT_CONFIGURED"


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


def check_types(version_kind: str, version_label: str, model_kind: str, model_label: str) -> None:
    """The dataset version holds the kind of annotation the model predicts."""
    if version_kind == NOT_CONFIGURED:
        wanted = f" ({model_kind})" if model_kind != NOT_CONFIGURED else ""
        raise UserError(
            f"dataset version {version_label} has no type: set it to the model's{wanted} first"
        )
    if model_kind not in (NOT_CONFIGURED, version_kind):
        raise UserError(
            f"dataset version {version_label} is {version_kind} and model version "
            f"{model_label} predicts {model_kind}: pre-annotate a version of its type"
        )


def dataset_type(task: str) -> str:
    """The dataset version type a model of `task` writes."""
    kind = DATASET_TYPE.get(task)
    if kind is None:
        raise UserError(f"pre-annotation does not write {task} predictions")
    return str(kind.value)


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
