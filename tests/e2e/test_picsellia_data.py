"""A Picsellia run on a test version with two assets of one file name and a never-annotated
asset: each keeps its own labels, the never-annotated one is a background image, and every
asset gets its evaluation (the real SDK against the emulator, tiny CPU training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.jobs import job_env, run_job, seed
from tests.emulator import Emulator
from tests.emulator.state import Rectangle

pytestmark = pytest.mark.slow


def same_name_test_split(source: tuple[Path, Path], folder: Path) -> tuple[Path, Path]:
    """The test split with its first two images as `left/same.jpg` and `right/same.jpg` and
    the third in the folder but not in the COCO file (never annotated)."""
    images_dir, coco_file = source
    coco = json.loads(coco_file.read_text())
    first, second, third = coco["images"]
    shutil.copytree(images_dir, folder / "images")
    for image, side in ((first, "left"), (second, "right")):
        (folder / "images" / side).mkdir()
        (folder / "images" / image["file_name"]).rename(folder / "images" / side / "same.jpg")
        image["file_name"] = f"{side}/same.jpg"
    coco["images"] = [first, second]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != third["id"]]
    (folder / "annotations.json").write_text(json.dumps(coco))
    return folder / "images", folder / "annotations.json"


def test_same_file_names_and_never_annotated_assets(
    emulator: Emulator,
    splits: dict,
    yolo_config_dir: Path,
    tmp_path: Path,
) -> None:
    test = same_name_test_split(splits["test"], tmp_path / "test")
    ids = seed(emulator, {**splits, "test": test})
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    assert finished.code == 0, finished.output[-3000:]
    state = emulator.state
    version = state.dataset_versions[ids.dataset_version_ids["test"]]
    names = sorted(state.datas[a.data_id].filename for a in version.assets)
    assert names[1:] == ["same.jpg", "same.jpg"] and not version.assets[2].annotated
    # Each asset's labels, as the job fetched them, are its own.
    coco = json.loads((finished.run_dir / "downloads/test/annotations.json").read_text())
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    fetched: dict[str, list[list[int]]] = {name: [] for name in files.values()}
    for annotation in coco["annotations"]:
        fetched[files[annotation["image_id"]]].append(annotation["bbox"])
    for asset in version.assets:
        boxes = [[s.x, s.y, s.w, s.h] for s in asset.shapes if isinstance(s, Rectangle)]
        assert sorted(fetched[f"{asset.id}.jpg"]) == sorted(boxes), asset.id
    assert "test: 1 of 3 assets were never annotated" in finished.output
    conversion = state.experiments[ids.experiment_id].logs["test/conversion"].data
    counts = dict(zip(conversion["rows"], conversion["data"], strict=True))
    assert counts["images written"] == [3] and counts["background images"] == [1]
    # Every asset evaluated, under its own id: none collapsed into another, none left out.
    evaluated = state.experiments[ids.experiment_id].evaluations
    assert set(evaluated) == {asset.id for asset in version.assets}
