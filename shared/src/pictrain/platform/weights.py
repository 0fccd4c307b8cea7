"""Which file a Picsellia run starts training from: by name, in one documented order.

1. the experiment's `pretrained-weights` (what Picsellia's current images read);
2. the base model version's file named, in this order, `checkpoint-weights-latest` and
   `best-model` (what this job stores), `checkpoint-index-latest` (best.pt of the legacy
   images), `weights` (legacy classification), `pretrained-weights`;
3. else its only `.pt`/`.pth` file. Several unnamed ones are ambiguous: the job fails and
   names them, rather than taking whichever the platform listed first.
"""

from __future__ import annotations

from typing import Any

from pictrain.errors import UserError
from pictrain.platform.base import BEST_MODEL_ARTIFACT, PUBLISHED_WEIGHTS_ARTIFACT
from pictrain.starting import PRETRAINED_ARTIFACT

WEIGHT_SUFFIXES = (".pt", ".pth")
MODEL_WEIGHT_NAMES = (
    PUBLISHED_WEIGHTS_ARTIFACT,
    BEST_MODEL_ARTIFACT,
    "checkpoint-index-latest",
    "weights",
    PRETRAINED_ARTIFACT,
)


def is_weights_file(filename: str) -> bool:
    return filename.lower().endswith(WEIGHT_SUFFIXES)


def starting_weights_file(files: list[Any]) -> Any | None:
    """The file (an SDK `ModelFile`) of a base model version a job starts from; what publishing
    checks too."""
    by_name = {f.name: f for f in files}
    chosen = choose_model_file({name: f.filename for name, f in by_name.items()})
    return by_name[chosen[0]] if chosen else None


def choose_model_file(files: dict[str, str]) -> tuple[str, str] | None:
    """(name, why) of the base model version file to start from, given name -> file name;
    None when it has no weights file."""
    weights = {name for name, filename in files.items() if is_weights_file(filename)}
    for name in MODEL_WEIGHT_NAMES:
        if name in weights:
            return name, f"by its name (order: {', '.join(MODEL_WEIGHT_NAMES)})"
    if len(weights) == 1:
        return weights.pop(), "its only .pt file"
    if weights:
        listed = ", ".join(f"{name} ({files[name]})" for name in sorted(weights))
        raise UserError(
            f"the base model version has {len(weights)} weight files and none of the names "
            f"{', '.join(MODEL_WEIGHT_NAMES)}: {listed}. Name the one to start from "
            f"{PUBLISHED_WEIGHTS_ARTIFACT}, or store it on the experiment as {PRETRAINED_ARTIFACT}"
        )
    return None
