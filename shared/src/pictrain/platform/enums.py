"""The SDK's enumerations that the workflow commands compare with or pass on, and the dataset
type of each task. Imported here so that `pictrain.platform` stays the one importer of the SDK
(tests/unit/test_platform_home.py)."""

from __future__ import annotations

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

# What each task trains on: the dataset version's type, the model version's type.
DATASET_TYPE = {
    "detect": InferenceType.OBJECT_DETECTION,
    "segment": InferenceType.SEGMENTATION,
    "classify": InferenceType.CLASSIFICATION,
}

__all__ = [
    "DATASET_TYPE",
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
]
