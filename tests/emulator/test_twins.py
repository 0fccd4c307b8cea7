"""The emulator with and without its 409s, and the deletes healing needs, against the real SDK.

`settings.twins` answers every "already there" the emulator only assumes as a server without
that check would: the create succeeds and makes the twin (or replaces what a name holds).
Dataset names stay unique: the SDK says so.
"""

from __future__ import annotations

import picsellia
import pytest
from picsellia import exceptions

from tests.emulator import Emulator
from tests.emulator.dataset_dir import png_bytes


@pytest.fixture
def client(emulator: Emulator) -> picsellia.Client:
    return emulator.client()


def test_by_default_what_is_there_already_is_a_409(client: picsellia.Client) -> None:
    client.create_project("cats")
    with pytest.raises(exceptions.ResourceConflictError):
        client.create_project("cats")


def test_with_twins_it_is_made_again(emulator: Emulator, client: picsellia.Client) -> None:
    emulator.state.settings.twins = True
    lake = client.get_datalake()
    for _ in range(2):
        client.create_project("cats")
        lake.create_data_tag("train")
        client.create_model("yolo")
    state = emulator.state
    assert [p.name for p in state.projects.values()] == ["cats", "cats"]
    assert [t.name for t in state.tags.values()] == ["train", "train"]
    assert [m.name for m in state.models.values()] == ["yolo", "yolo"]
    client.create_dataset("shapes")
    with pytest.raises(exceptions.ResourceConflictError):  # the SDK's docstring: unique
        client.create_dataset("shapes")


def test_with_twins_data_is_added_to_a_version_twice(
    emulator: Emulator, client: picsellia.Client, tmp_path
) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes(8, 8, (1, 2, 3)))
    data = client.get_datalake().upload_data(str(image))
    version = client.create_dataset("shapes").create_version("train")
    version.add_data(data)
    with pytest.raises(exceptions.ResourceConflictError):
        version.add_data(data)
    emulator.state.settings.twins = True
    version.add_data(data)
    assert len(emulator.state.dataset_versions[version.id].assets) == 2


def test_deleting_data_takes_its_assets_and_stored_file(
    emulator: Emulator, client: picsellia.Client, tmp_path
) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes(8, 8, (1, 2, 3)))
    lake = client.get_datalake()
    kept, gone = lake.upload_data(str(image)), lake.upload_data(str(image))
    version = client.create_dataset("shapes").create_version("train")
    version.add_data([kept, gone])
    gone.delete()
    state = emulator.state
    assert list(state.datas) == [kept.id]
    assert [a.data_id for a in state.dataset_versions[version.id].assets] == [kept.id]
    assert gone.object_name not in state.storage.objects
    assert [d.name for d in client.list_datasets()] == ["shapes"]


def test_deleting_an_asset_keeps_its_data(emulator: Emulator, client: picsellia.Client, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes(8, 8, (1, 2, 3)))
    data = client.get_datalake().upload_data(str(image))
    version = client.create_dataset("shapes").create_version("train")
    version.add_data(data)
    (asset,) = version.list_assets(data_ids=[data.id])
    asset.delete()
    assert emulator.state.dataset_versions[version.id].assets == []
    assert list(emulator.state.datas) == [data.id]
