"""The three splits a job uses and the names users attach them under (Picsellia's current images
say val, the legacy ones eval). Read by the data layer and by both backends, so it sits below
them."""

from __future__ import annotations

SPLITS = ("train", "val", "test")
ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    "test": "test",
    "testing": "test",
}


def canonical_split(alias: str) -> str | None:
    """train / val / test for a user-facing split name, None if it is none of them."""
    return ALIASES.get(alias.strip().lower())
