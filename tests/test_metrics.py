"""synthgen.metrics against cases worked out by hand."""
import math

import numpy as np
import pytest
import torch

from synthgen import metrics


# -- masks ---------------------------------------------------------------------------
def test_confusion_matrix_hand_case():
    pred = np.array([[0, 1], [1, 1]])
    true = np.array([[0, 0], [1, 1]])
    cm = metrics.ConfusionMatrix(3, ["bg", "skin", "hat"]).update(pred, true)
    # class 0: TP 1, FN 1 -> 1/2; class 1: TP 2, FP 1 -> 2/3; class 2 in neither -> ignored
    iou = cm.iou()
    assert iou[0] == pytest.approx(0.5)
    assert iou[1] == pytest.approx(2 / 3)
    assert np.isnan(iou[2])
    assert cm.miou() == pytest.approx(7 / 12)
    assert cm.pixel_accuracy() == pytest.approx(3 / 4)
    report = cm.report()
    assert report["iou"] == {"bg": pytest.approx(0.5), "skin": pytest.approx(2 / 3), "hat": None}
    assert report["pixels"] == 4


def test_class_only_in_prediction_counts_as_zero():
    cm = metrics.ConfusionMatrix(3).update(np.array([0, 2]), np.array([0, 0]))
    # class 0: TP 1, FN 1 -> 1/2; class 2: FP 1 -> 0; mIoU over {0, 2}
    assert cm.iou()[2] == 0
    assert cm.miou() == pytest.approx(0.25)


def test_confusion_matrix_accumulates_batches_like_one_batch():
    rng = np.random.default_rng(0)
    pred, true = rng.integers(0, 5, (2, 6, 8, 8)), rng.integers(0, 5, (2, 6, 8, 8))
    whole = metrics.ConfusionMatrix(5).update(pred[0], true[0]).update(pred[1], true[1])
    halves = metrics.ConfusionMatrix(5)
    for b in range(6):
        halves.update(torch.from_numpy(pred[0, b]), torch.from_numpy(true[0, b]))
        halves.update(pred[1, b], true[1, b])
    np.testing.assert_array_equal(whole.matrix, halves.matrix)
    assert whole.matrix.sum() == 2 * 6 * 64


def test_ignore_index_and_range_errors():
    cm = metrics.ConfusionMatrix(2, ignore_index=255)
    cm.update(np.array([1, 0, 1]), np.array([1, 255, 0]))
    assert cm.matrix.sum() == 2
    with pytest.raises(ValueError, match="outside 0..1"):
        cm.update(np.array([3]), np.array([0]))
    with pytest.raises(ValueError, match="same shape"):
        cm.update(np.array([0, 1]), np.array([0]))


# -- keypoints -----------------------------------------------------------------------
def _face_with_eye_corners(left, right):
    pts = np.zeros((1, 68, 2))
    pts[0, :, 0] = np.linspace(0, 20, 68)
    pts[0, 36], pts[0, 45] = left, right
    return pts


def test_inter_ocular_nme_hand_case():
    true = _face_with_eye_corners((10, 20), (40, 60))  # corners 50 px apart
    assert metrics.inter_ocular_distance(true)[0] == pytest.approx(50)
    pred = true + np.array([3.0, 4.0])  # every point 5 px off -> 5 / 50
    assert metrics.nme_inter_ocular(pred, true)[0] == pytest.approx(0.1)
    half = true.copy()
    half[0, :34] += np.array([6.0, 8.0])  # 34 points 10 px off (0.2), 34 exact
    assert metrics.nme_inter_ocular(half, true)[0] == pytest.approx(0.1)
    assert metrics.fraction_within(half, true, threshold=0.08) == pytest.approx(0.5)
    assert metrics.fraction_within(half, true, threshold=0.25) == pytest.approx(1.0)


def test_keypoint_shape_errors():
    with pytest.raises(ValueError, match="68"):
        metrics.inter_ocular_distance(np.zeros((1, 5, 2)))
    with pytest.raises(ValueError, match="inter-ocular distance is 0"):
        metrics.nme_inter_ocular(np.zeros((1, 68, 2)), np.zeros((1, 68, 2)))


# -- images --------------------------------------------------------------------------
def test_psnr_hand_case():
    a = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    b = np.full((2, 16, 16, 3), 10, dtype=np.uint8)
    b[1] = 5
    expected = [10 * math.log10(255**2 / 100), 10 * math.log10(255**2 / 25)]
    np.testing.assert_allclose(metrics.psnr(a, b), expected)
    # tensors (B, C, H, W) in [-1, 1]: an error of 0.1 everywhere -> 10 log10(4 / 0.01)
    x = torch.zeros(1, 3, 8, 8)
    assert metrics.psnr(x, x + 0.1, data_range=2.0)[0] == pytest.approx(10 * math.log10(400), rel=1e-5)


def test_ssim_constant_images_hand_case():
    a, b = np.full((1, 16, 16), 100.0), np.full((1, 16, 16), 120.0)
    c1 = (0.01 * 255) ** 2
    # no variance: the structure term is c2 / c2 = 1, luminance term remains
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert metrics.ssim(a, b)[0] == pytest.approx(expected)
    assert metrics.ssim(a, a)[0] == pytest.approx(1.0)


def test_ssim_single_window_matches_the_formula():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 200, (11, 11))
    y = 0.5 * x + 30  # mu_y = mu_x / 2 + 30, var_y = var_x / 4, cov = var_x / 2
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mu = (w * x).sum()
    var = (w * x * x).sum() - mu**2
    mu_y, var_y, cov = mu / 2 + 30, var / 4, var / 2
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    expected = ((2 * mu * mu_y + c1) * (2 * cov + c2)) / ((mu**2 + mu_y**2 + c1) * (var + var_y + c2))
    assert metrics.ssim(x[None], y[None])[0] == pytest.approx(expected, rel=1e-9)


def test_ssim_rejects_small_images():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)))


# -- Fréchet distance ----------------------------------------------------------------
def test_frechet_distance_diagonal_hand_case():
    # |mu1 - mu2|^2 = 1 + 4; diagonal covariances: sum (sqrt(a) - sqrt(b))^2 = 1 + 1
    d = metrics.frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 9.0]))
    assert d == pytest.approx(7.0)


def test_frechet_distance_is_rotation_invariant():
    theta = 0.7
    r = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    s1, s2 = r @ np.diag([1.0, 4.0]) @ r.T, r @ np.diag([4.0, 9.0]) @ r.T
    d = metrics.frechet_distance(r @ [0, 0], s1, r @ np.array([1, 2]), s2)
    assert d == pytest.approx(7.0)


def test_frechet_distance_of_features():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((500, 4))
    assert metrics.frechet_distance_of_features(f, f) == pytest.approx(0.0, abs=1e-8)
    mu, cov = metrics.feature_statistics(np.array([[0.0, 1.0], [2.0, 3.0]]))
    np.testing.assert_allclose(mu, [1, 2])
    np.testing.assert_allclose(cov, [[2, 2], [2, 2]])  # N-1 normaliser
    shifted = metrics.frechet_distance_of_features(f, f + np.array([3.0, 0, 0, 0]))
    assert shifted == pytest.approx(9.0, rel=1e-6)


def test_change_gains_are_the_slope_on_the_reference_change():
    import torch

    from synthgen.metrics import change_gains

    reference = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert change_gains(reference, reference) == pytest.approx((1.0, 1.0))
    assert change_gains(0.5 * reference, reference) == pytest.approx((0.5, 0.5))
    assert change_gains(torch.zeros_like(reference), reference) == pytest.approx((0.0, 0.0))
    assert change_gains(reference, torch.zeros_like(reference)) == (None, None)
