"""`pictrain ct setup`: close the loop on a deployment. Reviewed predictions go to a feedback
dataset version; past a threshold the platform trains a new experiment on the deployment's
current model version (so with our image, from the published weights) with the versions
attached by alias; a continuous-deployment policy says what becomes of the new model.

The SDK reads back the feedback loop's versions only: the set-ups and the continuous-training
attachments are posted again on a rerun, and a 409 means done (`Platform.once`).
"""

from __future__ import annotations

from pictrain.errors import UserError
from pictrain.platform.enums import ContinuousDeploymentPolicy, ContinuousTrainingTrigger
from pictrain.platform.session import Platform
from pictrain.workflow.deploy import find_deployment
from pictrain.workflow.project import POLICIES, ContinuousTrainingSection, ProjectFile
from pictrain.workflow.register import of_project, resolved_parameters


def setup(platform: Platform, project: ProjectFile) -> list[str]:
    section: ContinuousTrainingSection = project.need("continuous_training")
    dataset_section = project.need("dataset")
    registration = of_project(project)
    parameters = resolved_parameters(
        registration.config, {**project.need("experiment").parameters, **section.parameters}
    )
    aliases = project.experiment_datasets()
    client = platform.client
    deployment = find_deployment(platform, project)
    dataset = platform.find(
        f"dataset {dataset_section.name}", client.get_dataset, dataset_section.name
    )
    if dataset is None:
        raise UserError(
            f"dataset {dataset_section.name} does not exist: run `pictrain data dataset`"
        )
    versions = {}
    for alias, name in aliases.items():
        versions[alias] = platform.find(f"version {name}", dataset.get_version, name)
        if versions[alias] is None:
            raise UserError(f"dataset {dataset_section.name} has no version {name}")
    project_name = section.project or project.need("project").name
    ct_project, _ = platform.get_or_create(
        f"project {project_name}",
        lambda: client.get_project(project_name),
        lambda: client.create_project(project_name),
    )
    feedback, _ = platform.get_or_create(
        f"version {section.feedback_version}",
        lambda: dataset.get_version(section.feedback_version),
        lambda: dataset.create_version(section.feedback_version, type=dataset_section.type),
    )

    platform.once("set up the feedback loop", deployment.setup_feedback_loop)
    platform.ensure(
        "attach the feedback version",
        lambda: any(v.id == feedback.id for v in deployment.list_feedback_loop_datasets()),
        lambda: deployment.attach_dataset_version_to_feedback_loop(feedback),
    )
    trigger = ContinuousTrainingTrigger(section.trigger)
    platform.call(
        "set up continuous training",
        deployment.setup_continuous_training,
        ct_project,
        trigger=trigger,
        threshold=section.threshold,
        experiment_parameters=parameters,
    )
    for alias, version in versions.items():
        platform.once(
            f"attach {alias} to continuous training",
            deployment.attach_dataset_version_to_continuous_training,
            alias,
            version,
        )
    policy = ContinuousDeploymentPolicy(POLICIES[section.policy])
    platform.call("set up continuous deployment", deployment.setup_continuous_deployment, policy)
    attached_names = ", ".join(f"{a}={v.version}" for a, v in versions.items())
    return [
        f"feedback loop of {deployment.name}: reviewed predictions go to "
        f"{dataset.name}/{feedback.version}",
        f"continuous training in project {project_name}: {trigger.value} after "
        f"{section.threshold} reviews, from the deployed model version, {attached_names}, "
        f"{len(parameters)} parameters",
        f"continuous deployment: {policy.value}",
    ]
