"""A weights file planted where a job reads one (a local folder, an experiment's files, a base
model version's starting weights or champion, the stored checkpoint, the run folder of a
relaunch): `pictrain run` refuses it with one line and exit 2, `status.json` says why, and the
pickle never runs.

The real SDK against the emulator for the platform's places; the same command line as a person
runs for the local ones. What each loader does with such a file: tests/unit/test_safeload.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.jobs import (
    PARAMETERS,
    Finished,
    assert_failed,
    job_env,
    local_dataset,
    run_job,
    run_local,
    seed,
)
from tests.emulator import Emulator
from tests.planted_weights import RunsShell, WritesMarker, plant_checkpoint

pytestmark = pytest.mark.slow

REFUSAL = r"{} refused: unpickling it would call [\w., ]+, which ultralytics' allow-list"


def assert_refused(code: int, output: str, run_dir: Path, what: str, marker: Path) -> None:
    """Exit 2, one error line naming the file (`what`, a pattern) and why, the same reason in
    status.json."""
    assert code == 2, output[-3000:]
    assert not marker.exists()
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert re.search("FAILED: " + REFUSAL.format(what), errors[0]), errors[0]
    assert "Traceback" not in output
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["status"], status["exit_code"]) == ("failed", 2)
    assert re.match(REFUSAL.format(what), status["reason"]), status


def test_local_starting_weights(tmp_path: Path) -> None:
    """Refused before the dataset is read."""
    dataset = local_dataset(tmp_path / "dataset", PARAMETERS)
    marker = tmp_path / "marker"
    plant_checkpoint(dataset / "pretrained-weights.pt", marker, RunsShell)
    done = run_local(dataset, tmp_path / "runs", "planted")
    run_dir = tmp_path / "runs" / "planted"
    what = re.escape(f"starting weights {dataset / 'pretrained-weights.pt'}")
    assert_refused(done.returncode, done.stdout + done.stderr, run_dir, what, marker)
    assert not (run_dir / "dataset").exists()


def test_local_relaunch_with_a_planted_last_pt(tmp_path: Path) -> None:
    """The run folder's own last.pt, read to decide on a resume; not uploaded either."""
    dataset = local_dataset(tmp_path / "dataset", PARAMETERS)
    marker = tmp_path / "marker"
    run_dir = tmp_path / "runs" / "relaunch"
    plant_checkpoint(run_dir / "train" / "weights" / "last.pt", marker, WritesMarker)
    done = run_local(dataset, tmp_path / "runs", "relaunch")
    what = re.escape(f"checkpoint {run_dir / 'train' / 'weights' / 'last.pt'}")
    assert_refused(done.returncode, done.stdout + done.stderr, run_dir, what, marker)
    assert not list((run_dir / "artifacts").glob("best-model*"))


@pytest.mark.parametrize(
    "place",
    [
        "experiment pretrained-weights",
        "base model version weights",
        "stored last-checkpoint",
        "base model version champion",
    ],
)
def test_platform_files(
    emulator: Emulator,
    splits: dict,
    yolo_config_dir: Path,
    tiny_weights: Path,
    tmp_path: Path,
    place: str,
) -> None:
    """The champion: the experiment starts from weights of its own, the base model version's
    (planted) are scored after training, and refused then; what was trained is stored."""
    marker = tmp_path / "marker"
    planted = plant_checkpoint(tmp_path / "planted" / "weights.pt", marker, RunsShell)
    if place == "experiment pretrained-weights":
        ids = seed(emulator, splits, experiment_files={"pretrained-weights": planted})
    elif place == "base model version weights":
        ids = seed(emulator, splits, base_model_files={"weights": planted})
    elif place == "stored last-checkpoint":
        ids = seed(emulator, splits, experiment_files={"last-checkpoint": planted})
    else:
        own = {"pretrained-weights": tiny_weights}
        ids = seed(emulator, splits, experiment_files=own, base_model_files={"weights": planted})
    finished: Finished = run_job(
        tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id
    )
    what = {  # under the run folder, where each was downloaded
        "experiment pretrained-weights": r"starting weights runs/[\w-]+/weights/experiment/",
        "base model version weights": r"starting weights runs/[\w-]+/weights/base-model/",
        "stored last-checkpoint": r"checkpoint runs/[\w-]+/checkpoints/stored/",
        "base model version champion": r"champion runs/[\w-]+/weights/base-model/",
    }[place] + r"weights\.pt"
    assert_refused(finished.code, finished.output, finished.run_dir, what, marker)
    assert_failed(emulator, ids, finished, REFUSAL.format(what), 2)
    downloaded = place in ("stored last-checkpoint", "base model version champion")
    assert bool(emulator.requests("POST", "*/annotations/export")) == downloaded  # weights first
    stored = emulator.state.experiments[ids.experiment_id].artifacts
    assert ("best-model" in stored) == (place == "base model version champion")
