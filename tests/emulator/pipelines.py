"""What the platform does on its own, for tests to trigger: continuous training.

When a deployment's trigger fires (enough reviewed predictions in its feedback loop), the
platform creates an experiment in the continuous-training project whose base model version is
the deployment's current one (SDK: "Continuous Training will be configured with deployment's
model version"), with the configured experiment parameters and the versions attached by alias,
and launches it: the version's registered image runs. The test then runs that image's job.
"""

from __future__ import annotations

import uuid

from tests.emulator.routes.projects import create_experiment, launch
from tests.emulator.state import Job, State


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
    return launch(state, experiment, gpus=1)
