"""Dense training: FCOS assignment, box decoding and NMS, the segmentation loss, and real dense
networks of the space learning on generated scenes."""

from __future__ import annotations

import math

import pytest
import torch

from nas.tasks.detection import (
    assign,
    cell_centres,
    decode,
    decode_dense,
    detection_loss,
    flatten_levels,
    size_ranges,
)
from nas.tasks.segmentation import IGNORE, predict, segmentation_loss
from nas.tasks.training import dominant_labels, hflip

STRIDES = (8, 16, 32)
SIZE = 128
K = 3


def _outputs(batch: int = 1, fill: float = -10.0) -> list[torch.Tensor]:
    return [torch.full((batch, 5 + K, SIZE // s, SIZE // s), fill) for s in STRIDES]


def _inverse_softplus(y: float) -> float:
    return math.log(math.expm1(y))


def _level_cell(stride: int, row: int, col: int) -> int:
    """The flat index of a level's cell among every level's cells, level by level."""
    offset = sum((SIZE // s) ** 2 for s in STRIDES[: STRIDES.index(stride)])
    return offset + row * (SIZE // stride) + col


def test_a_box_is_assigned_to_its_centre_cell_on_the_level_of_its_size():
    _, centres, cell_strides = flatten_levels(_outputs(), STRIDES)
    box = torch.tensor([[32.0, 32.0, 72.0, 72.0]])  # 40 px, centre (52, 52)
    labels, boxes = assign([{"boxes": box, "labels": torch.tensor([2])}], centres, cell_strides, STRIDES)
    # the cell holding the centre at stride 16 is (3, 3), centre (56, 56): farthest side 24 px
    lo, hi = size_ranges(STRIDES)[1]
    assert lo < 24 <= hi
    centre_cell = _level_cell(16, 3, 3)
    assert labels[0, centre_cell] == 2
    assert torch.equal(boxes[0, centre_cell], box[0])
    positive = labels[0] >= 0
    assert set(cell_strides[positive].tolist()) == {16.0}  # no other level takes a 40 px box
    assert (labels[0, ~positive] == -1).all()


def test_a_cell_claimed_by_two_boxes_takes_the_smaller():
    _, centres, cell_strides = flatten_levels(_outputs(), STRIDES)
    big = [8.0, 8.0, 104.0, 104.0]  # centre (56, 56) for both
    small = [36.0, 36.0, 76.0, 76.0]
    targets = [{"boxes": torch.tensor([big, small]), "labels": torch.tensor([0, 1])}]
    labels, _ = assign(targets, centres, cell_strides, STRIDES)
    # (56, 56) is a stride-16 cell centre: the small box's farthest side is 20 px (stride 16's range)
    assert labels[0, _level_cell(16, 3, 3)] == 1
    assert (labels[0] == 0).any()  # the big box still gets cells, on a coarser level
    assert set(cell_strides[labels[0] == 0].tolist()) == {32.0}


def _predict(outputs, stride: int, row: int, col: int, box, label: int, logit: float = 10.0) -> None:
    """Make one cell of hand-made outputs predict ``box`` (xyxy pixels) of class ``label``."""
    cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
    level = outputs[STRIDES.index(stride)]
    for c, d in enumerate([cx - box[0], cy - box[1], box[2] - cx, box[3] - cy]):
        level[0, c, row, col] = _inverse_softplus(float(d) / stride)
    level[0, 4, row, col] = 10.0
    level[0, 5 + label, row, col] = logit


def test_decoding_a_hand_made_output_gives_the_box_back():
    outputs = _outputs()
    box = torch.tensor([30.0, 40.0, 80.0, 70.0])
    _predict(outputs, 16, 3, 3, box, label=2)
    (found,) = decode(outputs, STRIDES, SIZE)
    assert found["boxes"].shape == (1, 4)
    torch.testing.assert_close(found["boxes"][0], box, atol=1e-3, rtol=0)
    assert found["labels"].tolist() == [2]
    assert found["scores"][0] > 0.99


def test_nms_removes_a_duplicate_of_the_same_class_only():
    box = [30.0, 40.0, 80.0, 70.0]
    outputs = _outputs()
    _predict(outputs, 16, 3, 3, box, label=0, logit=10.0)
    _predict(outputs, 16, 3, 4, [31.0, 40.0, 81.0, 71.0], label=0, logit=5.0)  # its neighbour, IoU 0.94
    (found,) = decode(outputs, STRIDES, SIZE)
    assert len(found["boxes"]) == 1 and found["boxes"][0].tolist() == pytest.approx(box, abs=1e-3)
    outputs[1][0, 5, 3, 4] = -10.0  # the neighbour now says another class: both stay
    _predict(outputs, 16, 3, 4, [31.0, 40.0, 81.0, 71.0], label=1, logit=5.0)
    (found,) = decode(outputs, STRIDES, SIZE)
    assert sorted(found["labels"].tolist()) == [0, 1]


def test_decode_dense_runs_under_torch_export_and_agrees_with_eager():
    class Head(torch.nn.Module):
        def forward(self, a, b, c):
            return decode_dense([a, b, c], STRIDES)

    outputs = [torch.randn(2, 5 + K, SIZE // s, SIZE // s) for s in STRIDES]
    program = torch.export.export(Head(), tuple(outputs))
    boxes, scores = program.module()(*outputs)
    eager_boxes, eager_scores = decode_dense(outputs, STRIDES)
    n = sum((SIZE // s) ** 2 for s in STRIDES)
    assert boxes.shape == (2, n, 4) and scores.shape == (2, n, K)
    torch.testing.assert_close(boxes, eager_boxes)
    torch.testing.assert_close(scores, eager_scores)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_cell_centres_are_the_middle_of_each_cell():
    c = cell_centres(2, 3, 16)
    assert c.tolist() == [[8, 8], [24, 8], [40, 8], [8, 24], [24, 24], [40, 24]]


def test_the_detection_loss_falls_when_the_output_matches_the_target():
    targets = [{"boxes": torch.tensor([[30.0, 40.0, 80.0, 70.0]]), "labels": torch.tensor([1])}]
    outputs = [o.requires_grad_(True) for o in _outputs(fill=0.0)]
    loss, parts = detection_loss(outputs, targets, STRIDES)
    assert set(parts) == {"cls", "box", "ctr"} and parts["box"] > 0
    loss.backward()
    with torch.no_grad():
        stepped = [o - 1.0 * o.grad for o in outputs]
    assert detection_loss(stepped, targets, STRIDES)[0] < loss
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    loss, parts = detection_loss(_outputs(fill=0.0), empty, STRIDES)
    assert parts["box"] == 0.0 and torch.isfinite(loss)


def test_bad_outputs_are_refused_with_the_shapes():
    with pytest.raises(ValueError, match="one tensor per stride"):
        decode_dense(_outputs()[:2], STRIDES)
    with pytest.raises(ValueError, match=r"4 \+ 1 \+ classes"):
        decode_dense([torch.zeros(1, 5, 16, 16), torch.zeros(1, 5, 8, 8), torch.zeros(1, 5, 4, 4)], STRIDES)


def test_segmentation_loss_ignores_255_and_predict_upsamples():
    logits = torch.zeros(1, 3, 4, 4)
    logits[0, 2] = 5.0  # says class 2 everywhere
    mask = torch.full((1, 16, 16), IGNORE, dtype=torch.long)
    mask[0, :8] = 2
    right = segmentation_loss(logits, mask)
    mask[0, :8] = 1
    wrong = segmentation_loss(logits, mask)
    assert right < 0.05 < wrong  # the ignored half adds nothing to either
    assert predict(logits, 16).shape == (1, 16, 16)
    assert (predict(logits, (16, 12)) == 2).all()


def test_a_flip_mirrors_images_boxes_and_masks_alike():
    x = torch.zeros(2, 3, 8, 8)
    x[:, :, 2:4, 1:3] = 1.0  # a square at x 1..3, y 2..4
    targets = [{"boxes": torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "labels": torch.tensor([0])} for _ in range(2)]
    fx, ft = hflip(x, targets, torch.tensor([True, False]))
    ys, xs = torch.nonzero(fx[0, 0], as_tuple=True)
    assert ft[0]["boxes"].tolist() == [[float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]]
    assert torch.equal(fx[1], x[1]) and torch.equal(ft[1]["boxes"], targets[1]["boxes"])
    mask = (x[:, 0] > 0).long()
    fx, fm = hflip(x, mask, torch.tensor([True, True]))
    assert torch.equal(fm, (fx[:, 0] > 0).long())


def test_dominant_labels_take_the_largest_box_and_the_commonest_object_class():
    targets = [
        {"boxes": torch.tensor([[0.0, 0, 4, 4], [0, 0, 10, 10]]), "labels": torch.tensor([3, 1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    assert dominant_labels(targets, "detection").tolist() == [1, -1]
    masks = torch.zeros(3, 4, 4, dtype=torch.long)
    masks[0, :2] = 2  # 8 px of class 2, 2 of class 1, the rest background
    masks[0, 3, :2] = 1
    masks[1, :] = IGNORE
    masks[2, 0, 0] = 1
    assert dominant_labels(masks, "segmentation").tolist() == [2, -1, 1]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from nas.tasks.scenes import make_scenes

    return make_scenes(tmp_path_factory.mktemp("scenes") / "s", train=256, val=64, size=64, seed=0)


def _tiny_dense(task: str, num_classes: int):
    import search_spaces as ss

    arch = ss.sample_archs(ss.get_space("metaformer-tiny"), 1, seed=0, task=task)[0]
    torch.manual_seed(0)
    return ss.build_model(arch, num_classes=num_classes, img_size=64)


@pytest.mark.slow
@pytest.mark.parametrize(("task", "metric"), [("detection", "map50"), ("segmentation", "miou")])
def test_a_tiny_dense_network_of_the_space_learns_the_scenes(scenes, task, metric):
    from nas.proxies import TrainRecipe
    from nas.tasks.datasets import load_detection, load_segmentation
    from nas.tasks.training import DenseTrainer, evaluate_dense

    load = load_detection if task == "detection" else load_segmentation
    train_set, val_set = (load(scenes, split, resolution=64) for split in ("train", "val"))
    model = _tiny_dense(task, train_set.num_classes)
    assert model.task == task
    before = evaluate_dense(model, val_set)
    trainer = DenseTrainer(model, train_set, TrainRecipe(steps=80, batch_size=16, resolution=64, lr=3e-3))
    trainer.advance(80)
    after = evaluate_dense(model, val_set)
    assert set(after) == ({"map", "map50"} if task == "detection" else {"miou", "pixel_accuracy"})
    assert all(0.0 <= v <= 1.0 for v in after.values())
    assert after[metric] > before[metric] + 0.05, (before, after)
    assert trainer.accuracy(val_set) == pytest.approx(after["map" if task == "detection" else "miou"])


def test_the_trainer_refuses_a_set_loaded_at_another_resolution(scenes):
    from nas.proxies import TrainRecipe
    from nas.tasks.datasets import load_segmentation
    from nas.tasks.training import DenseTrainer

    train_set = load_segmentation(scenes, "val", resolution=64)
    model = _tiny_dense("segmentation", train_set.num_classes)
    with pytest.raises(ValueError, match="resolution=32"):
        DenseTrainer(model, train_set, TrainRecipe(steps=1, batch_size=4, resolution=32)).advance(1)
    with pytest.raises(ValueError, match="dense network"):
        DenseTrainer(torch.nn.Linear(2, 2), train_set, TrainRecipe())


def test_the_proxy_scores_a_dense_network_whole_as_a_classifier(scenes):
    from nas.proxies import score
    from nas.tasks.datasets import load_detection
    from nas.tasks.training import as_classifier, proxy_batch

    data = load_detection(scenes, "val", resolution=64)
    x, y = proxy_batch(data, batch=16, seed=0)
    assert x.shape == (16, 3, 64, 64) and ((y >= 0) & (y < data.num_classes)).all()
    model = _tiny_dense("detection", data.num_classes)
    view = as_classifier(model)
    assert view(x).shape == (16, data.num_classes)
    scores = score(view, x, y, names=["default", "params"])
    assert scores["params"] == sum(p.numel() for p in model.parameters())  # neck and head included
    assert scores == score(as_classifier(model), x, y, names=["default", "params"])  # repeatable


def test_decode_dense_exports_to_onnx_and_runs_in_onnxruntime():
    import io

    ort = pytest.importorskip("onnxruntime")

    class Head(torch.nn.Module):
        def forward(self, a, b, c):
            return decode_dense([a, b, c], STRIDES)

    outputs = tuple(torch.randn(1, 5 + K, SIZE // s, SIZE // s) for s in STRIDES)
    buffer = io.BytesIO()
    torch.onnx.export(Head(), outputs, buffer, input_names=["a", "b", "c"], dynamo=False)
    session = ort.InferenceSession(buffer.getvalue())
    boxes, scores = session.run(None, {n: o.numpy() for n, o in zip("abc", outputs, strict=True)})
    eager_boxes, eager_scores = decode_dense(list(outputs), STRIDES)
    torch.testing.assert_close(torch.from_numpy(boxes), eager_boxes, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(scores), eager_scores, atol=1e-5, rtol=1e-5)
