"""Talking to a slow platform: asset downloads and evaluation uploads, against the emulator in a
child process with a fixed latency on every request (`scripts.bench.remote`).

- downloads: ours (`pictrain.platform.assets.download_images`) vs what the job did before
  (the SDK's `MultiAsset.download` with 8 workers) and vs the SDK's own default
  (`MultiAsset.download`, `cpu_count() + 4` workers);
- evaluations: ours (`PicselliaBackend.add_evaluations`, 100 per call) vs one
  `experiment.add_evaluation` call per image; both end with the metrics computation call.

The SDK and the modules that import it are imported inside the functions: importing the SDK
reconfigures root logging unless `remote_emulator` has set PICSELLIA_SDK_CUSTOM_LOGGING first.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench.remote import remote_emulator
from scripts.bench.report import BenchResult, seconds
from scripts.bench.timing import compare

TODAY_WORKERS = 8  # MultiAsset.download(max_workers=8): the job's download before this module
DEFAULT_ASSETS, LARGE_ASSETS = 500, 2000
DEFAULT_EVALUATIONS, LARGE_EVALUATIONS = 50, 500


@dataclass(frozen=True)
class PlatformSizes:
    assets: int
    file_bytes: int
    latency: float  # seconds per request
    evaluations: int  # test images evaluated


def sizes_from(
    assets: int | None, evaluations: int | None, large: bool, file_bytes: int, latency: float
) -> PlatformSizes:
    """The issue's 2,000 assets behind --large: at 100 ms the SDK's default alone takes 33 s a
    run on 2 cores (6 threads), one call per image 100 s per 1,000 images, and each contender
    runs 1 + repeats times. The defaults keep these three benchmarks near two minutes."""
    return PlatformSizes(
        assets or (LARGE_ASSETS if large else DEFAULT_ASSETS),
        file_bytes,
        latency,
        evaluations or (LARGE_EVALUATIONS if large else DEFAULT_EVALUATIONS),
    )


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("5. platform calls (emulator, every request delayed)")
    group.add_argument("--download-assets", type=int, help="default 500, 2,000 with --large")
    group.add_argument("--download-file-bytes", type=int, default=50_000, help="bytes per file")
    group.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    group.add_argument("--evaluations", type=int, help="test images; 50, 500 with --large")


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Callable[[], BenchResult]]]:
    """This module's benchmarks, sized from the command line (`scripts.bench.__main__`)."""
    sizes = sizes_from(
        args.download_assets, args.evaluations, args.large, args.download_file_bytes, args.latency
    )
    return [
        ("download vs before", lambda: run_download(work, sizes, args.repeats, TODAY_WORKERS)),
        ("download vs SDK", lambda: run_download(work, sizes, args.repeats, None)),
        ("evaluation upload", lambda: run_evaluations(work, sizes, args.repeats)),
    ]


def run_download(
    work: Path, sizes: PlatformSizes, repeats: int, their_workers: int | None
) -> BenchResult:
    """Ours vs `MultiAsset.download` with `their_workers` threads (None: the SDK's default)."""
    import picsellia

    from pictrain.platform.assets import download_images
    from pictrain.platform.downloads import download_workers
    from pictrain.platform.retry import RetryPolicy

    with remote_emulator(sizes.assets, sizes.file_bytes, sizes.latency) as env:
        client = picsellia.Client(
            api_token=env["api_token"], organization_id=env["organization_id"], host=env["host"]
        )
        listed = client.get_experiment_by_id(env["experiment_id"]).get_dataset("test").list_assets()
        assets = list(listed)
        policy = RetryPolicy()

        def ours() -> Any:
            folder = _fresh(work / "ours")
            return lambda: download_images(policy, "bench", assets, folder) or folder

        def theirs() -> Any:
            folder = _fresh(work / "theirs")
            return lambda: listed.download(folder, max_workers=their_workers, use_id=True) or folder

        outcome = compare(ours, theirs, repeats)
    threads = their_workers or (os.cpu_count() or 1) + 4
    if their_workers is None:
        title = "Asset download vs the SDK's default"
        their_text = (
            f"`MultiAsset.download(use_id=True)`: the SDK's default of cpu_count() + 4 = "
            f"{threads} threads here, one shared session"
        )
    else:
        title = "Asset download vs the job before"
        their_text = (
            f"`MultiAsset.download(max_workers={their_workers}, use_id=True)`, what the job "
            "ran before (then it checked every file)"
        )
    mine, others = _files(outcome.ours), _files(outcome.theirs)
    agree = mine == others and len(mine) == sizes.assets
    timing = outcome.timing
    floor = sizes.assets * sizes.latency
    ours_threads = download_workers()
    return BenchResult(
        title=title,
        what="every asset of a dataset version → one file per asset id, from presigned URLs",
        sizes=(
            f"{sizes.assets:,} assets of {sizes.file_bytes // 1000} kB, "
            f"{sizes.latency * 1000:.0f} ms latency on every request"
        ),
        ours=(
            f"`download_images`: {ours_threads} threads, a session each, `.part` + "
            "Content-Length check, retried, every file verified"
        ),
        theirs=their_text,
        timing=timing,
        agreement=(
            f"{'yes' if agree else 'NO'}: {len(mine):,} files each, byte for byte "
            f"({sum(map(len, mine.values())) / 1e6:.0f} MB)"
        ),
        reading=(
            f"**Reading.** Each request waits {sizes.latency * 1000:.0f} ms, so n threads "
            f"cannot beat {floor:.0f} s / n: {seconds(floor / threads)} for the alternative's "
            f"{threads}, {seconds(floor / ours_threads)} for our {ours_threads}. Ours takes "
            f"{timing.ratio:.2f}× the alternative's time ({1 / timing.ratio:.1f}× faster). "
            "Past the latency floor, Python's own cost per file (about 1.5 ms of CPU across "
            "client and emulator here) is the limit: on 2 cores more threads stop paying near "
            "64, our default (`PICTRAIN_DOWNLOAD_WORKERS` changes it); more cores and a real "
            "storage service push that limit further away. The emulator runs in a process of "
            "its own so that its request handling does not share our GIL."
        ),
    )


def run_evaluations(work: Path, sizes: PlatformSizes, repeats: int) -> BenchResult:
    import picsellia
    from picsellia.types.enums import InferenceType

    from pictrain.platform.base import Detection, Evaluation
    from pictrain.platform.env import PicselliaContext
    from pictrain.platform.picsellia import PicselliaBackend
    from pictrain.platform.retry import RetryPolicy

    with remote_emulator(sizes.evaluations, 1000, sizes.latency) as env:
        backend = PicselliaBackend(PicselliaContext.model_validate(env), "detect", RetryPolicy())
        try:
            test = backend.datasets(work / "evaluations")["test"]
            names = sorted(p.name for p in test.images_dir.iterdir())
            boxes = [Detection(10, 20, 30, 40, "dog", 0.9), Detection(50, 60, 70, 80, "cat", 0.6)]
            evaluations = [Evaluation(name, detections=boxes) for name in names]
            client = picsellia.Client(
                api_token=env["api_token"],
                organization_id=env["organization_id"],
                host=env["host"],
            )
            experiment = client.get_experiment_by_id(env["experiment_id"])
            version = experiment.get_dataset("test")
            labels = {label.name: label for label in version.list_labels()}
            assets = list(version.list_assets())
            rectangles = [(b.x, b.y, b.w, b.h, labels[b.label], b.score) for b in boxes]

            def ours() -> Any:
                def send() -> None:
                    backend.add_evaluations(evaluations)
                    backend.flush()

                return send

            def one_call_each() -> Any:
                def send() -> None:
                    for asset in assets:
                        experiment.add_evaluation(asset, rectangles=rectangles)
                    experiment.compute_evaluations_metrics(InferenceType.OBJECT_DETECTION)

                return send

            outcome = compare(ours, one_call_each, repeats)
            stored = len(experiment.list_evaluations())
        finally:
            backend.close()
    timing = outcome.timing
    calls = -(-sizes.evaluations // 100)
    return BenchResult(
        title="Evaluation upload",
        what="the test split's predictions → Picsellia evaluations, then the metrics job",
        sizes=(
            f"{sizes.evaluations:,} test images, 2 boxes each, "
            f"{sizes.latency * 1000:.0f} ms latency on every request"
        ),
        ours="`PicselliaBackend.add_evaluations` + `flush`: 100 evaluations per call",
        theirs="`experiment.add_evaluation` once per image (Picsellia's own images' way)",
        timing=timing,
        agreement=(
            f"{'yes' if stored == sizes.evaluations else 'NO'}: both replace the same "
            f"{sizes.evaluations:,} assets' evaluations; {stored:,} stored at the end"
        ),
        reading=(
            f"**Reading.** {calls} calls instead of {sizes.evaluations:,}: at "
            f"{sizes.latency * 1000:.0f} ms each, the upload is latency-bound and ours takes "
            f"{timing.ratio:.3f}× the time ({1 / timing.ratio:.0f}× faster). It runs on the "
            "background sender, so training and evaluation never wait for it either way."
        ),
    )
