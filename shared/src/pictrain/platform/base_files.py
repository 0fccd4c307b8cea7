"""The weights an experiment brings: its own `pretrained-weights` file and its base model
version's files, looked up once and downloaded once. A run starts from them
(`pictrain.starting`, order in `pictrain.platform.weights`), and compares itself with the base
model version's trained weights (the champion, `pictrain.evaluate.champion`).

A copied original is not the experiment's own file. The platform copies a model version's files
onto an experiment created on it (SDK, `Project.create_experiment`: "it will copy ... the model
files"; Picsellia's images read `pretrained-weights` "copied from the base model version"), and
publishing may keep the first experiment's `pretrained-weights` in the version (which artifacts
it keeps is not documented). A continuous-training experiment would then hold the original
pretrained file under that name beside the deployed weights. So the experiment's
`pretrained-weights` counts as its own only when it is not the base model version's file of that
name (same stored object, else same bytes); otherwise the version's files decide, trained
weights first. Both platform behaviours (copies, no copies) reach the deployed weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from picsellia import exceptions as px

from pictrain.checksums import sha256
from pictrain.errors import UserError
from pictrain.platform.weights import choose_model_file
from pictrain.starting import PRETRAINED_ARTIFACT, StartingWeights

log = logging.getLogger(__name__)

Call = Callable[..., Any]
Download = Callable[[Any, Path, str], Path]


class BaseFiles:
    def __init__(self, experiment: Any, call: Call, download: Download) -> None:
        self._experiment, self._call, self._download = experiment, call, download
        self._version: tuple[Any, dict[str, Any]] | None = None
        self._version_read = False
        self._fetched: dict[tuple[str, Path], Path] = {}

    def starting(self, dest: Path) -> StartingWeights | None:
        """The experiment's own `pretrained-weights` (source `experiment`), else the base
        model version's weights (`model-version`), else None."""
        try:
            own = self._call(
                "find pretrained-weights", self._experiment.get_artifact, PRETRAINED_ARTIFACT
            )
        except px.ResourceNotFoundError:
            own = None
        if own is not None:
            path = self._fetch(own, dest / "experiment", PRETRAINED_ARTIFACT)
            copied = self._copied(own, path, dest)
            if copied is None:
                log.info("the experiment's %s file: %s", PRETRAINED_ARTIFACT, path.name)
                return StartingWeights.found("experiment", path)
            log.info(
                "the experiment's %s is the base model version's file of that name (%s): a "
                "copy the platform made, not a choice; the version's weights decide",
                PRETRAINED_ARTIFACT,
                copied,
            )
        chosen = self._chosen()
        if chosen is None:
            return None
        name, file, why, version = chosen
        path = self._fetch(file, dest / "base-model", name)
        log.info("base model version %s: file %s (%s), %s", version, name, path.name, why)
        return StartingWeights.found("model-version", path)

    def champion(self, dest: Path) -> tuple[Path, str] | None:
        """The base model version's weights and what to call them, or None (no base model
        version, no weights in it, or several nobody named)."""
        try:
            chosen = self._chosen()
        except UserError as exc:
            log.warning("no champion to compare with: %s", exc)
            return None
        if chosen is None:
            return None
        name, file, _, version = chosen
        return self._fetch(file, dest / "base-model", name), f"{name} of model version {version}"

    def _copied(self, own: Any, path: Path, dest: Path) -> str | None:
        """How the experiment's file is known to be its base model version's, or None."""
        read = self._read_version()
        twin = read[1].get(PRETRAINED_ARTIFACT) if read else None
        if twin is None:
            return None
        if twin.object_name == own.object_name:
            return "the same stored object"
        theirs = self._fetch(twin, dest / "base-model", PRETRAINED_ARTIFACT)
        return "the same bytes" if sha256(theirs) == sha256(path) else None

    def _chosen(self) -> tuple[str, Any, str, str] | None:
        """(name, file, why, version name) of the base model version's weights."""
        read = self._read_version()
        if read is None:
            return None
        version, files = read
        chosen = choose_model_file({name: f.filename for name, f in files.items()})
        if chosen is None:
            log.info(
                "the base model version %s has no .pt file (%s)",
                version.name,
                ", ".join(sorted(files)) or "no files",
            )
            return None
        name, why = chosen
        return name, files[name], why, version.name

    def _read_version(self) -> tuple[Any, dict[str, Any]] | None:
        if not self._version_read:
            self._version_read = True
            try:
                version = self._call(
                    "find the base model version", self._experiment.get_base_model_version
                )
            except (px.ResourceNotFoundError, px.NoBaseModelVersionError):
                self._version = None
            else:
                files = self._call("list the base model files", version.list_files)
                self._version = (version, {f.name: f for f in files})
        return self._version

    def _fetch(self, file: Any, folder: Path, what: str) -> Path:
        key = (str(file.id), folder)
        if key not in self._fetched:
            self._fetched[key] = self._download(file, folder, what)
        return self._fetched[key]
