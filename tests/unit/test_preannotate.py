"""Pre-annotation without a platform: parameters read as the training image reads its own, the
prediction -> annotation mapping, the what-to-label-next signals and picks, the operating point
from the export, and `pictrain preannotate --local` writing a COCO file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from pictrain.errors import UserError
from pictrain.evaluate.instance import Instance, oriented
from pictrain.platform.evaluations import Unsendable
from pictrain.preannotate.local import scores_file
from pictrain.preannotate.model import Predictor
from pictrain.preannotate.params import default_parameters, read_parameters
from pictrain.preannotate.scoring import (
    NEAR_DUPLICATE_COSINE,
    Ranking,
    Signals,
    disagreement,
    fingerprint,
    measure,
    similarity,
    unmirror,
)
from pictrain.preannotate.shapes import annotations, written_as
from pictrain.synthetic import make_detection_dataset
from tests.unit.preannotate_setup import LABELS, SIZE, detect_model, pictrain

# --- parameters ---------------------------------------------------------------------------------


def test_parameters_read_picsellias_keys_and_strings() -> None:
    parsed = read_parameters(
        {
            "threshold": "0.3",
            "replace_annotations": "yes",
            "label_matching_strategy": "ADD",
            "image_size": 640,
            "agnostic_nms": True,
            "someone_elses": 1,
        }
    )
    params = parsed.params
    assert params.confidence_threshold == 0.3 and params.replace_annotations
    assert params.label_matching_strategy == "add"
    assert set(parsed.ignored) == {"image_size", "agnostic_nms", "someone_elses"}
    assert "input size is fixed" in parsed.ignored["image_size"]
    assert read_parameters({"confidence_threshold": "None"}).params.confidence_threshold is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"to_lable": 3}, "did you mean 'to_label'?"),
        ({"confidence_treshold": 0.3}, "did you mean 'confidence_threshold'?"),
        ({"confidence_threshold": 1.5}, "confidence_threshold"),
        ({"batch_size": 0}, "batch_size"),
        ({"label_matching_strategy": "fuzzy"}, "label_matching_strategy"),
        ({"threshold": 0.3, "confidence_threshold": 0.4}, "given twice"),
        ({"to_label_tag": 'a"b'}, "to_label_tag"),
    ],
)
def test_bad_parameters_fail_with_one_line(raw: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        read_parameters(raw)


def test_the_processing_offers_every_parameter_at_its_default() -> None:
    defaults = default_parameters()
    assert read_parameters(defaults).params.model_dump(mode="json") == defaults
    assert defaults["to_label"] == 20 and defaults["confidence_threshold"] is None


# --- prediction -> annotation -------------------------------------------------------------------


def test_boxes_become_integer_coco_entries_inside_the_image() -> None:
    kept = [
        Instance(0, (10.4, 5.6, 20.2, 30.0), None, 0.91),
        Instance(1, (-5.0, 50.0, 30.0, 30.0), None, 0.5),  # RT-DETR: past the edge
        Instance(1, (3.0, 3.0, 0.4, 9.0), None, 0.6),  # thinner than a pixel: refused
    ]
    refused = Unsendable()
    found = annotations("rectangles", kept, ["a", "b"], (64, 60), refused)
    assert [(f.label, f.geometry["bbox"]) for f in found] == [
        ("a", [10, 6, 20, 30]),
        ("b", [0, 50, 25, 10]),
    ]
    assert refused.thin_boxes == 1
    assert found[0].coco(7, 3, 1) == {
        "id": 7,
        "image_id": 3,
        "category_id": 1,
        "iscrowd": 0,
        "score": 0.91,
        "bbox": [10, 6, 20, 30],
        "area": 600,
    }


def test_outlines_and_classes() -> None:
    square = [(10.0, 10.0), (30.0, 10.0), (30.0, 20.0), (10.0, 20.0)]
    flat = [(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]
    kept = [Instance(0, (10, 10, 20, 10), square, 0.8), Instance(0, (1, 1, 2, 0), flat, 0.7)]
    refused = Unsendable()
    (outline,) = annotations("polygons", kept, ["a"], (64, 64), refused)
    assert outline.geometry == {
        "bbox": [10, 10, 20, 10],
        "area": 200.0,
        "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]],
    }
    assert refused.flat_polygons == 1
    (label,) = annotations(
        "classifications", [Instance(1, (0, 0, 64, 48), None, 0.7)], ["a", "b"], (64, 48), refused
    )
    assert (label.label, label.geometry) == ("b", {"bbox": [0, 0, 64, 48], "area": 3072})


def test_keypoints_and_oriented_boxes_are_one_entry_each() -> None:
    """A pose: its box and its points (visible from even odds); an oriented box: its corners as
    an outline, or its upright box in a version of boxes."""
    points = np.array([[12.4, 20.0, 0.9], [30.0, 22.0, 0.2]])
    pose = Instance(0, (10.0, 15.0, 25.0, 30.0), None, 0.8, keypoints=points)
    (entry,) = annotations(
        written_as("pose", "KEYPOINT"), [pose], ["person"], (64, 64), Unsendable()
    )
    assert entry.geometry == {
        "bbox": [10, 15, 25, 30],
        "area": 750,
        "keypoints": [12, 20, 2, 30, 22, 0],
        "num_keypoints": 1,
    }
    turned = oriented(0, np.array([[10, 0], [20, 10], [10, 20], [0, 10]]), 0.9, (64, 64))
    (outline,) = annotations(
        written_as("obb", "SEGMENTATION"), [turned], ["ship"], (64, 64), Unsendable()
    )
    assert outline.geometry["segmentation"] == [[10, 0, 20, 10, 10, 20, 0, 10]]
    assert outline.geometry["area"] == 200.0
    (box,) = annotations(
        written_as("obb", "OBJECT_DETECTION"), [turned], ["ship"], (64, 64), Unsendable()
    )
    assert box.geometry == {"bbox": [0, 0, 20, 20], "area": 400}
    assert [
        written_as(t, k)
        for t, k in [
            ("detect", "OBJECT_DETECTION"),
            ("segment", "SEGMENTATION"),
            ("classify", "CLASSIFICATION"),
        ]
    ] == ["rectangles", "polygons", "classifications"]


# --- what to label next -------------------------------------------------------------------------


def test_flip_disagreement() -> None:
    box = Instance(0, (10.0, 10.0, 20.0, 20.0), None, 0.9)
    mirrored_back = unmirror([Instance(0, (34.0, 10.0, 20.0, 20.0), None, 0.9)], 64)
    assert mirrored_back[0].box == (10.0, 10.0, 20.0, 20.0)
    assert disagreement("detect", [box], mirrored_back) == 0.0
    assert disagreement("detect", [box], []) == 1.0
    assert disagreement("detect", [], []) == 0.0
    other_class = [Instance(1, box.box, None, 0.9)]
    assert disagreement("detect", [box], other_class) == 1.0
    half = [Instance(0, (20.0, 10.0, 20.0, 20.0), None, 0.9)]
    assert disagreement("detect", [box], half) == pytest.approx(1 - 1 / 3)
    assert disagreement("classify", [Instance(0, box.box, None, 0.9)], other_class) == 1.0


def test_confidence_and_margin() -> None:
    sure = Instance(0, (0, 0, 5, 5), None, 0.95, runner_up=0.01)
    torn = Instance(1, (0, 0, 5, 5), None, 0.6, runner_up=0.55)
    faint = Instance(0, (0, 0, 5, 5), None, 0.25, runner_up=0.0)
    levels = [0.25, 0.25]
    quiet = measure("detect", [sure], [sure], None, levels, 64)
    assert quiet.confidence == pytest.approx(0.05 / 0.75) and quiet.margin < 0.02
    assert quiet.flip is None
    near = measure("detect", [sure, faint], [sure], None, levels, 64)
    assert near.confidence == pytest.approx(1.0)  # a prediction right at its threshold
    blip = Instance(0, (0, 0, 5, 5), None, 0.05, runner_up=0.0)
    assert measure("detect", [blip], [], None, levels, 64).confidence == pytest.approx(0.2)
    assert measure("detect", [torn], [torn], None, levels, 64).margin == pytest.approx(0.55 / 0.6)
    rtdetr = Instance(0, (0, 0, 5, 5), None, 0.9)  # one score per query
    assert measure("detect", [rtdetr], [rtdetr], None, levels, 64).margin is None
    assert measure("detect", [], [], [], levels, 64) == Signals(0.0, 0.0, 0.0)
    top = Instance(0, (0, 0, 64, 64), None, 0.5, runner_up=0.4)
    classified = measure("classify", [top], [top], [top], levels, 64)
    assert classified == Signals(0.5, pytest.approx(0.8), 0.0)


def test_picks_skip_near_duplicates_of_labelled_and_picked_images(tmp_path: Path) -> None:
    (coco,) = make_detection_dataset(tmp_path, 40, 96, seed=3).values()
    images = [_read(p) for p in sorted((coco.parent / "images").iterdir())]
    prints = [fingerprint(image) for image in images]
    shifted = np.clip(images[0].astype(int) + 12, 0, 255).astype(np.uint8)
    reencoded = cv2.imdecode(cv2.imencode(".jpg", shifted, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], 1)
    copy = fingerprint(reencoded)
    table = np.frombuffer(b"".join(prints), np.int8).reshape(len(prints), -1)
    assert similarity(copy, table[:1])[0] > 0.99
    others = [similarity(d, np.delete(table, k, 0)).max() for k, d in enumerate(prints)]
    assert max(others) < NEAR_DUPLICATE_COSINE
    ranking = Ranking(wanted=3)
    ranking.labelled(prints[0])
    for key, score, digest in [
        ("copy-of-labelled", 0.9, copy),
        ("b", 0.8, prints[1]),
        ("copy-of-b", 0.7, prints[1]),
        ("c", 0.6, prints[2]),
        ("d", 0.5, prints[3]),
    ]:
        ranking.add(key, key, digest, Signals(score, None, None))
    picks, skipped = ranking.select()
    assert [p.key for p in picks] == ["b", "c", "d"] and skipped == 2


def _read(path: Path) -> np.ndarray:
    from pictrain.evaluate.onnx_model import read_image

    return read_image(path)


# --- thresholds ---------------------------------------------------------------------------------


def test_the_exports_operating_point_sets_the_thresholds_per_class(tmp_path: Path) -> None:
    path = detect_model(tmp_path / "m.onnx")
    assert Predictor.load(path, "m", None, scoring=True).thresholds.overall == 0.25
    model = onnx.load(str(path))
    point = {"threshold": 0.4, "per_class": {"circle": 0.95, "nope": 0.1}, "chosen_by": "F1"}
    model.metadata_props.add(key="operating_point", value=json.dumps(point))
    onnx.save(model, str(path))
    predictor = Predictor.load(path, "m", None, scoring=True)
    at = predictor.thresholds
    wanted = [0.95 if name == "circle" else 0.4 for name in LABELS]
    assert [at.of(k) for k in range(len(LABELS))] == wanted
    assert "operating point (F1)" in at.chosen_by
    pixels = np.zeros((SIZE, SIZE, 3), np.uint8)
    kept = predictor.kept(predictor.candidates(pixels))
    assert [LABELS[i.cls] for i in kept] == ["bogus"]  # the circle's 0.9 is under its 0.95
    given = Predictor.load(path, "m", 0.5, scoring=True).thresholds
    assert [given.of(k) for k in range(len(LABELS))] == [0.5] * len(LABELS)
    assert given.chosen_by == "confidence_threshold 0.5"


# --- a local folder -----------------------------------------------------------------------------


def test_local_folder_to_a_coco_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (coco,) = make_detection_dataset(tmp_path / "data", 4, SIZE, seed=0).values()
    folder = coco.parent / "images"
    (folder / "zz-broken.png").write_bytes(b"\x89PNG nothing")
    model = detect_model(tmp_path / "m.onnx")
    out = tmp_path / "out" / "pre.json"
    code, output = pictrain(
        capsys,
        "preannotate",
        "--local",
        str(folder),
        "--model",
        str(model),
        "--out",
        str(out),
        "--to-label",
        "2",
    )
    assert code == 0, output
    document = json.loads(out.read_text())
    assert [c["name"] for c in document["categories"]] == LABELS
    assert [i["file_name"] for i in document["images"]] == sorted(
        p.name for p in folder.glob("*.jpg")
    )
    assert len(document["annotations"]) == 8  # a circle and a bogus box per image, nothing weak
    assert {a["score"] for a in document["annotations"]} == {0.9, 0.8}
    assert "1 assets unreadable, e.g. zz-broken.png" in output
    rows = list(csv.DictReader(scores_file(out).open()))
    assert len(rows) == 4 and sum(int(r["picked"]) for r in rows) == 2
    assert [float(r["score"]) for r in rows] == sorted(
        (float(r["score"]) for r in rows), reverse=True
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nothing.onnx", "--out", "o.json"], "--model nothing.onnx does not exist"),
        (["--out", "o.json"], "--local needs --model FILE"),
        (["--model", "{model}", "--out", "o.json", "--threshold", "2"], "confidence_threshold"),
        (["--model", "{model}", "--out", "{folder}"], "--out {folder} is a folder, not a file"),
    ],
)
def test_local_bad_input_is_one_error_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = detect_model(tmp_path / "m.onnx")
    args = [a.replace("{model}", str(model)).replace("{folder}", str(tmp_path)) for a in args]
    message = message.replace("{folder}", str(tmp_path))
    code, output = pictrain(capsys, "preannotate", "--local", str(tmp_path), *args)
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and message in errors[0], output


# --- docs ---------------------------------------------------------------------------------------


def test_the_docs_list_every_parameter_as_the_code_has_it() -> None:
    """docs/preannotate.md's table, between its markers, is the parameters' model."""
    from pydantic import AliasChoices

    from pictrain.preannotate.params import PreannotateParameters

    rows = ["| name | aliases | default | notes |", "|---|---|---|---|"]
    defaults = default_parameters()
    for name, spec in PreannotateParameters.model_fields.items():
        alias = spec.validation_alias
        others = [a for a in alias.choices if a != name] if isinstance(alias, AliasChoices) else []
        default = defaults[name]
        shown = (
            "null"
            if default is None
            else str(default).lower()
            if isinstance(default, bool)
            else default
        )
        aliases = ", ".join(f"`{a}`" for a in others)
        rows.append(f"| `{name}` | {aliases} | `{shown}` | {spec.description} |")
    text = (Path(__file__).parents[2] / "docs" / "preannotate.md").read_text()
    documented = text.split("<!-- preannotate:params -->\n", 1)[1].split("\n<!--", 1)[0]
    assert documented == "\n".join(rows)
