"""What the platform does on its own, for tests to trigger: the review of monitored predictions
and continuous training.

A reviewed prediction submitted to the feedback loop enriches the dataset versions attached to
it: its image (the data the monitoring made of it) becomes an asset holding the reviewed shapes
(docs, "Configure and use a Pipeline": the feedback loop "defines the DatasetVersion that will be
enriched by the PredictedAsset and reviewed Prediction pushed to the Pipeline"). When enough
reviews came since the last training (the FEEDBACK_LOOP trigger's threshold), the platform
creates an experiment in the continuous-training project whose base model version is the
deployment's current one (SDK: "Continuous Training will be configured with deployment's model
version"), with the configured experiment parameters and the versions attached by alias, and
launches it: the version's registered image runs. The test then runs that image's job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from tests.emulator.routes.projects import create_experiment, launch
from tests.emulator.state import (
    Asset,
    Classification,
    DatasetVersion,
    Job,
    Label,
    Rectangle,
    Shape,
    State,
)

Box = tuple[int, int, int, int]  # x, y, w, h in the image's pixels


def submit_review(
    state: State,
    deployment_id: uuid.UUID,
    data_id: uuid.UUID,
    shapes: Sequence[tuple[str, Box | None]],
) -> Job | None:
    """A reviewer corrects the prediction whose image is `data_id` to `shapes` (label name,
    box; no box for classification) and submits it to the feedback loop. Returns the
    continuous-training job this review triggered, if it did."""
    deployment = state.deployments[deployment_id]
    prediction = next((p for p in deployment.predictions if p.data_id == data_id), None)
    if prediction is None:
        raise ValueError(f"deployment {deployment.name} has no monitored prediction of {data_id}")
    if prediction.status == "SUBMITTED":
        raise ValueError("a submitted prediction cannot be submitted again (docs: not retroactive)")
    if not deployment.feedback_loop or not deployment.feedback_loop_datasets:
        raise ValueError(f"deployment {deployment.name} has no feedback loop version to enrich")
    for version_id in deployment.feedback_loop_datasets:
        version = state.dataset_versions[version_id]
        version.assets.append(Asset(data_id, [_shape(version, *s) for s in shapes], True))
    prediction.status = "SUBMITTED"
    training = deployment.continuous_training
    if training is None:
        return None
    training.reviews += 1
    if training.trigger == "FEEDBACK_LOOP" and training.reviews >= (training.threshold or 1):
        return trigger_continuous_training(state, deployment_id)
    return None


def _shape(version: DatasetVersion, label: str, box: Box | None) -> Shape:
    """Reviewed shapes carry the deployment's label names; one the version lacks is created
    (assumption: the platform merges the labelmaps)."""
    found = next((item for item in version.labels if item.name == label), None)
    if found is None:
        found = Label(label)
        version.labels.append(found)
    if box is None:
        return Classification(found.id)
    return Rectangle(found.id, *box)


def trigger_continuous_training(state: State, deployment_id: uuid.UUID) -> Job:
    """The launched job of a new continuous-training experiment (its `launch` names both)."""
    deployment = state.deployments[deployment_id]
    training = deployment.continuous_training
    if training is None:
        raise ValueError(f"deployment {deployment.name} has no continuous training set up")
    project = state.projects[training.project_id]
    version = state.model_versions[deployment.model_version_id]
    name = f"{deployment.name}-ct-{len(training.experiments) + 1}"
    experiment = create_experiment(
        state, project, name, version, dict(training.experiment_parameters)
    )
    experiment.datasets = dict(training.datasets)
    training.experiments.append(experiment.id)
    training.reviews = 0
    return launch(state, experiment, gpus=1)
