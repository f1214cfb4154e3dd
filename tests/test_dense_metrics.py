"""faster-coco-eval's box mAP and our segmentation meter against numbers worked out by hand."""

import numpy as np
import pytest
import torch

from nas.tasks.metrics import MAX_DETECTIONS, SegmentationMeter, detection_map

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def _target(boxes, labels):
    return {"boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.as_tensor(labels)}


def _pred(boxes, scores, labels):
    return {**_target(boxes, labels), "scores": torch.as_tensor(scores, dtype=torch.float32)}


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_a_perfect_prediction_scores_one():
    targets = [_target([[10, 10, 30, 40], [50, 5, 60, 15]], [0, 1]), _target([[0, 0, 20, 20]], [1])]
    preds = [_pred(t["boxes"], [0.9] * len(t["labels"]), t["labels"]) for t in targets]
    assert detection_map(preds, targets, num_classes=2) == {"map": 1.0, "map50": 1.0}


def test_a_shifted_box_counts_at_the_thresholds_its_iou_reaches():
    gt, shifted = [0.0, 0.0, 10.0, 10.0], [2.4, 0.0, 12.4, 10.0]
    iou = _iou(gt, shifted)  # 7.6 / 12.4 = 0.613: a match at IoU 0.50, 0.55 and 0.60, none from 0.65
    assert 0.6 < iou < 0.65
    result = detection_map([_pred([shifted], [0.8], [0])], [_target([gt], [0])], num_classes=1)
    # one class, one box: AP is 1 at each threshold the match holds at, 0 at the others
    expected_map = float(np.mean([1.0 if iou >= t else 0.0 for t in COCO_IOU_THRESHOLDS]))
    assert result["map50"] == pytest.approx(1.0)
    assert result["map"] == pytest.approx(expected_map) and expected_map == pytest.approx(0.3)


def test_a_false_positive_and_a_miss_give_cocos_101_point_interpolated_ap():
    # two objects; detections by score: a hit (recall 1/2, precision 1), then a miss (precision 1/2).
    # COCO's precision envelope is 1 for recall points 0.00..0.50 (51 of the 101) and 0 above.
    targets = [_target([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    preds = [_pred([[0, 0, 10, 10], [40, 40, 50, 50]], [0.9, 0.8], [0, 0])]
    result = detection_map(preds, targets, num_classes=1)
    assert result["map"] == pytest.approx(51 / 101) and result["map50"] == pytest.approx(51 / 101)


def test_the_mean_is_over_the_classes_with_ground_truth():
    targets = [_target([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1])]
    found_one = [_pred([[0, 0, 10, 10]], [0.9], [0])]
    # class 0 found (AP 1), class 1 missed (AP 0), class 2 has no ground truth: left out, COCO's rule
    assert detection_map(found_one, targets, num_classes=3)["map"] == pytest.approx(0.5)


def test_at_most_100_detections_per_image_count():
    gt = [[0.0, 0.0, 10.0, 10.0]]
    false = [[50.0 + i, 50.0, 60.0 + i, 60.0] for i in range(MAX_DETECTIONS)]
    scores = [0.9] * MAX_DETECTIONS
    # 99 higher-scoring false positives, then the hit: ranked 100th, precision 1/100 at recall 1
    rank_100 = detection_map([_pred([*false[:99], *gt], [*scores[:99], 0.1], [0] * 100)], [_target(gt, [0])], 1)
    assert rank_100["map50"] == pytest.approx(1 / 100)
    # 100 of them: the hit is the 101st and does not count
    rank_101 = detection_map([_pred([*false, *gt], [*scores, 0.1], [0] * 101)], [_target(gt, [0])], 1)
    assert rank_101 == {"map": 0.0, "map50": 0.0}


def test_no_predictions_score_zero_and_bad_input_is_refused():
    target = [_target([[0, 0, 10, 10]], [0])]
    assert detection_map([_pred([], [], [])], target, 1) == {"map": 0.0, "map50": 0.0}
    with pytest.raises(ValueError, match="predictions"):
        detection_map([], target, 1)
    with pytest.raises(ValueError, match="labels"):
        detection_map([_pred([[0, 0, 1, 1]], [0.5], [3])], target, 1)
    with pytest.raises(ValueError, match="no ground-truth"):
        detection_map([_pred([], [], [])], [_target([], [])], 1)


# ---- segmentation -----------------------------------------------------------------------------------


def test_miou_and_pixel_accuracy_on_a_hand_made_confusion():
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [1, 0, 2]])
    # counted pixels (the 255 is ignored): t0->p0, t0->p1, t1->p1, t1->p1, t2->p0
    # IoU0 = 1 / (2 + 2 - 1) = 1/3; IoU1 = 2 / (2 + 3 - 2) = 2/3; IoU2 = 0 / (1 + 0 - 0) = 0
    meter = SegmentationMeter(num_classes=4)  # class 3: in neither target nor prediction, left out
    meter.update(pred, target)
    assert meter.confusion[:3, :3].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert np.allclose(meter.iou()[:3], [1 / 3, 2 / 3, 0.0]) and np.isnan(meter.iou()[3])
    result = meter.compute()
    assert result["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert result["pixel_accuracy"] == pytest.approx(3 / 5)


def test_batches_accumulate_as_one():
    rng = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (4, 16, 16), generator=rng)
    target[0, :4] = 255
    pred = torch.randint(0, 5, (4, 16, 16), generator=rng)
    whole, parts = SegmentationMeter(5), SegmentationMeter(5)
    whole.update(pred, target)
    for i in range(4):
        parts.update(pred[i], target[i])
    assert torch.equal(whole.confusion, parts.confusion) and whole.compute() == parts.compute()
    perfect = SegmentationMeter(5)
    perfect.update(target.clamp_max(4), target)
    assert perfect.compute() == {"miou": 1.0, "pixel_accuracy": 1.0}


def test_the_meter_refuses_what_it_cannot_count():
    meter = SegmentationMeter(3)
    with pytest.raises(ValueError, match="shape"):
        meter.update(torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(2, 5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="class map"):
        meter.update(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="target"):
        meter.update(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 2, 7]))
    with pytest.raises(ValueError, match="undefined"):
        meter.compute()
