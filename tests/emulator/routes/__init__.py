"""The emulated API, one module per area of the platform."""

from __future__ import annotations

from tests.emulator.routes import (
    datasets,
    evaluations,
    experiments,
    jobs,
    models,
    objects,
    platform,
)
from tests.emulator.routing import Router


def build_router() -> Router:
    router = Router()
    for module in (platform, objects, datasets, experiments, evaluations, models, jobs):
        router.routes.extend(module.ROUTES.routes)
    return router
