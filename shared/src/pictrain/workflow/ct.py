"""`pictrain ct setup`: close the loop on a deployment, as Picsellia documents it.

Reviewed predictions enrich the version the deployed model trained on: the experiment's `train`
version. Picsellia's docs ("Deployments - Configure and use a Pipeline") say the feedback loop
"defines the DatasetVersion that will be enriched by the PredictedAsset and reviewed Prediction
pushed to the Pipeline", the idea being to add them "in the DatasetVersion that has been used to
train the currently deployed ModelVersion"; continuous training trains a new experiment on the
deployment's current model version with the versions attached by alias (`sdk/deployment.py`).
So that version is attached to the feedback loop, set as the deployment's training data (the
monitoring's supervised metrics), and attached to continuous training as `train`: each training
reads the reviews (docs/continuous-training.md).

The SDK reads back the feedback loop's versions only. What it cannot read (the loop's set-up,
the training data, the continuous-training settings and aliases, the deployment policy) is
recorded per deployment in `.pictrain/continuous-training.json` as it is posted: a rerun posts
only what the project file changed, and says so. An alias attached from elsewhere (no record)
that holds another version is refused, loudly: the SDK cannot read which version it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pictrain.errors import UserError
from pictrain.platform.enums import ContinuousDeploymentPolicy, ContinuousTrainingTrigger
from pictrain.platform.session import Platform
from pictrain.splitnames import canonical_split
from pictrain.workflow.deploy import find_deployment
from pictrain.workflow.project import POLICIES, ContinuousTrainingSection, ProjectFile
from pictrain.workflow.records import RECORDS_DIR, Records
from pictrain.workflow.register import of_project, resolved_parameters

CT_FILE = RECORDS_DIR / "continuous-training.json"


@dataclass
class Wanted:
    """The set-up the project file asks for, as recorded (JSON: ids as text)."""

    training_data: str
    settings: dict[str, Any]
    aliases: dict[str, str]
    policy: str


def setup(platform: Platform, project: ProjectFile) -> list[str]:
    section: ContinuousTrainingSection = project.need("continuous_training")
    dataset_section = project.need("dataset")
    registration = of_project(project)
    parameters = resolved_parameters(
        registration.config, {**project.need("experiment").parameters, **section.parameters}
    )
    aliases = project.experiment_datasets()
    train_alias = next((a for a in aliases if canonical_split(a) == "train"), None)
    if train_alias is None:
        raise UserError(
            f"{project.source}: [experiment] datasets attach no train version: continuous "
            "training trains on it, and reviewed predictions enrich it"
        )
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
    train = versions[train_alias]
    project_name = section.project or project.need("project").name
    ct_project, _ = platform.get_or_create(
        f"project {project_name}",
        lambda: client.get_project(project_name),
        lambda: client.create_project(project_name),
    )
    trigger = ContinuousTrainingTrigger(section.trigger)
    policy = ContinuousDeploymentPolicy(POLICIES[section.policy])
    wanted = Wanted(
        training_data=str(train.id),
        settings={
            "project_id": str(ct_project.id),
            "trigger": trigger.value,
            "threshold": section.threshold,
            "parameters": parameters,
        },
        aliases={alias: str(version.id) for alias, version in versions.items()},
        policy=policy.value,
    )
    enriched = f"{dataset.name}/{train.version}"
    with Records.locked(
        project.path(CT_FILE),
        "delete it and run `pictrain ct setup` again (an alias it finds attached to another "
        "version is then refused, loudly)",
    ) as records:
        loop = _Loop(platform, deployment, records, versions)
        changes = [
            *loop.feedback_loop(train, enriched),
            *loop.training_data(wanted, enriched),
            *loop.settings(wanted, ct_project, trigger, parameters),
            *loop.aliases(wanted),
            *loop.policy(wanted, policy),
        ]
    attached = ", ".join(f"{a}={dataset.name}/{v.version}" for a, v in versions.items())
    return [
        f"feedback loop of {deployment.name}: reviewed predictions enrich {enriched}, the "
        f"version attached to continuous training as {train_alias} (and the deployment's "
        "training data)",
        f"continuous training in project {project_name}: {trigger.value} after "
        f"{section.threshold} reviews, from the deployed model version's weights, {attached}, "
        f"{len(parameters)} parameters",
        f"continuous deployment: {policy.value}",
        *(changes or ["nothing changed since the last `pictrain ct setup` from this folder"]),
    ]


class _Loop:
    """The set-up steps; each posts only what the record lacks or the file changed, records
    what it posted, and returns what it changed, one line each."""

    def __init__(
        self, platform: Platform, deployment: Any, records: Records, versions: dict[str, Any]
    ) -> None:
        self.platform, self.deployment, self.records = platform, deployment, records
        self.done: dict[str, Any] = dict(records.get(deployment.id) or {})
        self.by_id = {str(v.id): v for v in versions.values()}

    def _record(self, key: str, value: Any) -> None:
        self.done[key] = value
        self.records.record(self.deployment.id, self.done)

    def feedback_loop(self, train: Any, enriched: str) -> list[str]:
        platform, deployment = self.platform, self.deployment
        changes = []
        if not self.done.get("feedback_loop"):
            platform.once("set up the feedback loop", deployment.setup_feedback_loop)
            self._record("feedback_loop", True)
        attached = platform.call(
            "list the feedback loop's versions", deployment.list_feedback_loop_datasets
        )
        if platform.ensure(
            f"attach {enriched} to the feedback loop",
            lambda: any(v.id == train.id for v in deployment.list_feedback_loop_datasets()),
            lambda: deployment.attach_dataset_version_to_feedback_loop(train),
        ):
            changes.append(f"attached {enriched} to the feedback loop")
        for other in (v for v in attached if v.id != train.id):
            platform.call(
                f"detach {other.version} from the feedback loop",
                deployment.detach_dataset_version_from_feedback_loop,
                other,
            )
            changes.append(
                f"detached version {other.version} ({other.id}) from the feedback loop: no "
                f"training reads it; reviews now enrich {enriched}"
            )
        return changes

    def training_data(self, wanted: Wanted, enriched: str) -> list[str]:
        if self.done.get("training_data") == wanted.training_data:
            return []
        version = self.by_id[wanted.training_data]
        self.platform.call(
            f"set {enriched} as the training data", self.deployment.set_training_data, version
        )
        self._record("training_data", wanted.training_data)
        return [f"training data of {self.deployment.name}: {enriched}"]

    def settings(
        self, wanted: Wanted, ct_project: Any, trigger: Any, parameters: dict[str, Any]
    ) -> list[str]:
        before = self.done.get("settings")
        if before == wanted.settings:
            return []
        self.platform.call(
            "set up continuous training",
            self.deployment.setup_continuous_training,
            ct_project,
            trigger=trigger,
            threshold=wanted.settings["threshold"],
            experiment_parameters=parameters,
        )
        self._record("settings", wanted.settings)
        if before is None:
            return ["continuous training set up"]
        changed = sorted(k for k in wanted.settings if before.get(k) != wanted.settings[k])
        return [f"continuous training: {', '.join(changed)} changed, applied"]

    def aliases(self, wanted: Wanted) -> list[str]:
        """Attach what the record lacks; an alias whose version changed is detached from the
        recorded version first (the SDK detaches by version); an alias attached from elsewhere
        is refused unless it holds the very version wanted."""
        before: dict[str, str] = dict(self.done.get("aliases") or {})
        stale = {vid for alias, vid in before.items() if wanted.aliases.get(alias) != vid}
        changes = []
        for version_id in sorted(stale):
            self._detach(version_id)
            gone = sorted(a for a, v in before.items() if v == version_id)
            for alias in gone:
                before.pop(alias)
            self._record("aliases", before)
            changes.append(f"continuous training: detached {', '.join(gone)} ({version_id})")
        for alias, version_id in wanted.aliases.items():
            if before.get(alias) == version_id:
                continue
            self._attach(alias, version_id)
            before[alias] = version_id
            self._record("aliases", before)
            version = self.by_id[version_id]
            changes.append(f"continuous training: attached {alias}={version.version}")
        return changes

    def _attach(self, alias: str, version_id: str) -> None:
        version = self.by_id[version_id]
        attach = self.deployment.attach_dataset_version_to_continuous_training
        if self.platform.once(f"attach {alias}", attach, alias, version):
            return
        # There already (a 409): detaching this version and attaching it again converges when
        # the alias held it; when it holds another version, the second attach is refused.
        self._detach(version_id)
        if not self.platform.once(f"attach {alias}", attach, alias, version):
            raise UserError(
                f"continuous training of deployment {self.deployment.name} has an alias "
                f"{alias} holding another version than {version.version}, attached outside "
                f"this folder (nothing in {CT_FILE}); the SDK cannot read which: detach it in "
                "Picsellia (the deployment's settings), then run `pictrain ct setup` again"
            )

    def _detach(self, version_id: str) -> None:
        client = self.platform.client
        version = self.by_id.get(version_id) or self.platform.find(
            f"version {version_id}", client.get_dataset_version_by_id, version_id
        )
        if version is not None:  # a deleted version is attached to nothing
            self.platform.call(
                f"detach version {version_id} from continuous training",
                self.deployment.detach_dataset_version_from_continuous_training,
                version,
            )

    def policy(self, wanted: Wanted, policy: Any) -> list[str]:
        if self.done.get("policy") == wanted.policy:
            return []
        self.platform.call(
            "set up continuous deployment", self.deployment.setup_continuous_deployment, policy
        )
        self._record("policy", wanted.policy)
        return [f"continuous deployment: {wanted.policy}"]
