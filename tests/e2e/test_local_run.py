"""`pictrain run --local` end to end, as a subprocess: the whole run-folder contract."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from pictrain.evaluate.coco_eval import STAT_NAMES
from pictrain.synthetic import make_detection_dataset
from tests.e2e.jobs import local_dataset, run_local

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PARAMETERS = {"epochs": 2, "batch_size": 4, "image_size": 64, "workers": 0, "seed": 1}


def _pictrain(*args: str) -> list[str]:
    return [sys.executable, "-m", "pictrain", *args]


@pytest.fixture(scope="module")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("local-run")
    # A size ultralytics would round, a batch larger than the train split: both adjusted.
    dataset = local_dataset(root / "dataset", {**PARAMETERS, "image_size": 48, "batch_size": 64})
    result = run_local(dataset, root / "runs", "tiny")
    return root / "runs" / "tiny", result


def test_run_succeeds(finished_run):
    run_dir, result = finished_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done" and status["reason"] is None
    assert "training on CPU" in result.stderr  # the devices that trained, named


def test_adjusted_parameters_are_the_ones_trained_exported_and_recorded(finished_run):
    run_dir, result = finished_run
    log = result.stdout + result.stderr
    assert "image_size 48 rounded up to 64, a multiple of 32" in log
    fitted = re.search(r"batch_size 64 is larger than the (\d+) training images", log)
    assert fitted, log[-3000:]
    trained = yaml.safe_load((run_dir / "train" / "args.yaml").read_text())
    recorded = yaml.safe_load((run_dir / "artifacts" / "config.yaml").read_text())["parameters"]
    assert trained["imgsz"] == recorded["image_size"] == 64  # and the ONNX input, below
    assert trained["batch"] == recorded["batch_size"] == int(fitted.group(1))


def test_metrics_stream_one_point_per_epoch(finished_run):
    run_dir, _ = finished_run
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    curves: dict[str, list[int]] = {}
    for record in records:
        if record["step"] is not None:
            curves.setdefault(record["name"], []).append(record["step"])
    for name in ("train/box_loss", "val/mAP50(B)", "val/mAP50-95(B)", "lr/pg0"):
        assert curves[name] == [1, 2], name
    finals = {r["name"]: r["value"] for r in records if r["step"] is None}
    assert {"test/mAP50-95(B)", "test/mAP50(B)", "test/mAP75(B)", "test/AR100(B)"} <= set(finals)
    gate = {"test/onnx-mAP50-95", "test/onnx-mAP50-95-difference"}
    assert set(finals) - gate <= {f"test/{name}(B)" for name in STAT_NAMES}
    # COCO's -1 (nothing to measure) left out
    assert all(0 <= v <= 1 for name, v in finals.items() if name not in gate)


def test_data_health_report(finished_run):
    """Each split's conversion summary and label distribution, as TABLE and BAR logs."""
    run_dir, _ = finished_run
    for split in ("train", "val", "test"):
        bar = json.loads((run_dir / "bars" / f"{split}_label-distribution.json").read_text())
        assert bar["x"] == ["circle", "square", "triangle"] and sum(bar["y"]) > 0, bar
        table = json.loads((run_dir / "tables" / f"{split}_conversion.json").read_text())
        assert table["rows"][:2] == ["images in", "images written"]
        assert table["columns"] == ["count"] and len(table["data"]) == len(table["rows"])


def test_artifacts(finished_run):
    run_dir, _ = finished_run
    artifacts = run_dir / "artifacts"
    expected = {
        "best-model.pt",
        "model-latest.onnx",
        "labelmap.json",
        "config.yaml",
        "manifest.json",
    }
    assert expected <= {p.name for p in artifacts.iterdir()}
    assert json.loads((artifacts / "labelmap.json").read_text()) == {
        "0": "circle",
        "1": "square",
        "2": "triangle",
    }
    config = yaml.safe_load((artifacts / "config.yaml").read_text())
    assert config["task"] == "detect" and config["model"] == "yolov8n"
    assert config["parameters"]["epochs"] == 2 and config["parameters"]["image_size"] == 64
    manifest = json.loads((artifacts / "manifest.json").read_text())
    assert manifest["packages"]["ultralytics"] and manifest["packages"]["torch"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    assert manifest["git_sha"] == (head.stdout.strip() or None)  # from source: the checkout's
    assert set(manifest["inputs"]["splits"]) == {"train", "val", "test"}
    assert all(len(s["annotations_sha256"]) == 64 for s in manifest["inputs"]["splits"].values())
    trained = config["parameters"]["batch_size"]  # fitted to the train split: what trained
    assert manifest["inputs"]["devices"] == {"device": "cpu", "gpus": [], "batch": trained}


def test_onnx_model_runs_in_onnxruntime(finished_run):
    import onnxruntime

    from pictrain.evaluate.onnx_model import (
        IMAGE_SIZE_KEY,
        LABELMAP_KEY,
        OUTPUTS_KEY,
        RAW,
        TASK_KEY,
        OnnxModel,
    )

    run_dir, _ = finished_run
    onnx = run_dir / "artifacts" / "model-latest.onnx"
    session = onnxruntime.InferenceSession(str(onnx))
    (model_input,) = session.get_inputs()
    assert model_input.name == "images" and model_input.shape == [1, 3, 64, 64]
    (output,) = session.run(None, {"images": np.zeros((1, 3, 64, 64), np.float32)})
    assert output.shape[:2] == (1, 4 + 3)  # raw head: 4 box coordinates + 3 class scores
    meta = session.get_modelmeta().custom_metadata_map  # ours, beside ultralytics' own keys
    assert (meta[TASK_KEY], meta[IMAGE_SIZE_KEY]) == ("detect", "64")
    assert json.loads(meta[LABELMAP_KEY]) == {"0": "circle", "1": "square", "2": "triangle"}
    assert meta[OUTPUTS_KEY] == RAW  # YOLOv8 has no NMS-free head: exported as Picsellia's are
    model = OnnxModel.load(onnx)
    assert (model.task, model.image_size, model.outputs) == ("detect", 64, RAW)
    assert model.names == ["circle", "square", "triangle"]


def test_deploy_parity_gate_scores_the_onnx_export_as_the_weights(finished_run):
    run_dir, _ = finished_run
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    finals = {r["name"]: r["value"] for r in records if r["step"] is None}
    assert finals["test/onnx-mAP50-95"] == pytest.approx(finals["test/mAP50-95(B)"], abs=0.01)
    assert finals["test/onnx-mAP50-95-difference"] == pytest.approx(
        finals["test/onnx-mAP50-95"] - finals["test/mAP50-95(B)"]
    )
    parity = json.loads((run_dir / "tables" / "test_deploy-parity.json").read_text())
    assert parity["rows"] == ["mAP50-95(B)"]
    weights = json.loads((run_dir / "evaluation" / "predictions.json").read_text())
    exported = json.loads((run_dir / "evaluation" / "onnx" / "predictions.json").read_text())

    # Both score down to 0.001; near that floor a float's rounding decides whether a box is
    # kept at all, so the comparison is over the boxes clearly above it, both ways.
    for ours, theirs in ((weights, exported), (exported, weights)):
        for p in (p for p in ours if p["score"] >= 0.05):
            assert any(_same_prediction(p, q) for q in theirs), p


def _same_prediction(a: dict, b: dict) -> bool:
    return (
        a["image_id"] == b["image_id"]
        and a["category_id"] == b["category_id"]
        and abs(a["score"] - b["score"]) <= 0.02
        and all(abs(x - y) <= 1.0 for x, y in zip(a["bbox"], b["bbox"], strict=True))
    )


def test_operating_point_chosen_on_val_reported_on_test_and_carried_by_the_exports(finished_run):
    from pictrain.evaluate.onnx_model import OnnxModel
    from pictrain.evaluate.operating_point import threshold_of_table

    run_dir, _ = finished_run
    point = json.loads((run_dir / "evaluation" / "operating_point.json").read_text())
    assert 0 < point["threshold"] < 1 and point["chosen_by"]
    assert set(point["per_class"]) == {"circle", "square", "triangle"}
    assert {"precision", "recall", "f1"} <= point["test"]["all"].keys()
    table = json.loads((run_dir / "tables" / "operating-point.json").read_text())
    assert threshold_of_table(table) == point["threshold"]
    exported = OnnxModel.load(run_dir / "artifacts" / "model-latest.onnx").operating_point
    config = yaml.safe_load((run_dir / "artifacts" / "config.yaml").read_text())
    assert (
        exported
        == config["operating_point"]
        == {k: point[k] for k in ("threshold", "per_class", "chosen_by")}
    )
    # Evaluations are sent at it (conf_threshold unset): each box at its class's threshold.
    for line in (run_dir / "evaluations.jsonl").read_text().splitlines():
        for box in json.loads(line)["detections"]:
            assert box["score"] >= point["per_class"][box["label"]]


def test_evaluation_folder(finished_run):
    run_dir, _ = finished_run
    evaluation = run_dir / "evaluation"
    stats = json.loads((evaluation / "coco_stats.json").read_text())
    assert list(stats) == list(STAT_NAMES)
    predictions = json.loads((evaluation / "predictions.json").read_text())
    assert all({"image_id", "category_id", "bbox", "score"} <= p.keys() for p in predictions)
    ground_truth = json.loads((evaluation / "ground_truth.json").read_text())
    evaluations = (run_dir / "evaluations.jsonl").read_text().splitlines()
    assert len(evaluations) == len(ground_truth["images"]) > 0
    assert (run_dir / "tables" / "test_per-class-AP_B_.json").is_file()


def test_training_plots(finished_run):
    """Named for the split they show; the val confusion matrix redrawn with true on rows (ours is
    square, ultralytics' own 3000 x 2250 pixels)."""
    import cv2

    run_dir, _ = finished_run
    plots = {p.name for p in (run_dir / "plots").glob("*.png")}
    assert "results.png" in plots and "val_confusion_matrix.png" in plots
    assert not {p for p in plots if p != "results.png" and not p.startswith("val_")}
    height, width = cv2.imread(str(run_dir / "plots" / "val_confusion_matrix.png")).shape[:2]
    assert height == width


def test_the_run_folder_table_lists_what_a_run_leaves(finished_run):
    """docs/run-folder.md's table names every entry of the run folder and of artifacts/."""
    run_dir, _ = finished_run
    table = (REPO / "docs" / "run-folder.md").read_text()
    first_column = re.findall(r"^\| ([^|]*`[^|]*) \|", table, re.M)
    documented = [path for cell in first_column for path in re.findall(r"`([^`]+)`", cell)]
    top = {path.split("/")[0] for path in documented}
    assert {p.name for p in run_dir.iterdir()} <= top
    assert "relay" in top  # left by DDP runs only (train/runner.py), which this one is not
    artifacts = {path.split("/", 1)[1] for path in documented if path.startswith("artifacts/")}
    assert {p.name for p in (run_dir / "artifacts").iterdir()} <= artifacts


def test_unknown_parameter_fails_with_the_reason_and_no_traceback(tmp_path):
    dataset = local_dataset(tmp_path / "dataset", {**PARAMETERS, "epochz": 3}, n_images=4)
    result = run_local(dataset, tmp_path / "runs", "bad")
    assert result.returncode == 2
    status = json.loads((tmp_path / "runs" / "bad" / "status.json").read_text())
    assert status["status"] == "failed" and "'epochz'" in status["reason"]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--local", "no-such-folder"], "dataset folder no-such-folder does not exist"),
        (["--local", ".", "--config", "missing.toml"], "missing.toml"),
    ],
)
def test_a_failure_before_the_job_starts_writes_status_json(tmp_path, args, reason):
    result = subprocess.run(
        _pictrain("run", *args, "--name", "early", "--runs-dir", str(tmp_path / "runs")),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    status = json.loads((tmp_path / "runs" / "early" / "status.json").read_text())
    assert status["status"] == "failed" and reason in status["reason"]
    assert status["exit_code"] == 2
    assert "Traceback" not in result.stderr + result.stdout


def test_dataset_without_usable_images_fails_clearly(tmp_path):
    dataset = local_dataset(tmp_path / "dataset", PARAMETERS, n_images=4)
    for image in (dataset / "train" / "images").iterdir():
        image.write_bytes(b"not a jpeg")
    result = run_local(dataset, tmp_path / "runs", "corrupt")
    assert result.returncode == 2
    status = json.loads((tmp_path / "runs" / "corrupt" / "status.json").read_text())
    assert "0 usable images" in status["reason"]
    assert "Traceback" not in result.stderr + result.stdout


def test_sigterm_fails_the_run_and_keeps_the_weights_trained_so_far(tmp_path):
    dataset = local_dataset(tmp_path / "dataset", {**PARAMETERS, "epochs": 200}, n_images=8)
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        _pictrain(
            "run",
            "--local",
            str(dataset),
            "--name",
            "stopped",
            "--runs-dir",
            str(runs),
        ),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = runs / "stopped" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and "val/mAP50(B)" in metrics.read_text()):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    status = json.loads((runs / "stopped" / "status.json").read_text())
    assert status["status"] == "failed" and "SIGTERM" in status["reason"]
    assert (runs / "stopped" / "artifacts" / "best-model.pt").is_file()


def test_convert_command_writes_yolo_layout(tmp_path):
    files = make_detection_dataset(tmp_path / "coco", n_images=4, image_size=64, seed=0)
    out = tmp_path / "yolo"
    result = subprocess.run(
        _pictrain(
            "convert",
            "--task",
            "detect",
            "--coco",
            str(files["train"]),
            "--images",
            str(tmp_path / "coco" / "train" / "images"),
            "--out",
            str(out),
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((out / "labels" / "train").glob("*.txt"))) == 4
    assert (out / "data.yaml").is_file()


def test_demo_data_only_makes_the_demo_dataset_and_trains_nothing(tmp_path):
    """`make emulator` seeds from it: the demo's images and parameters, not the image's
    defaults (100 epochs at 640 px on a CPU)."""
    from pictrain.cli import DEMO_PARAMETERS

    result = subprocess.run(
        _pictrain("demo", "--data-only", "--data", "demo", "--images", "8"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "demo" / "parameters.json").read_text()) == DEMO_PARAMETERS
    coco = json.loads((tmp_path / "demo" / "train" / "annotations.json").read_text())
    assert len(coco["images"]) == 8
    assert not (tmp_path / "runs").exists()


def test_convert_without_its_image_folder_fails_in_one_line(tmp_path):
    """A mistyped --images is the user's error, not 0 images written and exit 0."""
    files = make_detection_dataset(tmp_path / "coco", n_images=2, image_size=64, seed=0)
    result = subprocess.run(
        _pictrain("convert", "--coco", str(files["train"]), "--images", "nope", "--out", "yolo"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "image folder nope does not exist" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "yolo").exists()


@pytest.mark.parametrize(
    ("task", "metric", "evaluation_file"),
    [
        ("segment", "test/mAP50-95(M)", "coco_stats_segm.json"),
        ("classify", "test/accuracy_top1", "classification_report.json"),
        ("pose", "test/mAP50-95(P)", "coco_stats_keypoints.json"),
        ("obb", "test/mAP50-95(B)", "coco_stats.json"),
    ],
)
def test_other_tasks_run_end_to_end(tmp_path, task, metric, evaluation_file):
    from pictrain.synthetic import DATASET_MAKERS

    dataset = tmp_path / "dataset"
    DATASET_MAKERS[task](dataset, n_images=16, image_size=64, seed=0)
    (dataset / "parameters.json").write_text(json.dumps(PARAMETERS))
    runs = tmp_path / "runs"
    result = subprocess.run(
        _pictrain(
            "run", "--local", str(dataset), "--task", task, "--name", task, "--runs-dir", str(runs)
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = runs / task
    finals = {
        r["name"]
        for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        if r["step"] is None
    }
    assert metric in finals
    assert {name for name in finals if name.startswith("test/onnx-")}
    assert (run_dir / "evaluation" / evaluation_file).is_file()
    assert (run_dir / "evaluation" / "onnx" / evaluation_file).is_file()
    assert (run_dir / "artifacts" / "model-latest.onnx").is_file()
    config = yaml.safe_load((run_dir / "artifacts" / "config.yaml").read_text())
    assert config["task"] == task
    evaluations = [
        json.loads(line) for line in (run_dir / "evaluations.jsonl").read_text().splitlines()
    ]
    shape = {
        "segment": "polygons",
        "classify": "classifications",
        "pose": "keypoints",
        "obb": "polygons",
    }[task]
    assert evaluations and all(not e["detections"] for e in evaluations)
    _operating_point_and_champion(task, dataset, run_dir, config)
    if task == "pose":  # the layout trained, in the config and the deployable file
        from pictrain.evaluate.onnx_model import OnnxModel
        from pictrain.synthetic import POSE_EDGES, POSE_POINTS

        assert config["keypoints"]["keypoints"] == list(POSE_POINTS)
        assert config["keypoints"]["flip_idx"] == [0, 2, 1, 3, 4]
        onnx = OnnxModel.load(run_dir / "artifacts" / "model-latest.onnx")
        assert onnx.skeleton == {"keypoints": list(POSE_POINTS), "skeleton": POSE_EDGES}
        assert "boxes made from the labelled keypoints, padded" in result.stderr
    if task == "classify":  # the top class, where it reaches its class's threshold
        point = json.loads((run_dir / "evaluation" / "operating_point.json").read_text())
        assert all(len(e[shape]) <= 1 for e in evaluations)
        kept = [c for e in evaluations for c in e[shape]]
        assert all(c["score"] >= point["per_class"][c["label"]] for c in kept)
        heatmap = json.loads((run_dir / "heatmaps" / "test_confusion-matrix.json").read_text())
        assert heatmap["categories"] == ["circle", "square", "triangle"]
        assert sum(map(sum, heatmap["values"])) == len(evaluations)


def _operating_point_and_champion(task: str, data: Path, run_dir: Path, config: dict) -> None:
    """Every task has its operating point, in its table, config.yaml and deployable file; and
    its champion comparison runs: the run's own weights as the champion score what the run
    logged, number for number (the same path), and are not worse."""
    from pictrain.data.prepare import prepare_dataset
    from pictrain.evaluate import champion
    from pictrain.evaluate.onnx_model import OnnxModel
    from pictrain.evaluate.operating_point import threshold_of_table
    from pictrain.platform.local import LocalBackend

    point = json.loads((run_dir / "evaluation" / "operating_point.json").read_text())
    assert set(point["per_class"]) == set(config["labelmap"].values())
    table = json.loads((run_dir / "tables" / "operating-point.json").read_text())
    assert threshold_of_table(table) == point["threshold"]
    exported = OnnxModel.load(run_dir / "artifacts" / "model-latest.onnx").operating_point
    chosen = {k: point[k] for k in ("threshold", "per_class", "chosen_by")}
    assert exported == config["operating_point"] == chosen
    records = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    logged = {
        r["name"].removeprefix("test/"): r["value"]
        for r in records
        if r["step"] is None and r["name"].startswith("test/") and "onnx" not in r["name"]
    }
    folder = run_dir.parent / "champion"
    splits = LocalBackend(data, folder / "run").datasets(folder / "downloads")
    dataset = prepare_dataset(task, splits, folder / "dataset", seed=0)
    weights = run_dir / "artifacts" / "best-model.pt"
    compared = champion.compare(
        task, weights, "checkpoint-weights-latest", dataset, logged, 0.005, 64, "cpu", folder
    )
    assert compared.champion == logged and compared.verdict == "not worse"
