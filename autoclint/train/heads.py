"""Closed-form ridge heads: the first predictions, fitted in well under a second."""
from __future__ import annotations

import numpy as np

from autoclint.harness.scoring import nauc


def safe_nauc(y: np.ndarray, scores: np.ndarray) -> float:
    try:
        return nauc(y, scores)
    except ValueError:  # a validation split with no usable class column scores as chance
        return 0.0


class RidgeHead:
    """Standardised features -> one-vs-rest ridge scores, alpha chosen on the validation split.

    Uses the dual form when there are more features than examples (few-shot sets).
    """

    LOGIT_SCALE = 4.0  # ridge scores (~0 / ~1) to logits: predictions squash them, fine-tuning starts from them

    def __init__(self, alphas: tuple[float, ...]):
        self.alphas = alphas
        self.mean = self.std = self.w = None
        self.valid_nauc = 0.0

    def _solve(self, x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
        n, d = x.shape
        primal = d <= n
        gram = x.T @ x if primal else x @ x.T
        # alpha is relative to the mean eigenvalue; constant inputs (all-zero gram) still get a positive ridge
        scale = max(np.trace(gram) / len(gram), 1e-6)
        solved = np.linalg.solve(gram + alpha * scale * np.eye(len(gram)), x.T @ y if primal else y)
        return solved if primal else x.T @ solved

    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> float:
        self.mean = x_train.mean(0)
        self.std = x_train.std(0) + 1e-6
        xt, xv = self._standardise(x_train), self._standardise(x_valid)
        target = y_train - y_train.mean(0)
        best = (-np.inf, None)
        for alpha in self.alphas:
            w = self._solve(xt, target, alpha)
            score = safe_nauc(y_valid, xv @ w) if len(xv) else 0.0
            if score > best[0]:
                best = (score, w)
        self.valid_nauc, self.w = best
        return self.valid_nauc

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores squashed column-wise to (0, 1): ranks per class, hence NAUC, are unchanged."""
        return 1.0 / (1.0 + np.exp(-np.clip(self._standardise(x) @ self.w * self.LOGIT_SCALE, -50, 50)))


def pixel_features(x_u8: np.ndarray, side: int) -> np.ndarray:
    """(N, T, H, W, C) uint8 -> flat block-averaged pixels at most `side` per axis; clips add frame spread."""
    import torch
    import torch.nn.functional as F
    n, t, h, w, c = x_u8.shape
    frames = torch.from_numpy(x_u8).float().div_(255).permute(0, 1, 4, 2, 3).reshape(n * t, c, h, w)
    small = F.adaptive_avg_pool2d(frames, (min(side, h), min(side, w))).reshape(n, t, -1)
    feats = [small.mean(1)]
    if t > 1:
        feats.append(small.std(1))
    return torch.cat(feats, 1).numpy()
