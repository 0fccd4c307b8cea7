"""The SDK's enumerations that the workflow commands compare with or pass on, and each task's
dataset types (`TaskSpec.dataset_types`) as the SDK's. Imported here so that `pictrain.platform`
stays the one importer of the SDK (tests/unit/test_platform_home.py)."""

from __future__ import annotations

from typing import Any

from picsellia.types.enums import (
    ContinuousDeploymentPolicy,
    ContinuousTrainingTrigger,
    ExperimentStatus,
    Framework,
    ImportAnnotationMode,
    InferenceType,
    JobRunStatus,
    ProcessingInputType,
    ProcessingTargetType,
    ProcessingType,
)
from picsellia.types.enums import JobStatus as TaskStatus  # v1 jobs: adding data, metrics

from pictrain.config import TaskSpec


def inference_type(spec: TaskSpec) -> InferenceType:
    """The task's Picsellia type (its first dataset type): its model versions', and its
    evaluations' metrics."""
    return InferenceType(spec.dataset_types[0])


def dataset_type_problem(spec: TaskSpec, kind: Any) -> str | None:
    """None when a dataset version of type `kind` trains this task; else what is wrong
    ("a SEGMENTATION dataset; ..."), to end a sentence naming the version."""
    name = str(getattr(kind, "value", kind))  # OBJECT_DETECTION, not InferenceType.OBJ...
    if name in spec.dataset_types:
        return None
    return (
        f"a {name} dataset; this image trains {spec.name} and needs "
        f"{' or '.join(spec.dataset_types)} datasets"
    )


__all__ = [
    "ContinuousDeploymentPolicy",
    "ContinuousTrainingTrigger",
    "ExperimentStatus",
    "Framework",
    "ImportAnnotationMode",
    "JobRunStatus",
    "ProcessingInputType",
    "ProcessingTargetType",
    "ProcessingType",
    "TaskStatus",
    "dataset_type_problem",
    "inference_type",
]
