"""Starting weights chosen by name, in one documented order, never "the first .pt listed"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pictrain.errors import UserError
from pictrain.platform.env import PicselliaContext
from pictrain.platform.picsellia import PicselliaBackend
from pictrain.platform.retry import RetryPolicy
from pictrain.platform.weights import MODEL_WEIGHT_NAMES, choose_model_file
from tests.emulator import Emulator
from tests.emulator.dataset_dir import read_dataset_dir


@pytest.mark.parametrize(
    ("files", "chosen"),
    [
        ({"weights": "a.pt", "checkpoint-index-latest": "b.pt"}, "checkpoint-index-latest"),
        ({"best-model": "a.pt", "checkpoint-weights-latest": "b.pt"}, "checkpoint-weights-latest"),
        ({"pretrained-weights": "a.pth", "weights": "b.pt"}, "weights"),
        ({"weights": "model.onnx", "mine": "c.pt"}, "mine"),  # a name is not enough: a .pt too
        ({"model-latest": "model.onnx", "config": "config.yaml"}, None),
        ({}, None),
    ],
)
def test_the_first_known_name_wins_then_a_lone_pt(files: dict, chosen: str | None) -> None:
    found = choose_model_file(files)
    assert (found and found[0]) == chosen


def test_each_name_beats_the_names_after_it_and_unnamed_files() -> None:
    for k, name in enumerate(MODEL_WEIGHT_NAMES):
        files = {"unnamed": "x.pt", **{later: f"{later}.pt" for later in MODEL_WEIGHT_NAMES[k:]}}
        found = choose_model_file(files)
        assert found is not None and found[0] == name


def test_several_unnamed_pt_files_fail_naming_them() -> None:
    files = {"epoch-10": "e10.pt", "epoch-20": "e20.pt", "model-latest": "m.onnx"}
    with pytest.raises(UserError, match=r"2 weight files .*epoch-10 \(e10\.pt\), epoch-20"):
        choose_model_file(files)


def backend_for(emu: Emulator, sample_dataset: Path, **files: Path) -> PicselliaBackend:
    splits, _ = read_dataset_dir(sample_dataset)
    ids = emu.seed_experiment(splits, base_model_files=files)
    context = PicselliaContext.model_validate(emu.job_env(ids))
    return PicselliaBackend(context, "detect", RetryPolicy(base_delay=0.01))


def weight_files(folder: Path, *names: str) -> dict[str, Path]:
    folder.mkdir()
    paths = {}
    for name in names:
        path = folder / f"{name}.pt"
        path.write_bytes(name.encode())
        paths[name.replace("_", "-")] = path
    return paths


def test_the_backend_downloads_the_chosen_file_and_says_which(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = weight_files(tmp_path / "files", "weights", "checkpoint_index_latest")
    backend = backend_for(emulator, sample_dataset, **files)
    try:
        with caplog.at_level(logging.INFO, logger="pictrain"):
            found = backend.base_weights(tmp_path / "weights")
    finally:
        backend.close()
    assert found is not None and found.source == "model-version"
    assert found.path is not None and found.path.read_bytes() == b"checkpoint_index_latest"
    assert ": file checkpoint-index-latest (checkpoint_index_latest.pt), by its name" in (
        caplog.text
    )


def test_the_backend_refuses_to_guess_between_unnamed_files(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path
) -> None:
    files = weight_files(tmp_path / "files", "epoch_10", "epoch_20")
    backend = backend_for(emulator, sample_dataset, **files)
    try:
        with pytest.raises(UserError, match=r"epoch-10 \(epoch_10\.pt\), epoch-20"):
            backend.base_weights(tmp_path / "weights")
    finally:
        backend.close()
    assert not (tmp_path / "weights").exists()  # nothing downloaded


def _continuous_training_run(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path, copy: str
) -> PicselliaBackend:
    """An experiment on a published version holding the first run's original pretrained file
    beside its trained weights; `copy`: how the platform copied the version's files onto the
    experiment ("reference": the same stored object, "value": the same bytes anew, "none")."""
    files = weight_files(tmp_path / "files", "pretrained_weights", "checkpoint_weights_latest")
    own = {"pretrained-weights": files["pretrained-weights"]} if copy == "value" else {}
    splits, _ = read_dataset_dir(sample_dataset)
    ids = emulator.seed_experiment(splits, base_model_files=files, experiment_files=own)
    state = emulator.state
    if copy == "reference":
        version = state.model_versions[ids.model_version_id]
        state.experiments[ids.experiment_id].artifacts = dict(version.files)
    context = PicselliaContext.model_validate(emulator.job_env(ids))
    return PicselliaBackend(context, "detect", RetryPolicy(base_delay=0.01))


@pytest.mark.parametrize("copy", ["reference", "value", "none"])
def test_continuous_training_starts_from_the_trained_weights_whatever_the_platform_copied(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path, copy: str
) -> None:
    backend = _continuous_training_run(emulator, sample_dataset, tmp_path, copy)
    try:
        found = backend.base_weights(tmp_path / "weights")
        champion = backend.champion_weights(tmp_path / "weights")
    finally:
        backend.close()
    assert found is not None and found.source == "model-version"
    assert found.path is not None and found.path.read_bytes() == b"checkpoint_weights_latest"
    assert champion is not None and champion[0].read_bytes() == b"checkpoint_weights_latest"
    assert champion[1] == "checkpoint-weights-latest of model version emulated-base-model-0"


def test_the_experiments_own_pretrained_file_still_comes_first(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path
) -> None:
    """Stored on the experiment by its user (other bytes than the version's file of that
    name): a choice, not a copy."""
    files = weight_files(tmp_path / "files", "pretrained_weights", "checkpoint_weights_latest")
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"my own start")
    splits, _ = read_dataset_dir(sample_dataset)
    ids = emulator.seed_experiment(
        splits, base_model_files=files, experiment_files={"pretrained-weights": mine}
    )
    backend = PicselliaBackend(
        PicselliaContext.model_validate(emulator.job_env(ids)),
        "detect",
        RetryPolicy(base_delay=0.01),
    )
    try:
        found = backend.base_weights(tmp_path / "weights")
    finally:
        backend.close()
    assert found is not None and found.source == "experiment"
    assert found.path is not None and found.path.read_bytes() == b"my own start"
