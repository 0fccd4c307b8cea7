"""The emulated API, one module per area of the platform."""

from __future__ import annotations

from tests.emulator.routes import (
    asset_tags,
    datalake,
    dataset_building,
    datasets,
    deployments,
    evaluations,
    experiments,
    jobs,
    models,
    objects,
    platform,
    processings,
    projects,
    registry,
    serving,
)
from tests.emulator.routing import Router


def build_router() -> Router:
    router = Router()
    modules = (platform, objects, datasets, experiments, evaluations, models, jobs)
    workflow = (datalake, dataset_building, projects, registry, deployments, serving)
    processing = (processings, asset_tags)
    for module in modules + workflow + processing:
        router.routes.extend(module.ROUTES.routes)
    return router
