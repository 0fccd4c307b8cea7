"""Entity -> JSON, in the shapes the SDK's pydantic schemas (`picsellia.types.schemas`) parse."""

from __future__ import annotations

from typing import Any

from tests.emulator.state import (
    Asset,
    Data,
    DatasetVersion,
    Experiment,
    Label,
    Log,
    Model,
    ModelVersion,
    State,
    StoredFile,
)


def label(item: Label) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "group_id": None}


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
        "object_name": item.object_name,
        "filename": item.filename,
        "type": "IMAGE",
        "content_type": item.content_type,
        "upload_status": "DONE",
        "presigned_url": state.storage.download_url(item.object_name),
        "metadata": {},
        "custom_metadata": {},
        "meta": {"width": item.width, "height": item.height},
    }


def asset(state: State, item: Asset) -> dict[str, Any]:
    return {"id": item.id, "data": data(state, state.datas[item.data_id])}


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
