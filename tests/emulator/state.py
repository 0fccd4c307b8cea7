"""Everything the emulated platform holds; tests read it to assert what a job did.

Handlers run under `State.lock`, so tests can read the state between SDK calls without locking.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.emulator.storage import ObjectStore


def new_id() -> uuid.UUID:
    return uuid.uuid4()


@dataclass
class Organization:
    name: str
    id: uuid.UUID = field(default_factory=new_id)
    connector_id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Data:
    """A datalake file; its bytes live in the object store under `object_name`."""

    filename: str
    object_name: str
    content_type: str
    width: int
    height: int
    tag_ids: list[uuid.UUID] = field(default_factory=list)
    custom_metadata: dict[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Tag:
    """A tag of some target kind (`DATA` for datalake tags, named uniquely per kind; `ASSET`
    for a dataset version's own, named uniquely in it)."""

    name: str
    target_type: str
    dataset_version_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Datalake:
    name: str
    connector_id: uuid.UUID
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Label:
    name: str
    group_id: uuid.UUID | None = None
    # As `Label.set_skeleton` sends it: {"vertices": names, "edges": pairs numbered from 1}.
    skeleton: dict[str, Any] | None = None
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class LabelGroup:
    name: str
    parent_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Rectangle:
    label_id: uuid.UUID
    x: int
    y: int
    w: int
    h: int


@dataclass
class Polygon:
    label_id: uuid.UUID
    points: list[list[int]]


@dataclass
class Classification:
    label_id: uuid.UUID


@dataclass
class Keypoints:
    """x, y, visibility per vertex of the label's skeleton, as the SDK's COCO import sends them."""

    label_id: uuid.UUID
    points: list[list[Any]]


Shape = Rectangle | Polygon | Classification | Keypoints


@dataclass
class Asset:
    """`annotated`: its one annotation exists (possibly without shapes), `annotation_id`
    (`annotation_status` as a review left it). A never-annotated asset has none, and COCO
    exports leave it out."""

    data_id: uuid.UUID
    shapes: list[Shape] = field(default_factory=list)
    annotated: bool = False
    tag_ids: list[uuid.UUID] = field(default_factory=list)
    annotation_id: uuid.UUID = field(default_factory=new_id)
    annotation_status: str = "PENDING"
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class DatasetVersion:
    dataset_id: uuid.UUID
    dataset_name: str
    version: str
    type: str
    labels: list[Label] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    label_groups: list[LabelGroup] = field(default_factory=list)
    description: str = ""
    id: uuid.UUID = field(default_factory=new_id)

    def label(self, label_id: uuid.UUID) -> Label | None:
        return next((label for label in self.labels if label.id == label_id), None)


@dataclass
class Dataset:
    name: str
    description: str = ""
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Project:
    name: str
    description: str = ""
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Log:
    name: str
    type: str
    data: Any
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class StoredFile:
    """An experiment artifact or a model file: a name bound to an object in the store."""

    name: str
    filename: str
    object_name: str
    large: bool
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Evaluation:
    """What `add_evaluations` posted for one asset: shape lists keyed as in `EvaluationFormat`."""

    asset_id: uuid.UUID
    shapes: dict[str, list[dict[str, Any]]]
    custom_metrics: dict[str, Any] | None = None
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class LoggingLine:
    line_nb: int
    log: str | list[Any]
    part: str
    final: bool
    special: Any


@dataclass
class Experiment:
    name: str
    project_id: uuid.UUID
    status: str = "WAITING"
    status_history: list[str] = field(default_factory=list)
    job_status: str | None = None
    job_status_history: list[str] = field(default_factory=list)
    logs: dict[str, Log] = field(default_factory=dict)
    artifacts: dict[str, StoredFile] = field(default_factory=dict)
    evaluations: dict[uuid.UUID, Evaluation] = field(default_factory=dict)
    datasets: dict[str, uuid.UUID] = field(default_factory=dict)
    base_model_version_id: uuid.UUID | None = None
    logging: list[LoggingLine] = field(default_factory=list)
    logging_object_name: str | None = None
    description: str = ""
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Model:
    name: str
    private: bool = True
    description: str = ""
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class ModelVersion:
    model_id: uuid.UUID
    name: str
    version: int
    type: str = "NOT_CONFIGURED"
    framework: str = "NOT_CONFIGURED"
    labels: dict[str, str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    experiment_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class Processing:
    """A processing as `client.create_processing` registered it, and its declared inputs (name
    -> `{input_type, required, inference_type_constraint, framework_constraint}`)."""

    name: str
    target: str
    type: str | None
    docker_image: str
    docker_tag: str
    docker_flags: list[str] | None = None
    default_parameters: dict[str, Any] = field(default_factory=dict)
    default_cpu: int = 1
    default_gpu: int = 0
    description: str | None = None
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=new_id)


@dataclass(frozen=True)
class ProcessingRun:
    """What a processing was launched on: the job's processing context."""

    processing_id: uuid.UUID
    dataset_version_id: uuid.UUID
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    cpu: int
    gpu: int
    payload_object_name: str | None = None  # the asset ids, when launched on some


@dataclass
class Job:
    """A jobv2 (the training run shown in the UI): run status and its live log view.

    `logging` holds every post as received; `view` the lines as the UI shows them, by line
    number: a buffer takes as many numbers as it has lines, a number posted again is redrawn.
    """

    status: str = "PENDING"
    status_history: list[str] = field(default_factory=list)
    logging: list[LoggingLine] = field(default_factory=list)
    view: dict[int, str] = field(default_factory=dict)
    parts: dict[int, str] = field(default_factory=dict)  # line number -> its chapter
    exit_code: int | None = None
    logging_object_name: str | None = None
    launch: Launch | None = None  # set when `experiment.launch` (or continuous training) made it
    processing: ProcessingRun | None = None  # set when `launch_processing` made it
    id: uuid.UUID = field(default_factory=new_id)

    @property
    def lines(self) -> list[str]:
        """The view's lines in order."""
        return [self.view[number] for number in sorted(self.view)]


@dataclass(frozen=True)
class Launch:
    """What the platform runs for a launched experiment: the base model version's image."""

    experiment_id: uuid.UUID
    docker_image: str
    docker_tag: str
    docker_flags: tuple[str, ...]
    gpus: int


@dataclass
class TaskJob:
    """A v1 job for work the platform does in the background (adding data to a version);
    `reason` is what a FAILED one says (README: the field's name is an assumption)."""

    status: str = "SUCCESS"
    reason: str | None = None
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class ContinuousTraining:
    """`setup_continuous_training` as posted, plus the versions attached by alias."""

    project_id: uuid.UUID
    experiment_parameters: dict[str, Any]
    trigger: str | None = None
    threshold: int | None = None
    datasets: dict[str, uuid.UUID] = field(default_factory=dict)
    experiments: list[uuid.UUID] = field(default_factory=list)
    reviews: int = 0  # reviewed predictions submitted since the last training


@dataclass
class Prediction:
    """One image sent to the deployment's serving, and what it answered. A monitored one is a
    predicted asset: its image became the datalake data `data_id`, to review (`status`: TO
    REVIEW, then SUBMITTED to the feedback loop)."""

    filename: str
    monitor: bool
    response: dict[str, Any]
    data_id: uuid.UUID | None = None
    status: str = "TO REVIEW"


@dataclass
class Deployment:
    name: str
    model_version_id: uuid.UUID
    type: str
    min_threshold: float = 0.0
    shadow_model_version_id: uuid.UUID | None = None
    feedback_loop: bool = False
    feedback_loop_datasets: list[uuid.UUID] = field(default_factory=list)
    training_data: uuid.UUID | None = None  # `set_training_data`: the version it trained on
    continuous_training: ContinuousTraining | None = None
    continuous_deployment: str | None = None
    predictions: list[Prediction] = field(default_factory=list)
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class MetricsJob:
    """A v1 job from `compute_evaluations_metrics`, polled at GET /api/job/{id}."""

    experiment_id: uuid.UUID
    inference_type: str
    evaluation_ids: list[str] | None
    outcome: str
    status: str = "RUNNING"
    polls_left: int = 0
    id: uuid.UUID = field(default_factory=new_id)


@dataclass
class RequestRecord:
    """One request as served: `status` is None when the connection was dropped."""

    method: str
    path: str
    query: str
    status: int | None
    fault: bool = False


@dataclass
class Settings:
    """Knobs tests turn to reach server-side branches with tiny data."""

    page_size: int = 1000
    export_max_assets: int = 1000  # per COCO export call (assumption, see README)
    metrics_job_polls: int = 0
    # Artifacts the platform copies into the model version on publish: assumed, the strictest
    # reading of the notes (the SDK's reserved names); a test may narrow it further.
    published_artifacts: tuple[str, ...] = ("model-latest", "config", "checkpoint-*-latest")
    # An experiment created on a base model version gets copies of its files as artifacts (SDK:
    # `create_experiment` "will copy ... the model files"); False: a platform that does not.
    copy_model_files: bool = True
    # Set: every add-data job ends FAILED with this reason (the platform refusing the data).
    add_data_failure: str | None = None
    # Every "already there" the emulator only assumes (README: assumption) answers a 409; True
    # makes the twin instead (or replaces what a name holds), as a server without that check.
    twins: bool = False
    sdk_version: str = "6.37.0"
    username: str = "emulator"


class State:
    def __init__(self, token: str) -> None:
        self.lock = threading.RLock()
        self.token = token
        self.settings = Settings()
        self.storage = ObjectStore()
        self.organization = Organization("emulated-org")
        self.datalake = Datalake("default", self.organization.connector_id)
        self.tags: dict[uuid.UUID, Tag] = {}
        self.datas: dict[uuid.UUID, Data] = {}
        self.datasets: dict[uuid.UUID, Dataset] = {}
        self.dataset_versions: dict[uuid.UUID, DatasetVersion] = {}
        self.projects: dict[uuid.UUID, Project] = {}
        self.experiments: dict[uuid.UUID, Experiment] = {}
        self.models: dict[uuid.UUID, Model] = {}
        self.model_versions: dict[uuid.UUID, ModelVersion] = {}
        self.jobs: dict[uuid.UUID, Job] = {}
        self.processings: dict[uuid.UUID, Processing] = {}
        self.metrics_jobs: dict[uuid.UUID, MetricsJob] = {}
        self.task_jobs: dict[uuid.UUID, TaskJob] = {}
        self.deployments: dict[uuid.UUID, Deployment] = {}
        # serving/monitoring session tokens (JWT stand-ins) -> the deployment they were issued for
        self.service_tokens: dict[str, uuid.UUID] = {}
        self.requests: list[RequestRecord] = []
        self.unknown_routes: list[RequestRecord] = []
        self.server_errors: list[str] = []

    def artifact_bytes(self, experiment_id: uuid.UUID, name: str) -> bytes:
        return self.storage.get(self.experiments[experiment_id].artifacts[name].object_name)

    def find_asset(self, asset_id: uuid.UUID) -> tuple[DatasetVersion, Asset] | None:
        for version in self.dataset_versions.values():
            for asset in version.assets:
                if asset.id == asset_id:
                    return version, asset
        return None
