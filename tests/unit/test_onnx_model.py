"""`OnnxModel` does around the network what ultralytics does around its weights, number for
number: the same pre- and post-processing, fed the same raw outputs."""

import numpy as np
import pytest
import torch
from PIL import Image

from pictrain.evaluate.onnx_model import END2END, RAW, OnnxModel, _centre_crop, _letterbox
from tests.unit.onnx_stub import constant_model

SIZE = 64
NAMES = ["a", "b", "c"]
SHAPES = [(64, 64), (48, 80), (90, 50), (120, 120), (31, 17)]  # height, width


def _image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_letterbox_is_ultralytics(height, width):
    from ultralytics.data.augment import LetterBox

    pixels = _image(height, width)
    tensor, _ = _letterbox(pixels, SIZE)
    theirs = LetterBox((SIZE, SIZE), auto=False)(image=pixels)
    expected = (theirs[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255)[None]
    np.testing.assert_array_equal(tensor, expected)


@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_classification_crop_is_ultralytics(height, width):
    from ultralytics.data.augment import classify_transforms

    pixels = _image(height, width)
    expected = classify_transforms(SIZE)(Image.fromarray(pixels[:, :, ::-1].copy()))
    np.testing.assert_allclose(_centre_crop(pixels, SIZE)[0], expected.numpy(), atol=1e-6)


def _raw_head(extra=0, anchors=84, seed=1):
    """(1, 4 + classes + extra, anchors): boxes all over the input, distinct scores."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, SIZE, (2, anchors))
    sides = rng.uniform(2, SIZE / 2, (2, anchors))
    scores = rng.uniform(0, 1, (len(NAMES), anchors)) ** 3
    coefficients = rng.normal(0, 1, (extra, anchors))
    return np.concatenate([centres, sides, scores, coefficients])[None].astype(np.float32)


def _end2end_rows(extra=0, rows=300, seed=1):
    """(1, rows, 6 + extra), as YOLO26's NMS-free head: x1 y1 x2 y2 inside the input, scores
    best first, class, mask coefficients."""
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, SIZE * 0.7, (rows, 2))
    far = np.minimum(corners + rng.uniform(2, SIZE / 2, (rows, 2)), SIZE)
    scores = np.sort(rng.uniform(0, 1, rows) ** 3)[::-1, None]
    classes = rng.integers(0, len(NAMES), (rows, 1))
    coefficients = rng.normal(0, 1, (rows, extra))
    return np.concatenate([corners, far, scores, classes, coefficients], 1)[None].astype(np.float32)


HEADS = {RAW: _raw_head, END2END: _end2end_rows}


def _ultralytics_boxes(raw, shape, nc=0, kind=RAW):
    from ultralytics.utils import nms, ops

    (pred,) = nms.non_max_suppression(
        torch.from_numpy(raw), 0.001, 0.7, max_det=100, nc=nc, end2end=kind == END2END
    )
    boxes = ops.scale_boxes((SIZE, SIZE), pred[:, :4].clone(), shape)
    return pred, boxes


@pytest.mark.parametrize("kind", HEADS)
@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_detection_post_processing_is_ultralytics(tmp_path, kind, height, width):
    raw = HEADS[kind]()
    model = OnnxModel.load(constant_model(tmp_path / "m.onnx", [raw], "detect", NAMES, SIZE))
    assert model.outputs == kind  # no `outputs` key in the stub: told by the shape
    ours = model.predict(_image(height, width), conf=0.001)
    pred, boxes = _ultralytics_boxes(raw, (height, width), kind=kind)
    assert len(ours) == len(pred) > 10
    assert [i.cls for i in ours] == pred[:, 5].int().tolist()
    np.testing.assert_allclose([i.score for i in ours], pred[:, 4].numpy(), rtol=1e-6)
    xyxy = [(x, y, x + w, y + h) for x, y, w, h in (i.box for i in ours)]
    np.testing.assert_allclose(xyxy, boxes.numpy(), atol=1e-3)


@pytest.mark.parametrize("kind", HEADS)
@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_segmentation_post_processing_is_ultralytics(tmp_path, kind, height, width):
    from ultralytics.utils import ops

    raw = HEADS[kind](extra=32)
    protos = np.random.default_rng(2).normal(0, 1, (1, 32, SIZE // 4, SIZE // 4))
    path = constant_model(tmp_path / "m.onnx", [raw, protos], "segment", NAMES, SIZE, "Segment")
    model = OnnxModel.load(path)
    assert model.outputs == kind
    ours = model.predict(_image(height, width), conf=0.001)
    pred, _ = _ultralytics_boxes(raw, (height, width), nc=len(NAMES), kind=kind)
    proto = torch.from_numpy(protos[0].astype(np.float32))
    masks = ops.process_mask(proto, pred[:, 6:], pred[:, :4], (SIZE, SIZE), upsample=True)
    keep = masks.amax((-2, -1)) > 0
    pred, masks = pred[keep], masks[keep]
    boxes = ops.scale_boxes((SIZE, SIZE), pred[:, :4].clone(), (height, width))
    expected = (ops.scale_masks(masks[None].float(), (height, width))[0] > 0.5).numpy()
    assert len(ours) == len(pred) > 5
    assert [i.cls for i in ours] == pred[:, 5].int().tolist()
    xyxy = [(x, y, x + w, y + h) for x, y, w, h in (i.box for i in ours)]
    np.testing.assert_allclose(xyxy, boxes.numpy(), atol=1e-3)
    for instance, mask in zip(ours, expected, strict=True):
        np.testing.assert_array_equal(instance.mask, mask)
    outlines = [i.polygon for i in ours if i.polygon is not None]
    assert all(len(p) >= 3 for p in outlines) and len(outlines) > len(ours) / 2


@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_oriented_box_post_processing_is_ultralytics(tmp_path, height, width):
    """Rotated NMS with probiou, then centres and sides scaled back, as its OBB predictor."""
    from ultralytics.utils import nms, ops

    raw = _raw_head(extra=1)
    raw[0, -1] = np.random.default_rng(3).uniform(-np.pi / 4, 3 * np.pi / 4, raw.shape[-1])
    path = constant_model(tmp_path / "m.onnx", [raw], "obb", NAMES, SIZE, "OBB")
    ours = OnnxModel.load(path).predict(_image(height, width), conf=0.001)
    (pred,) = nms.non_max_suppression(
        torch.from_numpy(raw), 0.001, 0.7, max_det=100, nc=len(NAMES), rotated=True
    )
    rboxes = torch.cat([pred[:, :4], pred[:, -1:]], dim=-1)
    rboxes[:, :4] = ops.scale_boxes((SIZE, SIZE), rboxes[:, :4], (height, width), xywh=True)
    corners = ops.xywhr2xyxyxyxy(rboxes).numpy()
    assert len(ours) == len(pred) > 10
    assert [i.cls for i in ours] == pred[:, 5].int().tolist()
    np.testing.assert_allclose([i.score for i in ours], pred[:, 4].numpy(), rtol=1e-6)
    np.testing.assert_allclose([i.corners for i in ours], corners, atol=1e-3)
    for instance in ours:  # shown inside the image, boxed upright around the corners
        shown = np.array(instance.polygon)
        assert (shown >= 0).all() and (shown <= [width, height]).all()
        x, y, w, h = instance.box
        upright = [*instance.corners.min(0), *instance.corners.max(0)]
        assert [x, y, x + w, y + h] == pytest.approx(upright)


@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_pose_post_processing_is_ultralytics(tmp_path, height, width):
    """Keypoints (x, y in input pixels, a confidence) of the anchors NMS keeps, scaled to the
    image and clipped as ultralytics' `scale_coords` does."""
    from ultralytics.utils import ops

    points = 4
    raw = _raw_head(extra=points * 3)
    rng = np.random.default_rng(5)
    raw[0, 4 + len(NAMES) :] = rng.uniform(-8, SIZE + 8, (points * 3, raw.shape[2]))
    raw[0, 4 + len(NAMES) + 2 :: 3] = rng.uniform(0, 1, (points, raw.shape[2]))
    path = constant_model(tmp_path / "m.onnx", [raw], "pose", NAMES, SIZE, "Pose", kind="raw")
    ours = OnnxModel.load(path).predict(_image(height, width), conf=0.001)
    pred, boxes = _ultralytics_boxes(raw, (height, width), nc=len(NAMES))
    expected = ops.scale_coords(
        (SIZE, SIZE), pred[:, 6:].view(len(pred), points, 3), (height, width)
    )
    assert len(ours) == len(pred) > 10
    assert [i.cls for i in ours] == pred[:, 5].int().tolist()
    xyxy = [(x, y, x + w, y + h) for x, y, w, h in (i.box for i in ours)]
    np.testing.assert_allclose(xyxy, boxes.numpy(), atol=1e-3)
    np.testing.assert_allclose([i.keypoints for i in ours], expected.numpy(), atol=1e-3)


def test_pose_without_a_confident_anchor_finds_nothing(tmp_path):
    raw = _raw_head(extra=4 * 3)
    raw[0, 4 : 4 + len(NAMES)] = 0.0001
    path = constant_model(tmp_path / "m.onnx", [raw], "pose", NAMES, SIZE, "Pose", kind="raw")
    assert OnnxModel.load(path).predict(_image(40, 60), conf=0.25) == []


def test_rtdetr_queries_are_scaled_to_the_image_unclipped(tmp_path):
    queries = np.array([[[0.5, 0.5, 0.2, 0.4, 0.9, 2], [0.95, 0.1, 0.3, 0.3, 0.5, 0]]])
    queries = np.concatenate([queries, np.zeros((1, 298, 6))], axis=1)
    path = constant_model(tmp_path / "m.onnx", [queries], "detect", NAMES, SIZE, "RTDETRDecoder")
    first, second = OnnxModel.load(path).predict(_image(50, 100), conf=0.25)
    assert (first.cls, first.score) == (2, pytest.approx(0.9))
    assert first.box == pytest.approx((40, 15, 20, 20))
    assert second.box == pytest.approx((80, -2.5, 30, 15))  # ultralytics does not clip them


def test_classification_ranks_the_best_classes(tmp_path):
    probabilities = np.array([[0.1, 0.7, 0.2]])
    path = constant_model(tmp_path / "m.onnx", [probabilities], "classify", NAMES, SIZE, "Classify")
    model = OnnxModel.load(path)
    assert (model.task, model.names, model.image_size) == ("classify", NAMES, SIZE)
    ranked = model.predict(_image(30, 40), conf=0.15)
    assert [(i.cls, round(i.score, 3)) for i in ranked] == [(1, 0.7), (2, 0.2)]
    assert ranked[0].box == (0, 0, 40, 30)


def test_image_files_are_read_as_ultralytics_reads_them(tmp_path):
    raw = _raw_head()
    model = OnnxModel.load(constant_model(tmp_path / "m.onnx", [raw], "detect", NAMES, SIZE))
    Image.fromarray(_image(40, 60)).save(tmp_path / "x.png")
    from_file = model.predict(tmp_path / "x.png")
    assert from_file == model.predict(_image(40, 60)[:, :, ::-1].copy())


def test_the_metadata_key_says_the_kind_whatever_the_shape(tmp_path):
    """(1, 7, 6) with 3 classes reads as both kinds; pictrain's exports say which it is."""
    rows = _end2end_rows(rows=7)
    path = constant_model(tmp_path / "m.onnx", [rows], "detect", NAMES, SIZE, kind=END2END)
    model = OnnxModel.load(path)
    assert model.outputs == END2END
    (first, *_) = model.predict(_image(SIZE, SIZE), conf=0.001)
    assert first.score == pytest.approx(rows[0, 0, 4])


@pytest.mark.parametrize("shape", [(1, 7, 6), (1, 9, 9)], ids=["both kinds", "neither"])
def test_a_file_without_the_key_whose_shape_says_no_one_kind_is_refused(tmp_path, shape):
    path = constant_model(tmp_path / "m.onnx", [np.zeros(shape)], "detect", NAMES, SIZE)
    with pytest.raises(KeyError, match="outputs"):
        OnnxModel.load(path)
