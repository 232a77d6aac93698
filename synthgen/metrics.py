"""Accuracy of masks, landmarks and images: IoU, landmark NME, PSNR/SSIM, Fréchet distance.

Pure numpy/torch, no model inside: the feature extractors a Fréchet distance needs live
in `synthgen.evaluation.fid`. Every function takes numpy arrays or torch tensors.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# -- masks ---------------------------------------------------------------------------
class ConfusionMatrix:
    """Counts (true class, predicted class) pixel pairs over any number of batches.

    IoU_c = TP / (TP + FP + FN). A class absent from both truth and prediction has no
    IoU (NaN) and is left out of mIoU, so a test set without hats is not punished for
    the hat class nor rewarded for it.
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        ignore_index: int | None = None,
    ):
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names else [f"class_{i}" for i in range(num_classes)]
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)  # rows truth, cols prediction

    def update(self, prediction, truth) -> "ConfusionMatrix":
        """Add one batch of class-id maps of the same shape, e.g. (B, H, W)."""
        pred = torch.as_tensor(_numpy(prediction)).long().reshape(-1)
        true = torch.as_tensor(_numpy(truth)).long().reshape(-1)
        if pred.shape != true.shape:
            raise ValueError(
                f"prediction has {pred.numel()} pixels, truth {true.numel()}: pass maps of the same shape"
            )
        if self.ignore_index is not None:
            keep = true != self.ignore_index
            pred, true = pred[keep], true[keep]
        for name, ids in (("prediction", pred), ("truth", true)):
            if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise ValueError(
                    f"{name} holds class id {int(ids.max())} outside 0..{self.num_classes - 1}: "
                    "check the class count and label order"
                )
        counts = torch.bincount(true * self.num_classes + pred, minlength=self.num_classes**2)
        self.matrix += counts.reshape(self.num_classes, self.num_classes).numpy()
        return self

    def iou(self) -> np.ndarray:
        """(K,) float64 per-class IoU, NaN where a class is in neither truth nor prediction."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def report(self) -> dict:
        """JSON-ready summary: mIoU, pixel accuracy, per-class IoU by name (None = absent)."""
        return {
            "miou": self.miou(),
            "pixel_accuracy": self.pixel_accuracy(),
            "iou": {
                name: (None if np.isnan(v) else float(v)) for name, v in zip(self.class_names, self.iou())
            },
            "pixels": int(self.matrix.sum()),
        }


def mask_miou(prediction, truth, num_classes: int) -> float:
    """mIoU of one mask (or one batch) on its own."""
    return ConfusionMatrix(num_classes).update(prediction, truth).miou()


# -- keypoints -----------------------------------------------------------------------
# 300-W's "inter-ocular" normaliser: the outer eye corners, dlib points 36 and 45
# (0-based; 37 and 46 in the 1-based iBUG annotation files).
OUTER_EYE_CORNERS = (36, 45)


def inter_ocular_distance(points) -> np.ndarray:
    """(B, 68, 2) -> (B,) distance between the outer eye corners (300-W convention)."""
    pts = _numpy(points).astype(np.float64)
    if pts.ndim != 3 or pts.shape[1] != 68 or pts.shape[2] != 2:
        raise ValueError(f"expected (B, 68, 2) dlib-order landmarks, got {pts.shape}")
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(pts[:, a] - pts[:, b], axis=-1)


def point_errors_inter_ocular(prediction, truth) -> np.ndarray:
    """(B, 68, 2) x 2 -> (B, 68) point-to-point error / inter-ocular distance of the truth."""
    pred = _numpy(prediction).astype(np.float64)
    true = _numpy(truth).astype(np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} differ in shape")
    iod = inter_ocular_distance(true)
    if np.any(iod <= 0):
        raise ValueError("truth has coincident outer eye corners (36, 45): inter-ocular distance is 0")
    return np.linalg.norm(pred - true, axis=-1) / iod[:, None]


def nme_inter_ocular(prediction, truth) -> np.ndarray:
    """(B,) mean normalised error per face (300-W inter-ocular NME)."""
    return point_errors_inter_ocular(prediction, truth).mean(axis=1)


def fraction_within(prediction, truth, threshold: float = 0.08) -> float:
    """Fraction of points whose inter-ocular-normalised error is below `threshold`
    (0.08 is the cut-off of 300-W's AUC@0.08)."""
    return float((point_errors_inter_ocular(prediction, truth) < threshold).mean())


# -- images --------------------------------------------------------------------------
def _as_nchw_float(x) -> torch.Tensor:
    """(B, H, W, C) numpy / (B, C, H, W) tensor / (B, H, W) gray -> (B, C, H, W) float64."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().double()
        return t.unsqueeze(1) if t.ndim == 3 else t
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[..., None]
    return torch.from_numpy(arr).permute(0, 3, 1, 2)


def psnr(a, b, data_range: float = 255.0) -> np.ndarray:
    """(B,) peak signal-to-noise ratio in dB, per image: 10 log10(range^2 / MSE).
    Numpy input is (B, H, W[, C]), torch input (B, C, H, W)."""
    x, y = _as_nchw_float(a), _as_nchw_float(b)
    mse = ((x - y) ** 2).flatten(1).mean(1)
    with np.errstate(divide="ignore"):
        return (10 * np.log10(data_range**2 / mse.numpy())).astype(np.float64)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim(a, b, data_range: float = 255.0, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """(B,) structural similarity (Wang et al. 2004): Gaussian window 11, sigma 1.5,
    K1 = 0.01, K2 = 0.03, statistics over the valid region, averaged over channels."""
    x, y = _as_nchw_float(a), _as_nchw_float(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window}, got {tuple(x.shape[-2:])}")
    c = x.shape[1]
    w = gaussian_window(window, sigma).expand(c, 1, window, window)

    def blur(t):
        return F.conv2d(t, w, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).numpy()


# -- Change of pictures ------------------------------------------------------------
def change_gains(moved: torch.Tensor, reference: torch.Tensor, pool: int = 4) -> tuple[float | None, float | None]:
    """How much of a reference change of pictures another change reproduces: the least-squares
    slope <moved, reference> / <reference, reference> over every pixel (1 = the same change,
    0 = none), and the same on `pool` x `pool` means, where a change drawn blurred still counts.
    Both (B, C, H, W); None where the reference does not change."""
    dg, dr = moved.double(), reference.double()
    cg, cr = F.avg_pool2d(dg, pool), F.avg_pool2d(dr, pool)
    rr, c_rr = float((dr * dr).sum()), float((cr * cr).sum())
    return (float((dg * dr).sum()) / rr if rr > 0 else None, float((cg * cr).sum()) / c_rr if c_rr > 0 else None)


# -- Fréchet distance ----------------------------------------------------------------
def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> mean (D,), covariance (D, D) with the unbiased N-1 normaliser."""
    f = _numpy(features).astype(np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features, got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians (FID's formula).

    tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the inner matrix is symmetric
    PSD, so two eigendecompositions replace scipy's general sqrtm and never go complex.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root1 = _sqrt_psd(s1)
    cross = np.trace(_sqrt_psd(root1 @ s2 @ root1))
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)
    return max(d, 0.0)  # a distance; rounding can dip below 0 for (nearly) equal sets


def frechet_distance_of_features(features_a, features_b) -> float:
    """Fréchet distance between two (N, D) feature sets."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))
