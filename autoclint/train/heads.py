"""Closed-form ridge heads: the first predictions, fitted in well under a second.

The penalty is chosen by leave-one-out over the examples the head is fitted on (exact for ridge, from one
eigendecomposition), so the held-out split stays untouched for comparing the head with other predictors.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from autoclint.metrics import calibrated_log_loss, safe_nauc


class RidgeHead:
    """Centred, scaled features -> one-vs-rest ridge scores, squashed to (0, 1) column by column.

    Uses the dual form when there are more features than examples (few-shot sets).
    """

    LOGIT_SCALE = 4.0  # ridge scores (~0 / ~1) to logits: predictions squash them, fine-tuning starts from them

    def __init__(self, mean: np.ndarray, std: np.ndarray, w: np.ndarray, alpha: float = 0.0):
        self.mean, self.std, self.w, self.alpha = mean, std, w, alpha

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores in (0, 1) per class column; ranks per column, hence NAUC, are those of the ridge output."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.standardise(x) @ self.w * self.LOGIT_SCALE, -50, 50)))


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred features on one common scale. Per-feature scaling blew near-constant backbone features up
    to head weights of ~800, which augmented inputs turned into a fine-tune start loss of 3.4-6.8 on Faces
    (40 classes), against 2.0 on one scale; held-out and test NAUC were equal or better on one scale on
    Cifar, Pokemon, Signs, Kth and Faces (pixels and features; measured 2026-11-28)."""
    return x.mean(0), np.full(x.shape[1], x.std() + 1e-6, dtype=np.float64)


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...],
              multilabel: bool) -> tuple[RidgeHead, np.ndarray]:
    """A ridge head on all of (x, y), with the penalty whose leave-one-out predictions rank best (NAUC,
    then calibrated log-loss); returns it and those leave-one-out scores.

    alphas are relative to the mean eigenvalue of the Gram matrix, so they mean the same for raw pixels
    and for 1280-d features. One eigendecomposition serves every penalty. Constant inputs (all-zero
    spectrum) still get a positive penalty.
    """
    mean, std = _standardisation(x)
    xs = ((x - mean) / std).astype(np.float64)
    target = y - y.mean(0)
    n, d = xs.shape
    primal = d <= n
    e, basis = np.linalg.eigh(xs.T @ xs if primal else xs @ xs.T)
    e = np.maximum(e, 0)
    p = xs @ basis if primal else basis  # example-space basis: the hat matrix is p diag(gain) p^T
    proj = p.T @ target
    scale = max(float(e.mean()), 1e-6)
    best = None
    for a in alphas:
        shrink = 1.0 / (e + a * scale)
        gain = shrink if primal else e * shrink
        fitted = p @ (gain[:, None] * proj)
        # Leave-one-out residuals of a linear smoother, intercept included (its leverage is 1/n).
        leverage = np.minimum((p ** 2) @ gain + 1.0 / n, 1 - 1e-6)
        loo = target - (target - fitted) / (1 - leverage[:, None])
        squashed = 1.0 / (1.0 + np.exp(-np.clip(loo * RidgeHead.LOGIT_SCALE, -50, 50)))
        rank = (round(safe_nauc(y, squashed), 4), -calibrated_log_loss(y, squashed, multilabel))
        if best is None or rank > best[0]:
            best = (rank, a, shrink, squashed)
    _, a, shrink, loo_scores = best
    # (X^T X + lambda I)^-1 X^T Y: V diag(shrink) P^T Y, or X^T U diag(shrink) U^T Y in the dual form.
    w = basis @ (shrink[:, None] * proj) if primal else xs.T @ (basis @ (shrink[:, None] * proj))
    return RidgeHead(mean, std, w, a), loo_scores


def refit(head: RidgeHead, x: np.ndarray, y: np.ndarray) -> RidgeHead:
    """The same relative penalty on other examples (the held-out split added, for the predictor that is
    used): one positive-definite solve, no eigendecomposition (about a third of fit_ridge's time)."""
    mean, std = _standardisation(x)
    xs = ((x - mean) / std).astype(np.float64)
    target = y - y.mean(0)
    n, d = xs.shape
    gram = xs.T @ xs if d <= n else xs @ xs.T
    penalty = head.alpha * max(float(np.trace(gram)) / len(gram), 1e-6)  # alpha x the mean eigenvalue
    gram[np.diag_indices_from(gram)] += penalty
    if d <= n:
        w = scipy.linalg.solve(gram, xs.T @ target, assume_a="pos")
    else:
        w = xs.T @ scipy.linalg.solve(gram, target, assume_a="pos")
    return RidgeHead(mean, std, w, head.alpha)


def pixel_features(x_u8: np.ndarray, side: int, chunk: int = 1024) -> np.ndarray:
    """(N, T, H, W, C) uint8 -> flat block-averaged pixels at most `side` per axis; clips add frame spread.

    Chunked: a float copy of a whole 60k-image cache would cost gigabytes.
    """
    import torch
    import torch.nn.functional as F
    n, t, h, w, c = x_u8.shape
    out = []
    for i in range(0, n, chunk):
        part = x_u8[i:i + chunk]
        frames = torch.tensor(part, dtype=torch.float32).div_(255).permute(0, 1, 4, 2, 3)
        frames = frames.reshape(len(part) * t, c, h, w)
        small = F.adaptive_avg_pool2d(frames, (min(side, h), min(side, w))).reshape(len(part), t, -1)
        feats = [small.mean(1)] + ([small.std(1)] if t > 1 else [])
        out.append(torch.cat(feats, 1).numpy())
    if not out:
        return np.zeros((0, min(side, h) * min(side, w) * c * (2 if t > 1 else 1)), np.float32)
    return np.concatenate(out)
