"""The workflow commands as a user runs them, on the shipped example project file pointing at
the emulator: shared by the workflow test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from pictrain.cli import main
from pictrain.envvars import RETRY_BASE_DELAY
from tests.emulator import Emulator
from tests.emulator.dataset_dir import write_sample_dataset

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "picsellia.example.toml"
IMAGES = REPO / "images"
# The README's order: each step needs the ones before it.
STEPS = (
    ("register", "yolov8-detection"),
    ("data", "upload"),
    ("data", "dataset"),
    ("experiment", "create"),
)


@pytest.fixture(params=[False, True], ids=["409", "twins"])
def project(
    tmp_path: Path,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Path:
    """Each test twice: on a server that refuses what is there already (409), and on one that
    makes the twin (tests/emulator/README.md)."""
    emulator.state.settings.twins = request.param
    return write_project(tmp_path, emulator, monkeypatch)


def write_project(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped example file, on a tiny cat/dog dataset, pointing at the emulator."""
    write_sample_dataset(tmp_path / "dataset")
    # The training workflow only: the unlabelled next batch is the pre-annotation's
    # (tests/unit/test_preannotate_platform.py).
    text = without_table(EXAMPLE.read_text(), "[data.next]")
    text = text.replace("data/platform-demo/", "dataset/")
    text = text.replace('# images_dir = "images"', f'images_dir = "{IMAGES}"')
    path = tmp_path / "picsellia.toml"
    path.write_text(text)
    for name, value in {**emulator.user_env(), RETRY_BASE_DELAY.name: "0.01"}.items():
        monkeypatch.setenv(name, value)
    return path


def without_table(text: str, header: str) -> str:
    """A TOML text without the table `header` (its lines up to the next blank line)."""
    start = text.index(f"{header}\n")
    end = text.index("\n\n", start)
    return text[:start] + text[end + 2 :]


def pictrain(capsys: pytest.CaptureFixture[str], project: Path, *args: str) -> tuple[int, str]:
    """Exit code and what was printed (stdout, then stderr)."""
    flags = ["--project", str(project), "--env-file", str(project.parent / "no.env")]
    with pytest.raises(SystemExit) as exited:
        main([*args, *flags])
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out + out.err


def up_to(capsys: pytest.CaptureFixture[str], project: Path, *last: str) -> None:
    """Run the workflow's steps in order, up to and including `last`; each must succeed."""
    for command in STEPS[: STEPS.index(last) + 1]:
        code, output = pictrain(capsys, project, *command)
        assert code == 0, output


def edit(project: Path, old: str, new: str) -> None:
    text = project.read_text()
    assert old in text, old
    project.write_text(text.replace(old, new, 1))


def one_error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    return errors[0]


def trained(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Up to an experiment that trained: what its job stores, without training."""
    up_to(capsys, project, "experiment", "create")
    client = emulator.client()
    (state,) = emulator.state.experiments.values()
    experiment = client.get_experiment_by_id(state.id)
    weights, onnx = tmp_path / "best.pt", tmp_path / "model-latest.onnx"
    weights.write_bytes(b"trained weights")
    onnx.write_bytes(b"an onnx model")
    for name, path in (
        ("best-model", weights),
        ("checkpoint-weights-latest", weights),
        ("model-latest", onnx),
    ):
        experiment.store(name, str(path))
    experiment.log("labelmap", {"0": "cat", "1": "dog"}, "LABELMAP")
    state.status = "SUCCESS"
