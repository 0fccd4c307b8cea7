"""The pre-annotation image as a Picsellia processing: `pictrain register preannotate` registers
it (type PRE_ANNOTATION on dataset versions, every parameter at its default, the input a launch
gives it: `model_version_id`, an ONNX model version), `pictrain preannotate launch` runs it on a
dataset version with a model version, once (`Platform.send_once`, remembered as experiment
launches are, in `.pictrain/launches.json`).

`images/<name>/processing.toml` says how an image is registered as a processing, as
`model.toml` does for a training image."""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pictrain.errors import PlatformError, UserError
from pictrain.platform.enums import (
    Framework,
    ProcessingInputType,
    ProcessingTargetType,
    ProcessingType,
)
from pictrain.platform.processing import MODEL_VERSION_INPUT
from pictrain.platform.session import AlreadyThere, MaybeDone, Platform, Refused
from pictrain.preannotate.checks import check_model_file, check_types
from pictrain.preannotate.params import default_parameters, read_parameters
from pictrain.userfiles import read_text
from pictrain.workflow.launch import LAUNCHES_FILE, UNCONFIRMED, UNFINISHED
from pictrain.workflow.project import ImageSection, PreannotateSection, ProjectFile
from pictrain.workflow.records import Records
from pictrain.workflow.register import check_release

PROCESSING_CONFIG = "processing.toml"


class ProcessingConfig(BaseModel):
    """`images/<name>/processing.toml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    cpu: int = Field(4, ge=1)
    gpu: int = Field(0, ge=0)


@dataclass(frozen=True)
class ProcessingRegistration:
    image: str
    config: ProcessingConfig
    docker_image: str
    docker_tag: str


def available_processings(images_dir: Path) -> dict[str, Path]:
    """Image name -> its processing.toml, for every `images/<name>/processing.toml`."""
    return {p.parent.name: p for p in sorted(images_dir.glob(f"*/{PROCESSING_CONFIG}"))}


def load_processing_config(path: Path) -> ProcessingConfig:
    try:
        return ProcessingConfig.model_validate(tomllib.loads(read_text(path)))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise UserError(f"{path}: {str(exc).splitlines()[0]}") from None


def processing_registrations(
    names: list[str], images_dir: Path, registry: str, tag: str
) -> list[ProcessingRegistration]:
    known = available_processings(images_dir)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"no {images_dir}/<{', '.join(unknown)}>/{PROCESSING_CONFIG}")
    check_release(registry, tag)
    return [
        ProcessingRegistration(
            n, load_processing_config(known[n]), f"{registry.rstrip('/')}/{n}", tag
        )
        for n in names
    ]


def register_processing(platform: Platform, registration: ProcessingRegistration) -> str:
    """Create or update the processing, and its model version input; nothing twice."""
    client = platform.client
    config = registration.config
    settings = {
        "docker_image": registration.docker_image,
        "docker_tag": registration.docker_tag,
        "description": config.description,
        "default_parameters": default_parameters(),
        "default_cpu": config.cpu,
        "default_gpu": config.gpu,
    }
    processing, created = platform.get_or_create(
        f"processing {config.name}",
        lambda: client.get_processing(config.name),
        lambda: client.create_processing(
            name=config.name,
            target=ProcessingTargetType.DATASET_VERSION,
            type=ProcessingType.PRE_ANNOTATION,
            **settings,
        ),
    )
    if (processing.type, processing.target) != (
        ProcessingType.PRE_ANNOTATION,
        ProcessingTargetType.DATASET_VERSION,
    ):
        raise UserError(
            f"processing {config.name} exists as a {processing.type} on {processing.target}: "
            f"name ours otherwise in images/{registration.image}/{PROCESSING_CONFIG}"
        )
    if not created:
        platform.call(f"update processing {config.name}", processing.update, **settings)

    def has_input() -> bool:
        declared = processing.list_processing_inputs()
        return any(i.get("name") == MODEL_VERSION_INPUT for i in declared)

    platform.ensure(
        f"declare input {MODEL_VERSION_INPUT}",
        has_input,
        lambda: processing.add_processing_input(
            MODEL_VERSION_INPUT, ProcessingInputType.MODEL_VERSION, True, None, Framework.ONNX
        ),
    )
    action = "registered" if created else "updated"
    return (
        f"{registration.image}: {action} processing {config.name} (PRE_ANNOTATION) -> "
        f"{registration.docker_image}:{registration.docker_tag}, {config.cpu} CPU, "
        f"{config.gpu} GPU, input {MODEL_VERSION_INPUT}"
    )


def launch(
    platform: Platform,
    project: ProjectFile,
    version_spec: str | None,
    model_spec: str | None,
    again: bool = False,
) -> str:
    """Checked first (the parameters, the version, the model version's ONNX file, their types,
    the processing), then sent once."""
    section = project.preannotate or PreannotateSection()
    image: ImageSection = project.need("image")
    (registration,) = processing_registrations(
        [section.image], project.path(image.images_dir), image.registry, image.tag
    )
    parsed = read_parameters(section.parameters)
    version_spec = version_spec or section.version
    if not version_spec:
        raise UserError("name the dataset version: --version, or [preannotate] version")
    model_spec = model_spec or section.model or (project.model.name if project.model else None)
    if not model_spec:
        raise UserError("name the model version: --model, or [preannotate] model, or [model]")
    version, version_label = _dataset_version(platform, project, version_spec)
    model_version, model_label = _model_version(platform, model_spec)
    check_types(version.type.value, version_label, model_version.type.value, model_label)
    check_model_file(platform, model_version, model_label)
    name = registration.config.name
    processing = platform.find(f"processing {name}", platform.client.get_processing, name)
    if processing is None:
        raise UserError(f"processing {name} is not registered: run `pictrain register preannotate`")
    key = f"preannotate/{version.id}"
    what = f"pre-annotation of {version_label}"
    with Records.locked(
        project.path(LAUNCHES_FILE),
        "check the jobs on Picsellia (experiments and processings), then delete the file",
    ) as launches:
        earlier = launches.get(key)
        if earlier == UNCONFIRMED and not again:
            raise UserError(
                f"an earlier {what} got no answer and may be queued: look at the version's "
                "jobs in Picsellia; if none is there, run `pictrain preannotate launch --again`"
            )
        if earlier and earlier != UNCONFIRMED:
            job = platform.find(f"job {earlier}", platform.client.get_job_by_id, earlier)
            if job is not None and job.status in UNFINISHED:
                raise UserError(f"the {what} is under way: job {earlier} is {job.status.value}")
        try:
            job = platform.send_once(
                f"launch the {what}",
                version.launch_processing,
                processing,
                parameters=parsed.params.model_dump(mode="json"),
                cpu=section.cpu or registration.config.cpu,
                gpu=section.gpu if section.gpu is not None else registration.config.gpu,
                inputs={MODEL_VERSION_INPUT: str(model_version.id)},
            )
        except AlreadyThere:
            raise UserError(f"the {what} is already under way") from None
        except Refused as exc:
            raise UserError(f"Picsellia refused the {what}: {exc}") from None
        except MaybeDone as exc:
            launches.record(key, UNCONFIRMED)
            raise PlatformError(
                f"{exc}; it may have started: look at the version's jobs before launching again"
            ) from None
        launches.record(key, str(job.id))
    ignored = f"; ignored parameters: {', '.join(parsed.ignored)}" if parsed.ignored else ""
    return (
        f"{what} with model version {model_label} launched: job {job.id} "
        f"({job.status.value}){ignored}"
    )


def _dataset_version(platform: Platform, project: ProjectFile, spec: str) -> tuple[Any, str]:
    client = platform.client
    if _is_id(spec):
        found = platform.find(f"dataset version {spec}", client.get_dataset_version_by_id, spec)
        if found is None:
            raise UserError(f"dataset version {spec} not found")
        return found, f"{found.name}/{found.version}"
    dataset_name = project.need("dataset").name
    dataset = platform.find(f"dataset {dataset_name}", client.get_dataset, dataset_name)
    found = dataset and platform.find(f"version {spec}", dataset.get_version, spec)
    if not found:
        raise UserError(
            f"dataset {dataset_name} has no version {spec}: run `pictrain data dataset`"
        )
    return found, f"{dataset_name}/{spec}"


def _model_version(platform: Platform, spec: str) -> tuple[Any, str]:
    """NAME (its latest version), NAME/VERSION (name or number), or a version id."""
    client = platform.client
    if _is_id(spec):
        found = platform.find(f"model version {spec}", client.get_model_version_by_id, spec)
        if found is None:
            raise UserError(f"model version {spec} not found")
        return found, found.name
    name, _, wanted = spec.partition("/")
    model = platform.find(f"model {name}", client.get_model, name)
    if model is None:
        raise UserError(f"model {name} not found: publish one with `pictrain model publish`")
    if wanted:
        key: int | str = int(wanted) if wanted.isdigit() else wanted
        found = platform.find(f"version {wanted} of {name}", model.get_version, key)
        if found is None:
            raise UserError(f"model {name} has no version {wanted}")
        return found, found.name
    versions = list(
        platform.pages(
            f"list the versions of {name}",
            lambda limit, offset: model.list_versions(limit=limit, offset=offset),
        )
    )
    if not versions:
        raise UserError(f"model {name} has no version: publish one with `pictrain model publish`")
    latest = max(versions, key=lambda v: v.version)
    return latest, latest.name


def _is_id(spec: str) -> bool:
    try:
        uuid.UUID(spec)
    except ValueError:
        return False
    return True
