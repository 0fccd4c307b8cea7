"""Registering the images on Picsellia: per image, a model named after it and a version named
after the image tag, carrying what the platform needs to run it from the experiment UI.

Picsellia runs a model version's `docker_image:docker_tag` with its `docker_flags` for every
experiment created on it, and offers its `base_parameters` in the experiment form: so those
are every parameter the job accepts, at this image's defaults (picsellia-notes "Registration").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain.config import ModelConfig, load_model_config
from pictrain.errors import UserError
from pictrain.params import parse_parameters
from pictrain.platform.enums import Framework, inference_type
from pictrain.platform.session import Platform
from pictrain.workflow.project import ImageSection, ProjectFile

DOCKER_FLAGS = ["--gpus all", "--ipc host", "--name training"]
MODEL_CONFIG = "model.toml"
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def resolved_parameters(config: ModelConfig, given: dict[str, Any]) -> dict[str, Any]:
    """Every parameter under its canonical name: the image's defaults, then `given` (checked
    here, so a bad value fails before anything is created)."""
    params = parse_parameters(given, config.defaults).params
    return params.model_dump(mode="json")


@dataclass(frozen=True)
class Registration:
    """What one image's model version holds."""

    image: str
    config: ModelConfig
    docker_image: str
    docker_tag: str

    @property
    def model_name(self) -> str:
        return self.image

    @property
    def version_name(self) -> str:
        return self.docker_tag

    def settings(self) -> dict[str, Any]:
        """`ModelVersion.update` arguments: the same for registering and for publishing, so a
        published version runs the image it was trained with (continuous training)."""
        return {
            "docker_image_name": self.docker_image,
            "docker_tag": self.docker_tag,
            "docker_flags": DOCKER_FLAGS,
            "base_parameters": resolved_parameters(self.config, {}),
            "type": inference_type(self.config.spec),
        }


def available_images(images_dir: Path) -> dict[str, Path]:
    """Image name -> its model.toml, for every `images/<name>/model.toml`."""
    return {p.parent.name: p for p in sorted(images_dir.glob(f"*/{MODEL_CONFIG}"))}


def registrations(
    names: list[str], images_dir: Path, registry: str, tag: str
) -> list[Registration]:
    """Checked before anything is sent: unknown names, an empty registry, a bad tag."""
    known = available_images(images_dir)
    if not known:
        raise UserError(f"no images/<name>/{MODEL_CONFIG} under {images_dir}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown image {', '.join(unknown)}; images: {', '.join(known)}")
    check_release(registry, tag)
    return [
        Registration(n, load_model_config(known[n]), f"{registry.rstrip('/')}/{n}", tag)
        for n in names
    ]


def check_release(registry: str, tag: str) -> None:
    """Where the images are pushed and under which tag: checked before anything is sent."""
    if not registry.strip("/"):
        raise UserError("--registry is empty: give where the images are pushed, e.g. ghcr.io/org")
    if not _TAG.fullmatch(tag):
        raise UserError(f"--tag {tag!r} is not a valid docker tag")


def of_project(project: ProjectFile) -> Registration:
    """The registration of the project's image, as `pictrain register` made it."""
    image: ImageSection = project.need("image")
    (registration,) = registrations(
        [image.name], project.path(image.images_dir), image.registry, image.tag
    )
    return registration


def find_version(platform: Platform, registration: Registration) -> Any:
    """The registered model version, or a clear error saying how to register it."""
    client = platform.client
    model = platform.find(
        f"model {registration.model_name}", client.get_model, registration.model_name
    )
    version = model and platform.find(
        f"version {registration.version_name}", model.get_version, registration.version_name
    )
    if not version:
        raise UserError(
            f"image {registration.image} is not registered as model {registration.model_name} "
            f"version {registration.version_name}: run `pictrain register {registration.image}`"
        )
    return version


def register(platform: Platform, registration: Registration) -> str:
    """Create or update the model version; return what was done, in a few words."""
    client = platform.client
    model, _ = platform.get_or_create(
        f"model {registration.model_name}",
        lambda: client.get_model(registration.model_name),
        lambda: client.create_model(registration.model_name, "pictrain training image"),
    )
    version, created = platform.get_or_create(
        f"version {registration.version_name} of {registration.model_name}",
        lambda: model.get_version(registration.version_name),
        lambda: model.create_version(name=registration.version_name, framework=Framework.PYTORCH),
    )
    settings = registration.settings()
    platform.call(
        f"update {registration.model_name} {registration.version_name}",
        version.update,
        framework=Framework.PYTORCH,
        **settings,
    )
    action = "registered" if created else "updated"
    return (
        f"{registration.image}: {action} model {registration.model_name} version "
        f"{registration.version_name} -> {registration.docker_image}:{registration.docker_tag}, "
        f"{settings['type'].value}, {len(settings['base_parameters'])} base parameters"
    )
