"""The emulator's COCO export is as strict as the real one may be: export_key honoured,
never-annotated assets left out (as the SDK's own COCO builder does), asset id filters as the SDK
sends them, at most `export_max_assets` assets per call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from picsellia import exceptions
from picsellia.types.enums import AnnotationFileType

from tests.emulator import Emulator
from tests.emulator.dataset_dir import write_same_name_split


@pytest.fixture
def version(emulator: Emulator, tmp_path: Path) -> Any:
    """Two assets named same.png (a cat, a dog) and one never annotated."""
    ids = emulator.seed_experiment({"test": write_same_name_split(tmp_path / "source")})
    return emulator.client().get_experiment_by_id(ids.experiment_id).get_dataset("test")


def export(version: Any, folder: Path, **kwargs: Any) -> dict[str, Any]:
    return json.loads(
        Path(version.export_annotation_file(AnnotationFileType.COCO, folder, **kwargs)).read_text()
    )


def test_two_assets_of_one_file_name_and_one_never_annotated(version: Any) -> None:
    names = sorted(a.filename for a in version.list_assets())
    assert names == ["never.png", "same.png", "same.png"]


def test_export_keys_name_the_images(version: Any, tmp_path: Path) -> None:
    annotated = [a for a in version.list_assets() if a.filename == "same.png"]
    by_filename = export(version, tmp_path / "a")
    assert [i["file_name"] for i in by_filename["images"]] == ["same.png", "same.png"]
    by_id = export(version, tmp_path / "b", export_key="ASSET_ID")
    assert sorted(i["file_name"] for i in by_id["images"]) == sorted(
        a.id_with_extension for a in annotated
    )
    labels = {i["id"]: i["file_name"] for i in by_id["images"]}
    names = {c["id"]: c["name"] for c in by_id["categories"]}
    found = {labels[a["image_id"]]: names[a["category_id"]] for a in by_id["annotations"]}
    assert sorted(found.values()) == ["cat", "dog"]  # one each: not swapped, not merged


def test_asset_filters_and_the_per_call_limit(
    emulator: Emulator, version: Any, tmp_path: Path
) -> None:
    assets = version.list_assets()
    never = next(a for a in assets if a.filename == "never.png")
    one = next(a for a in assets if a.filename == "same.png")
    only = export(version, tmp_path / "a", assets=[one, never], export_key="ASSET_ID")
    assert [i["file_name"] for i in only["images"]] == [one.id_with_extension]
    emulator.state.settings.export_max_assets = 2
    with pytest.raises(exceptions.BadRequestError, match="at most 2 assets per call"):
        export(version, tmp_path / "b")
    with pytest.raises(exceptions.BadRequestError, match="at most 2 assets per call"):
        export(version, tmp_path / "c", assets=list(assets))
    other = emulator.seed_experiment({"test": write_same_name_split(tmp_path / "other")})
    stranger = (
        emulator.client().get_experiment_by_id(other.experiment_id).get_dataset("test")
    ).list_assets()[0]
    with pytest.raises(exceptions.BadRequestError, match="not in this version"):
        export(version, tmp_path / "d", assets=[stranger])
