"""What a run stores is named in one place (pictrain.platform.base), nowhere else."""

from __future__ import annotations

from pathlib import Path

from pictrain.platform import base
from pictrain.train.runner import saved_weights

PACKAGE = Path(base.__file__).resolve().parents[1]
# (log names such as "parameters" are also ordinary words and dictionary keys: not scanned)
NAMES = {value for key, value in vars(base).items() if key.endswith("_ARTIFACT")}


def test_every_stored_name_is_spelled_once() -> None:
    assert {"model-latest", "config", "manifest", "best-model", "last-checkpoint"} <= NAMES
    assert {"pretrained-weights", "checkpoint-weights-latest"} <= NAMES
    spelled = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != Path(base.__file__).resolve()
        for name in NAMES
        if f'"{name}' in path.read_text()
    ]
    assert not spelled, spelled


def test_saved_weights_are_best_then_last(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    assert saved_weights(tmp_path) == []
    for name in ("last.pt", "best.pt"):
        (weights / name).write_bytes(b"w")
    assert saved_weights(tmp_path) == [weights / "best.pt", weights / "last.pt"]
