"""Which devices train, the batch they split, the cache and dataloader workers they can afford.

GPUs are given by name (what `torch.cuda.get_device_name` returns): this machine has none.
"""

from __future__ import annotations

import logging

import pytest

from pictrain.errors import UserError
from pictrain.params import Parameters, parse_parameters
from pictrain.train.devices import Devices, resolve_devices
from pictrain.train.runner import training_arguments
from pictrain.train.shm import fit_workers

H200 = "NVIDIA H200"
FOUR = [H200] * 4
MIB = 2**20


def test_every_visible_gpu_trains_by_default() -> None:
    devices = resolve_devices("", 16, FOUR)
    assert devices == Devices("0,1,2,3", tuple(FOUR), 16)
    assert devices.distributed and devices.first == "0"
    assert devices.describe() == f"4 GPUs in DDP: 0 ({H200}), 1 ({H200}), 2 ({H200}), 3 ({H200})"
    assert devices.manifest() == {"device": "0,1,2,3", "gpus": FOUR, "batch": 16}


def test_no_gpu_trains_on_the_cpu() -> None:
    devices = resolve_devices("", 16, [])
    assert devices == Devices("cpu", (), 16) and not devices.distributed
    assert devices.first == "cpu" and devices.describe() == "CPU"


@pytest.mark.parametrize(
    ("device", "expected", "gpus"),
    [
        ("cpu", "cpu", ()),
        ("1", "1", (H200,)),
        ("cuda:2", "2", (H200,)),
        ("2,0", "2,0", (H200, H200)),
    ],
)
def test_device_overrides(device: str, expected: str, gpus: tuple[str, ...]) -> None:
    assert resolve_devices(device, 16, FOUR) == Devices(expected, gpus, 16)


def test_one_gpu_is_no_ddp() -> None:
    devices = resolve_devices("", 10, [H200])
    assert devices == Devices("0", (H200,), 10) and not devices.distributed
    assert devices.describe() == f"GPU 0 ({H200})"


@pytest.mark.parametrize(
    ("batch", "rounded", "per_gpu"), [(10, 12, 3), (9, 8, 2), (2, 4, 1), (1, 4, 1), (17, 16, 4)]
)
def test_the_batch_is_rounded_to_a_multiple_of_the_gpus(
    batch: int, rounded: int, per_gpu: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pictrain"):
        assert resolve_devices("", batch, FOUR).batch == rounded
    expected = (
        f"batch_size {batch} rounded to {rounded}, a multiple of the 4 GPUs "
        f"({per_gpu} images per GPU)"
    )
    assert [r.getMessage() for r in caplog.records] == [expected]


@pytest.mark.parametrize("batch", [16, -1])
def test_a_batch_that_splits_evenly_or_autobatch_is_kept(
    batch: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pictrain"):
        assert resolve_devices("", batch, FOUR).batch == batch
    assert not caplog.records


@pytest.mark.parametrize(
    ("device", "gpus", "message"),
    [
        ("9", FOUR, "device '9': GPU 9 does not exist; this machine has 4 GPUs (0, 1, 2, 3)"),
        ("0,5", [H200], "GPU 5 does not exist; this machine has 1 GPU (0)"),
        ("0", [], "device '0': this machine has no GPU that torch can use"),
        ("0,0", FOUR, "device '0,0' names a GPU twice"),
        ("gpu", FOUR, "device 'gpu': use '' (every GPU), 'cpu'"),
    ],
)
def test_devices_that_do_not_exist_are_refused(device: str, gpus: list, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_devices(device, 16, gpus)


def test_ddp_turns_a_ram_cache_into_a_disk_cache(caplog: pytest.LogCaptureFixture) -> None:
    if "cache" not in Parameters.model_fields:
        pytest.skip("no `cache` parameter yet")
    params = parse_parameters({"cache": "ram", "workers": 0}).params
    with caplog.at_level(logging.INFO, logger="pictrain"):
        ddp = training_arguments(params, Devices("0,1", (H200, H200), 16))
        single = training_arguments(params, Devices("0", (H200,), 16))
    assert ddp["cache"] == "disk" and single["cache"] == "ram"
    assert [r.getMessage() for r in caplog.records] == [
        "cache: ram becomes disk under DDP (each GPU's process would hold its own copy)"
    ]
    assert ddp["device"] == "0,1" and ddp["batch"] == 16


def test_dataloader_workers_are_cut_to_what_dev_shm_holds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Docker's default /dev/shm (64 MiB) cannot hold one worker's batches at 640 px."""
    one_gpu = Devices("0", (H200,), 16)
    with caplog.at_level(logging.WARNING, logger="pictrain"):
        assert fit_workers(1, one_gpu, 640, free=64 * MIB) == 0
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("/dev/shm has 64 MiB free, 1 dataloader workers per GPU need about")
    assert "start the container with --ipc host (or --shm-size 8g)" in warning
    assert warning.endswith("training with 0 workers per GPU instead")


def test_workers_stay_when_dev_shm_is_large_or_on_the_cpu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="pictrain"):
        assert fit_workers(8, Devices("0", (H200,), 16), 640, free=64 * 2**30) == 8
        assert fit_workers(8, Devices("cpu", (), 16), 640, free=1) == 8
    assert not caplog.records
