"""Entity -> JSON, in the shapes the SDK's pydantic schemas (`picsellia.types.schemas`) parse."""

from __future__ import annotations

from typing import Any

from tests.emulator.state import (
    Asset,
    Data,
    Datalake,
    Dataset,
    DatasetVersion,
    Deployment,
    Experiment,
    Label,
    LabelGroup,
    Log,
    Model,
    ModelVersion,
    Processing,
    Project,
    State,
    StoredFile,
    Tag,
)


def label(item: Label) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "group_id": item.group_id}


def label_group(item: LabelGroup) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "parent_id": item.parent_id}


def tag(item: Tag) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "target_type": item.target_type}


def datalake(item: Datalake) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "connector_id": item.connector_id}


def dataset(item: Dataset) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "description": item.description}


def project(item: Project) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "description": item.description}


def deployment(state: State, item: Deployment) -> dict[str, Any]:
    """Serving and monitoring live on this same server (their routes do not overlap)."""
    return {
        "id": item.id,
        "name": item.name,
        "type": item.type,
        "oracle_host": state.storage.base_url,
        "serving_host": state.storage.base_url,
        "review_campaign_id": None,
        "model_version_id": item.model_version_id,
        "shadow_model_version_id": item.shadow_model_version_id,
        "min_threshold": item.min_threshold,
        "tags": [],
    }


def dataset_version(item: DatasetVersion) -> dict[str, Any]:
    return {
        "id": item.id,
        "origin_id": item.dataset_id,
        "origin_name": item.dataset_name,
        "version": item.version,
        "type": item.type,
        "annotation_campaign_id": None,
        "description": "",
    }


def data(state: State, item: Data) -> dict[str, Any]:
    return {
        "id": item.id,
        "datalake_id": state.datalake.id,
        "object_name": item.object_name,
        "filename": item.filename,
        "type": "IMAGE",
        "content_type": item.content_type,
        "upload_status": "DONE",
        "presigned_url": state.storage.download_url(item.object_name),
        "metadata": {},
        "custom_metadata": dict(item.custom_metadata),
        "meta": {"width": item.width, "height": item.height},
        "tags": [tag(state.tags[t]) for t in item.tag_ids],
    }


def asset(state: State, item: Asset) -> dict[str, Any]:
    return {
        "id": item.id,
        "data": data(state, state.datas[item.data_id]),
        "tags": [tag(state.tags[t]) for t in item.tag_ids],
    }


def annotation(item: Asset) -> dict[str, Any]:
    """An asset's one annotation (`AnnotationSchema`)."""
    return {
        "id": item.annotation_id,
        "asset_id": item.id,
        "duration": 0.0,
        "status": item.annotation_status,
        "attributes": None,
    }


def processing(item: Processing) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "target": item.target,
        "type": item.type,
        "docker_image": item.docker_image,
        "docker_tag": item.docker_tag,
        "docker_flags": item.docker_flags,
        "default_parameters": item.default_parameters,
        "default_cpu": item.default_cpu,
        "default_gpu": item.default_gpu,
        "description": item.description,
    }


def experiment(item: Experiment) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "project_id": item.project_id,
        "status": item.status,
        "description": "",
        "base_experiment_id": None,
        "base_model_version_id": item.base_model_version_id,
    }


def log(item: Log) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "type": item.type, "data": item.data}


def stored_file(item: StoredFile) -> dict[str, Any]:
    """No presigned_url: the SDK then asks `retrieve_presigned_url`, as for real artifacts."""
    return {
        "id": item.id,
        "name": item.name,
        "filename": item.filename,
        "object_name": item.object_name,
        "large": item.large,
    }


def model(item: Model) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "private": item.private}


def model_version(state: State, item: ModelVersion) -> dict[str, Any]:
    return {
        "id": item.id,
        "origin": model(state.models[item.model_id]),
        "name": item.name,
        "version": item.version,
        "labels": item.labels,
        "type": item.type,
        "framework": item.framework,
        "tags": [],
        **item.settings,
    }


def page(items: list[Any]) -> dict[str, Any]:
    """An unpaged listing: everything in one page, no cursor."""
    return {"items": items, "count": len(items), "next_cursor": None}
