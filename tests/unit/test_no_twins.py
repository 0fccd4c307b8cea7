"""No twins, whatever the server says: uploading, adding data to a version and launching are
right on a platform without a 409 for "already there" (`settings.twins`: the emulator makes
the twin), under lost replies (the SDK re-sends those itself), two runs at once, and a Ctrl-C
then a rerun; twins an older pictrain made are healed, or named with their fix."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pictrain.errors import UserError
from pictrain.platform.session import open_platform
from pictrain.workflow.datalake import plan_upload, upload
from pictrain.workflow.dataset import build, plan_dataset
from pictrain.workflow.launch import launch
from pictrain.workflow.project import load_project
from tests.emulator import Emulator
from tests.emulator.dataset_dir import png_bytes
from tests.unit.workflow_project import edit, one_error_line, pictrain, up_to, write_project

DATAS = "/api/datalake/*/datas"
ADD_DATA = "/api/dataset/version/*/assets"
LAUNCH = "/api/experiment/*/launch"
FILES_PER_SPLIT = 4


@pytest.fixture
def project(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    emulator.state.settings.twins = True  # the server refuses no twin
    return write_project(tmp_path, emulator, monkeypatch)


def each_file_once(emulator: Emulator) -> None:
    """Every file of every split once in the datalake, its stored file still there."""
    state = emulator.state
    keys = Counter(
        (d.filename, frozenset(state.tags[t].name for t in d.tag_ids)) for d in state.datas.values()
    )
    assert len(keys) == 3 * FILES_PER_SPLIT and set(keys.values()) == {1}, keys
    assert all(d.object_name in state.storage.objects for d in state.datas.values())


def at_once(*runs: Callable[[], object]) -> list[BaseException | None]:
    """Run each in a thread of its own, started together; what each raised."""
    start = threading.Barrier(len(runs))
    raised: list[BaseException | None] = [None] * len(runs)

    def run(k: int) -> None:
        start.wait()
        try:
            runs[k]()
        except BaseException as exc:
            raised[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return raised


def command(project: Path, step: Callable[..., object]) -> Callable[[], object]:
    """A workflow step as one run of its command does it (a session of its own)."""

    def run() -> object:
        loaded = load_project(project)
        platform = open_platform(project.parent / "no.env")
        if step is upload:
            data = loaded.need("data")
            return upload(
                platform, plan_upload({n: (loaded.path(s.images), s) for n, s in data.items()})
            )
        if step is build:
            return build(platform, plan_dataset(platform, loaded))
        return launch(platform, loaded, None)

    return run


# --- data upload -------------------------------------------------------------------------------


def test_lost_replies_make_no_twin_data(emulator: Emulator, project: Path, capsys) -> None:
    rule = emulator.faults.add("POST", DATAS, lose_reply=True, times=3)
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 0, output
    assert rule.fired == 3
    each_file_once(emulator)
    assert "twins" not in output  # none made, none to heal


def test_two_uploads_at_once_leave_each_file_once(emulator: Emulator, project: Path) -> None:
    emulator.faults.add("POST", DATAS, latency=0.3, times=None)  # both look before either lands
    assert at_once(command(project, upload), command(project, upload)) == [None, None]
    each_file_once(emulator)


def test_a_killed_run_then_a_rerun_leave_each_file_once(
    emulator: Emulator, project: Path, capsys
) -> None:
    """Ctrl-C twice, a closed terminal: the killed run's posts land after it died, while the
    rerun uploads what it did not find."""
    emulator.faults.add("POST", DATAS, latency=1.0, times=None)
    flags = ["--project", str(project), "--env-file", str(project.parent / "no.env")]
    killed = subprocess.Popen(
        [sys.executable, "-m", "pictrain", "data", "upload", *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not emulator.requests("POST", DATAS) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.kill()
    killed.wait(60)
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 0, output
    each_file_once(emulator)


def test_twins_an_older_version_made_are_healed(emulator: Emulator, project: Path, capsys) -> None:
    """The SDK's own re-sent post: two data on one stored file; a fresh copy replaces both."""
    lake = emulator.client().get_datalake()
    tags = [lake.get_or_create_data_tag(name) for name in ("shapes", "train")]
    emulator.faults.add("POST", DATAS, lose_reply=True)
    image = project.parent / "dataset/train/images/train_0.png"
    lake.upload_data(str(image), tags=tags)
    twins = [d for d in emulator.state.datas.values() if d.filename == "train_0.png"]
    assert len(twins) == 2 and twins[0].object_name == twins[1].object_name

    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 0, output
    assert "train [shapes, train]: 3 uploaded, 1 already there, 2 twins removed" in output
    each_file_once(emulator)
    (kept,) = [d for d in emulator.state.datas.values() if d.filename == "train_0.png"]
    assert emulator.state.storage.get(kept.object_name) == image.read_bytes()


def test_twins_in_dataset_versions_are_named_with_their_fix(
    emulator: Emulator, project: Path, capsys
) -> None:
    up_to(capsys, project, "data", "upload")
    client = emulator.client()
    lake = client.get_datalake()
    image = project.parent / "dataset/train/images/train_0.png"
    lake.upload_data(str(image), tags=["shapes", "train"])  # an older run's twin
    version = client.create_dataset("elsewhere").create_version("mine")
    version.add_data(lake.list_data(filenames=["train_0.png"]))  # both twins, in use
    kept, other = sorted(str(d.id) for d in lake.list_data(filenames=["train_0.png"]))

    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 2
    assert "1 files have twins pictrain cannot remove alone" in one_error_line(output)
    (fix,) = [line for line in output.splitlines() if "twins left" in line]
    assert f"remove the assets of data {other} from those dataset versions" in fix
    assert fix.count("in elsewhere/mine") == 2

    (asset,) = version.list_assets(data_ids=[other])
    asset.delete()  # as the line says
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 0, output
    assert "1 twins removed" in output
    each_file_once(emulator)
    assert [str(d.id) for d in emulator.state.datas.values() if d.filename == image.name] == [kept]


def test_another_image_of_the_same_name_and_tags_is_left_alone(
    emulator: Emulator, project: Path, capsys
) -> None:
    up_to(capsys, project, "data", "upload")
    other = project.parent / "elsewhere" / "train_0.png"
    other.parent.mkdir()
    other.write_bytes(png_bytes(32, 24, (9, 9, 9)))
    emulator.client().get_datalake().upload_data(str(other), tags=["shapes", "train"])
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 0, output
    assert "twins" not in output
    assert len(emulator.state.datas) == 3 * FILES_PER_SPLIT + 1


def test_splits_whose_tags_cannot_tell_their_files_apart_are_refused(
    emulator: Emulator, project: Path, capsys
) -> None:
    """Else a val file would count as a train file, and be healed away as its twin."""
    edit(project, 'tags = ["shapes", "train"]', 'tags = ["shapes"]')
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 2
    assert "split train: its tags ['shapes'] are all tags of split val" in one_error_line(output)
    assert not emulator.state.datas


def test_an_upload_that_failed_exits_3(emulator: Emulator, project: Path, capsys) -> None:
    emulator.faults.add("POST", DATAS, status=502, times=None)
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 3
    assert "12 files were not uploaded (see above): run `pictrain data upload` again" in (
        one_error_line(output)
    )
    assert "train [shapes, train]: 0 uploaded, 0 already there, 4 failed" in output


# --- data dataset ------------------------------------------------------------------------------


def assets_per_version(emulator: Emulator) -> dict[str, list[int]]:
    """Version -> how many assets each of its data has."""
    return {
        v.version: sorted(Counter(a.data_id for a in v.assets).values())
        for v in emulator.state.dataset_versions.values()
    }


def test_lost_replies_add_no_data_twice(emulator: Emulator, project: Path, capsys) -> None:
    up_to(capsys, project, "data", "upload")
    rule = emulator.faults.add("POST", ADD_DATA, lose_reply=True, times=2)
    code, output = pictrain(capsys, project, "data", "dataset")
    assert code == 0, output
    assert rule.fired == 2
    assert assets_per_version(emulator) == dict.fromkeys(("train", "val", "test"), [1] * 4)


def test_two_dataset_builds_at_once_add_each_data_once(
    emulator: Emulator, project: Path, capsys
) -> None:
    up_to(capsys, project, "data", "dataset")
    late = project.parent / "dataset/train/images/late.png"
    late.write_bytes((late.parent / "train_0.png").read_bytes())
    up_to(capsys, project, "data", "upload")
    emulator.faults.add("POST", ADD_DATA, latency=0.3, times=None)  # both look before either adds
    assert at_once(command(project, build), command(project, build)) == [None, None]
    assert assets_per_version(emulator)["train"] == [1] * 5


# --- experiment launch -------------------------------------------------------------------------


def test_a_launch_whose_reply_was_lost_is_not_sent_again(
    emulator: Emulator, project: Path, capsys
) -> None:
    up_to(capsys, project, "experiment", "create")
    (experiment,) = emulator.state.experiments.values()
    emulator.faults.add("POST", LAUNCH, lose_reply=True)
    code, output = pictrain(capsys, project, "experiment", "launch")
    assert code == 3
    assert "it may have started: look at the experiment" in one_error_line(output)
    assert len(emulator.launched_jobs(experiment.id)) == 1

    code, output = pictrain(capsys, project, "experiment", "launch")
    assert code == 2
    assert "an earlier launch got no answer and may be queued" in one_error_line(output)
    assert len(emulator.launched_jobs(experiment.id)) == 1

    (job,) = emulator.launched_jobs(experiment.id)
    job.status = "FAILED"  # it ran and failed: the user looked, and launches again
    code, output = pictrain(capsys, project, "experiment", "launch", "--again")
    assert code == 0, output
    assert len(emulator.launched_jobs(experiment.id)) == 2


def test_two_launches_at_once_start_one_job(emulator: Emulator, project: Path, capsys) -> None:
    up_to(capsys, project, "experiment", "create")
    emulator.faults.add("POST", LAUNCH, latency=0.3, times=None)
    raised = at_once(command(project, launch), command(project, launch))
    (refused,) = [exc for exc in raised if exc is not None]
    assert isinstance(refused, UserError) and "already launched" in str(refused)
    (experiment,) = emulator.state.experiments.values()
    assert len(emulator.launched_jobs(experiment.id)) == 1
