"""COCO -> YOLO conversion: pictrain against ultralytics' `convert_coco`, and against the floor.

The floor is the least any converter does to write the same label files: parse the JSON
(orjson), group the annotations by image, format one line per object, write one file per
image. It opens no image and checks nothing. `convert_coco` does about the same work in slower
code; ours also reads every image header (format, real size, EXIF orientation, JPEG end marker),
links every image into the YOLO layout, clips and filters and counts.

Targets (issue 13): detection at 1M annotations >= 3x faster than convert_coco, within 1.5x of
the floor, peak memory <= convert_coco's; segmentation at 100k polygons >= 2x faster than
convert_coco(use_segments=True), within 2x of the floor; cost linear in annotations.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PIL import Image

from pictrain.config import task_spec
from pictrain.data.coco import load_coco
from pictrain.data.labels import labelmap_from
from pictrain.data.prepare import CONVERTERS
from scripts.bench import memory
from scripts.bench.report import Bench, BenchResult, seconds
from scripts.bench.timing import Runs, Timing, compare_all

LARGE_ANNOTATIONS = 1_000_000  # --large: the detection target's size
LARGE_POLYGONS = 100_000  # --large: the segmentation target's size
LARGE_POSES = 100_000  # --large: the pose size (no target: issue 18 asks for the ratio)
IMAGE_SIDE = 64
CATEGORIES = ("a", "b", "c")  # ids 1..3 in name order: convert_coco's class = id - 1 = ours
COORDINATE_TOLERANCE = 2e-6  # ours prints 6 decimals, convert_coco 6 significant digits
Labels = dict[str, list[list[float]]]  # label file stem -> rows (class, coordinates...)


@dataclass(frozen=True)
class Case:
    """One conversion to time: the task, its size, and where its files go."""

    task: str  # detect | segment | pose
    annotations: int
    per_image: int  # objects per image
    points: int  # polygon vertices (segment), keypoints (pose)
    folder: Path

    @property
    def images(self) -> int:
        return math.ceil(self.annotations / self.per_image)

    @property
    def coco(self) -> Path:
        return self.folder / "coco" / "annotations.json"

    @property
    def images_dir(self) -> Path:
        return self.folder / "images"


@dataclass
class _Costs:
    """Our best CPU time per annotation at each detection size so far, to show the cost is
    linear (CPU time: other processes on a shared machine move it much less than wall time)."""

    per_annotation: dict[int, float] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("1. COCO -> YOLO conversion")
    group.add_argument(
        "--convert-sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help=f"detection annotations, one run each (--large adds {LARGE_ANNOTATIONS:,})",
    )
    group.add_argument("--convert-boxes", type=int, default=10, help="boxes per image")
    group.add_argument(
        "--segment-polygons",
        type=int,
        default=10_000,
        help=f"segmentation objects (--large: {LARGE_POLYGONS:,})",
    )
    group.add_argument("--segment-points", type=int, default=24, help="vertices per polygon")
    group.add_argument(
        "--pose-objects", type=int, default=10_000, help=f"pose objects (--large: {LARGE_POSES:,})"
    )
    group.add_argument("--pose-points", type=int, default=17, help="keypoints per object")


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Bench]]:
    sizes = sorted(set(args.convert_sizes) | ({LARGE_ANNOTATIONS} if args.large else set()))
    polygons = LARGE_POLYGONS if args.large else args.segment_polygons
    costs = _Costs()
    runs: list[tuple[str, Bench]] = []
    for size in sizes:
        case = Case("detect", size, args.convert_boxes, 0, work / f"detect-{size}")
        bench = partial(_run, case, _repeats(args.repeats, size), args.seed, size == sizes[-1])
        runs.append((f"conversion, detection, {size:,} boxes", partial(bench, costs)))
    case = Case("segment", polygons, args.convert_boxes, args.segment_points, work / "segment")
    bench = partial(_run, case, _repeats(args.repeats, polygons), args.seed, True, _Costs())
    runs.append((f"conversion, segmentation, {polygons:,} polygons", bench))
    poses = LARGE_POSES if args.large else args.pose_objects
    case = Case("pose", poses, args.convert_boxes, args.pose_points, work / "pose")
    bench = partial(_run, case, _repeats(args.repeats, poses), args.seed, True, _Costs())
    runs.append((f"conversion, pose, {poses:,} objects of {args.pose_points} keypoints", bench))
    return runs


def _repeats(repeats: int, annotations: int) -> int:
    """Fewer rounds for the large sizes: each run takes seconds to a minute."""
    return repeats if annotations <= 100_000 else 1


def _run(case: Case, repeats: int, seed: int, with_memory: bool, costs: _Costs) -> BenchResult:
    _write_inputs(case, seed)
    outputs = {name: case.folder / f"out-{name}" for name in ("ours", "convert_coco", "floor")}

    def contender(name: str, call: Callable[[], Path]) -> Callable[[], Callable[[], Path]]:
        def prepare() -> Callable[[], Path]:
            shutil.rmtree(outputs[name], ignore_errors=True)  # convert_coco appends otherwise
            return call

        return prepare

    runs, written = compare_all(
        {
            "ours": contender(
                "ours", partial(ours, case.task, case.coco, case.images_dir, outputs["ours"])
            ),
            "convert_coco": contender(
                "convert_coco",
                partial(theirs, case.task, case.coco.parent, outputs["convert_coco"]),
            ),
            "floor": contender("floor", partial(floor, case.task, case.coco, outputs["floor"])),
        },
        repeats,
    )
    labels = {name: read_labels(folder) for name, folder in written.items()}
    versus_theirs = Timing(runs["ours"], runs["convert_coco"])
    versus_floor = Timing(runs["ours"], runs["floor"])
    costs.per_annotation[case.annotations] = min(runs["ours"].cpu) / case.annotations
    peaks = _peaks(case, outputs) if with_memory and memory.available() else {}
    agrees, agreement = _agreement(labels["ours"], labels["convert_coco"], labels["floor"])
    return _result(
        case, versus_theirs, versus_floor, runs["floor"], peaks, costs, agreement, agrees
    )


def ours(task: str, coco: Path, images_dir: Path, out: Path) -> Path:
    """What a job does: one parse, the labelmap from it, the conversion."""
    index = load_coco(Path(coco), keep=task_spec(task).coco_fields)
    CONVERTERS[task](index, Path(images_dir), Path(out), "train", labelmap_from([index]))
    return Path(out) / "labels" / "train"


def theirs(task: str, labels_dir: Path, out: Path) -> Path:
    """convert_coco converts every JSON of `labels_dir` into `out/labels/<json stem>`."""
    from ultralytics.data.converter import convert_coco

    convert_coco(
        labels_dir=str(labels_dir),
        save_dir=str(out),
        use_segments=task == "segment",
        use_keypoints=task == "pose",
        cls91to80=False,
    )
    return Path(out) / "labels" / "annotations"


def floor(task: str, coco: Path, out: Path) -> Path:
    """The least that writes the same label files: parse, group, format, write."""
    document = orjson.loads(Path(coco).read_bytes())
    classes = {c["id"]: i for i, c in enumerate(sorted(document["categories"], key=_name))}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for annotation in document["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    folder = Path(out) / "labels"
    folder.mkdir(parents=True)
    for image in document["images"]:
        width, height = image["width"], image["height"]
        lines = []
        for annotation in by_image.get(image["id"], ()):
            cls = classes[annotation["category_id"]]
            if task == "segment":
                points = annotation["segmentation"][0]
                xy = [v / (width if i % 2 == 0 else height) for i, v in enumerate(points)]
                lines.append(f"{cls} {' '.join(f'{v:.6f}' for v in xy)}\n")
                continue
            x, y, w, h = annotation["bbox"]
            right, bottom = x + w, y + h  # the arithmetic ours does, for the same digits
            cx, cy = (x + right) / 2 / width, (y + bottom) / 2 / height
            bw, bh = (right - x) / width, (bottom - y) / height
            line = f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}"
            if task == "pose":
                k = annotation["keypoints"]
                xyv = zip(k[0::3], k[1::3], k[2::3], strict=True)
                line += "".join(f" {px / width:.6f} {py / height:.6f} {v:.6f}" for px, py, v in xyv)
            lines.append(line + "\n")
        (folder / f"{image['file_name'].rsplit('.', 1)[0]}.txt").write_text("".join(lines))
    return folder


def peak_ours(task: str, coco: str, images_dir: str, out: str) -> None:
    ours(task, Path(coco), Path(images_dir), Path(out))


def peak_theirs(task: str, labels_dir: str, out: str) -> None:
    theirs(task, Path(labels_dir), Path(out))


def peak_floor(task: str, coco: str, out: str) -> None:
    floor(task, Path(coco), Path(out))


def _peaks(case: Case, outputs: dict[str, Path]) -> dict[str, float]:
    """Peak memory of each contender, in a process of its own."""
    for folder in outputs.values():
        shutil.rmtree(folder, ignore_errors=True)
    this = "scripts.bench.convert"
    images, coco = str(case.images_dir), str(case.coco)
    return {
        "ours": memory.peak_mib(f"{this}:peak_ours", case.task, coco, images, str(outputs["ours"])),
        "convert_coco": memory.peak_mib(
            f"{this}:peak_theirs",
            case.task,
            str(case.coco.parent),
            str(outputs["convert_coco"]),
            preload=("ultralytics.data.converter",),
        ),
        "floor": memory.peak_mib(f"{this}:peak_floor", case.task, coco, str(outputs["floor"])),
    }


def _write_inputs(case: Case, seed: int) -> None:
    """`case.images` JPEG files (copies of a few encodings) and a COCO file of random objects
    inside them: boxes, or polygons inscribed in the boxes."""
    rng = np.random.default_rng(seed)
    images = write_images(case, rng)
    wh = rng.uniform(4, IMAGE_SIDE / 2, size=(case.annotations, 2)).round(2)
    xy = (rng.uniform(0, 1, size=(case.annotations, 2)) * (IMAGE_SIDE - wh)).round(2)
    categories = rng.integers(1, len(CATEGORIES) + 1, size=case.annotations).tolist()
    angles = np.linspace(0, 2 * np.pi, case.points, endpoint=False)
    annotations = []
    for j in range(case.annotations):
        (x, y), (w, h) = xy[j].tolist(), wh[j].tolist()
        annotation = {
            "id": j + 1,
            "image_id": j // case.per_image + 1,
            "category_id": categories[j],
            "bbox": [x, y, w, h],
            "area": round(w * h, 2),
            "iscrowd": 0,
        }
        if case.task == "segment":
            ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) * (w / 2, h / 2)
            polygon = (ring + np.array([x + w / 2, y + h / 2])).round(2)
            annotation["segmentation"] = [polygon.ravel().tolist()]
        if case.task == "pose":
            annotation["keypoints"] = _keypoints(rng, x, y, w, h, case.points)
        annotations.append(annotation)
    skeleton = (
        {"keypoints": [f"point-{k}" for k in range(case.points)], "skeleton": []}
        if case.task == "pose"
        else {}
    )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name, **skeleton} for i, name in enumerate(CATEGORIES, 1)],
    }
    case.coco.write_bytes(orjson.dumps(coco))


def write_images(case: Case, rng: np.random.Generator) -> list[dict[str, Any]]:
    """A fresh `case.folder` with `case.images` JPEG files (copies of a few encodings); their
    COCO image entries."""
    shutil.rmtree(case.folder, ignore_errors=True)
    case.images_dir.mkdir(parents=True)
    case.coco.parent.mkdir(parents=True)
    blobs = [_jpeg(tuple(int(c) for c in rng.integers(0, 256, 3))) for _ in range(8)]
    images = []
    for i in range(1, case.images + 1):
        name = f"{i:07d}.jpg"
        (case.images_dir / name).write_bytes(blobs[i % len(blobs)])
        images.append({"id": i, "file_name": name, "width": IMAGE_SIDE, "height": IMAGE_SIDE})
    return images


def _keypoints(
    rng: np.random.Generator, x: float, y: float, w: float, h: float, points: int
) -> list[float]:
    """Points at least 1 px inside the box (a real box, not their hull: convert_coco is right
    on such a file), a quarter unlabelled (0, 0, 0), the others visible or occluded; the first
    always labelled, so no object is dropped."""
    xs = rng.uniform(x + 1, x + w - 1, points).round(2)
    ys = rng.uniform(y + 1, y + h - 1, points).round(2)
    visibility = rng.choice([0, 1, 2], points, p=[0.25, 0.25, 0.5])
    visibility[0] = 2
    return [
        v
        for px, py, vis in zip(xs, ys, visibility, strict=True)
        for v in ((float(px), float(py), 2 if vis == 2 else 1) if vis else (0, 0, 0))
    ]


def _jpeg(color: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), color).save(buffer, "JPEG")
    return buffer.getvalue()


def _name(category: dict[str, Any]) -> str:
    return category["name"]


def read_labels(folder: Path) -> Labels:
    return {
        path.stem: [[float(v) for v in line.split()] for line in path.read_text().splitlines()]
        for path in folder.glob("*.txt")
    }


def _agreement(ours: Labels, theirs: Labels, floor: Labels) -> tuple[bool, str]:
    """Ours = floor exactly; ours = convert_coco line by line, to its printing precision."""
    same_as_floor = ours == floor
    ours_lines, theirs_lines = sum(map(len, ours.values())), sum(map(len, theirs.values()))
    mismatched = [stem for stem in theirs if len(ours.get(stem, [])) != len(theirs[stem])]
    if mismatched or ours_lines != theirs_lines:
        return False, (
            f"**no**: {ours_lines:,} label lines vs convert_coco's {theirs_lines:,}; "
            f"{len(mismatched)} files differ in line count"
        )
    largest = max(
        (
            abs(a - b)
            for stem, rows in theirs.items()
            for mine, other in zip(ours[stem], rows, strict=True)
            for a, b in zip(mine, other, strict=True)
        ),
        default=0.0,
    )
    agrees = same_as_floor and largest <= COORDINATE_TOLERANCE
    return agrees, (
        f"{'yes' if agrees else '**no**'}: {ours_lines:,} label lines in {len(ours):,} files; "
        f"identical to the floor's: {'yes' if same_as_floor else '**no**'}; largest difference "
        f"from convert_coco's {largest:.1e} (ours prints 6 decimals, it 6 significant digits)"
    )


def _result(
    case: Case,
    versus_theirs: Timing,
    versus_floor: Timing,
    floor_runs: Runs,
    peaks: dict[str, float],
    costs: _Costs,
    agreement: str,
    agrees: bool,
) -> BenchResult:
    unit = {
        "detect": "boxes",
        "segment": f"polygons of {case.points} points",
        "pose": f"objects of {case.points} keypoints",
    }[case.task]
    speedup, floor_ratio = 1 / versus_theirs.ratio, versus_floor.ratio
    target_speedup, target_floor = (3.0, 1.5) if case.task == "detect" else (2.0, 2.0)
    at_target = case.annotations == {"detect": LARGE_ANNOTATIONS, "segment": LARGE_POLYGONS}.get(
        case.task
    )
    rows = [
        (
            f"floor, best of {len(floor_runs.wall)}",
            f"{seconds(min(floor_runs.wall))}: orjson parse, group by image, format, one "
            "label file per image (no image opened, nothing checked)",
        ),
        ("**ours / floor**", f"**{floor_ratio:.2f}** (CPU time {versus_floor.cpu_ratio:.2f})"),
        (
            "CPU time per annotation, ours",
            ", ".join(
                f"{us * 1e6:.1f} µs at {n:,}" for n, us in sorted(costs.per_annotation.items())
            ),
        ),
    ]
    metrics: dict[str, float | bool | str] = {
        "task": case.task,
        "annotations": case.annotations,
        "images": case.images,
        "speedup_vs_convert_coco": round(speedup, 3),
        "ratio_vs_floor": round(floor_ratio, 3),
        "cpu_ratio_vs_floor": round(versus_floor.cpu_ratio, 3),
        "floor_wall_s": floor_runs.wall,
        "us_per_annotation": round(versus_theirs.best_ours / case.annotations * 1e6, 3),
        "cpu_us_per_annotation": round(min(versus_theirs.ours.cpu) / case.annotations * 1e6, 3),
        "convert_coco_over_floor": round(versus_theirs.best_theirs / min(floor_runs.wall), 3),
        "outputs_agree": agrees,
    }
    if peaks:
        rows.append(
            (
                "peak memory above the start (own process each)",
                f"ours {peaks['ours']:.0f} MiB, convert_coco {peaks['convert_coco']:.0f} MiB "
                f"({peaks['ours'] / peaks['convert_coco']:.2f}×), floor {peaks['floor']:.0f} MiB",
            )
        )
        metrics.update({f"peak_mib_{name}": round(mib, 1) for name, mib in peaks.items()})
    met = {
        f"≥ {target_speedup:g}× faster than convert_coco": speedup >= target_speedup,
        f"≤ {target_floor:g}× the floor": floor_ratio <= target_floor,
    }
    if peaks and case.task == "detect":
        met["peak memory ≤ convert_coco's"] = peaks["ours"] <= peaks["convert_coco"]
    verdicts = "; ".join(f"{what}: {'met' if ok else '**missed**'}" for what, ok in met.items())
    if at_target:
        rows.append(("targets (issue 13)", verdicts))
        metrics.update({f"target: {what}": ok for what, ok in met.items()})
    task = {"detect": "detection", "segment": "segmentation", "pose": "pose"}[case.task]
    option = {"detect": ")`", "segment": ", use_segments=True)`", "pose": ", use_keypoints=True)`"}
    return BenchResult(
        title=f"COCO → YOLO {task} conversion, {case.annotations:,} {unit.split()[0]}",
        what=f"one COCO {task} JSON + its image files → YOLO label files",
        sizes=(
            f"{case.images:,} JPEG images of {IMAGE_SIDE} px, {case.annotations:,} {unit} "
            f"({case.per_image} per image), {len(CATEGORIES)} categories"
        ),
        ours=(
            f"`load_coco` + `labelmap_from` + `convert_{task}` (reads every image header, "
            "links every image, validates, counts)"
        ),
        theirs=(
            "`ultralytics.data.converter.convert_coco(cls91to80=False"
            + option[case.task]
            + " (JSON only)"
        ),
        timing=versus_theirs,
        agreement=agreement,
        reading=_reading(
            case,
            speedup,
            floor_ratio,
            costs,
            verdicts if at_target else "",
            at_target and not all(met.values()),
        ),
        rows=rows,
        metrics=metrics,
    )


def _reading(
    case: Case,
    speedup: float,
    floor_ratio: float,
    costs: _Costs,
    verdicts: str,  # the targets' verdicts, at the targets' size
    missed: bool,
) -> str:
    per = sorted(costs.per_annotation.items())
    linear = ""
    if len(per) > 1:
        spread = max(us for _, us in per) / min(us for _, us in per)
        linear = (
            f" From {per[0][0]:,} to {per[-1][0]:,} annotations our CPU time per annotation "
            f"varies by {spread:.2f}× ({'linear' if spread < 1.5 else '**not linear**'} within "
            "the noise of a shared machine)."
        )
    speed = (
        f"ours is {speedup:.2f}× faster than convert_coco"
        if speedup >= 1
        else f"ours takes {1 / speedup:.2f}× convert_coco's time"
    )
    reading = (
        "**Reading.** convert_coco and the floor trust the JSON: they never open an image. "
        "Ours reads each image's header, links it into the YOLO layout and checks every "
        f"object; {speed}, and takes {floor_ratio:.2f}× the floor's time.{linear}"
    )
    if verdicts:
        reading += f" Targets at this size: {verdicts}."
    if missed:
        reading += " " + _GAP[case.task].format(floor_share=speedup * floor_ratio)
    return reading


# Why a missed speed target is missed, and what would close it (`floor_share`: convert_coco's
# time in floors).
_GAP = {
    "detect": (
        "**What would close it.** convert_coco itself takes only {floor_share:.1f}× the floor, "
        "so 3× faster than convert_coco means about the floor's time while opening, linking and "
        "checking every image too. Ours checks and formats the boxes with numpy, a batch of "
        "images at a time (`pictrain.data.decimals`), so the per-box work is below the floor's; "
        "what remains is per image (an open, a header read, a hard link, a label file: ~15 µs of "
        "system calls and Python) and per annotation (the index record evaluation reuses: "
        "~1.5 µs). The image pass is independent per image, so running it in a few processes "
        "(GPU machines have 8-32 cores) or compiled code for it would close the gap."
    ),
    "segment": (
        "**What would close it.** convert_coco takes only {floor_share:.1f}× the floor here. "
        "Ours checks plain polygons and formats every coordinate with numpy, a batch of images "
        "at a time; what remains is the JSON parse, the index of the polygons as Python lists, "
        "and the per-image file work. Keeping polygons as arrays in the index, or the image "
        "pass in several processes, would close it."
    ),
}
