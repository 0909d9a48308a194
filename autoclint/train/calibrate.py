"""From a predictor's scores to probabilities a person can read, fitted on the held-out split.

The learner ranks predictors by NAUC, which only needs an order per class: a ridge head's squashed scores
do not sum to 1 over classes and sit near the class prior (on a multi-label set a fixed 0.5 threshold
gave 7.0 labels per image against 1.53 in the truth). A saved model therefore carries a calibration:
one temperature on the scores' logits (softmax over classes, or a sigmoid per class for multi-label)
chosen by held-out log-loss, and for multi-label one decision threshold per class chosen by held-out F1.

Multi-label also gets a shared offset on the logits: a ridge head has no intercept, so a class present in
8 % of the images scores 0.5 on an average one; the offset restores the prior (with no signal in the
scores, every probability falls to it). The held-out F1 threshold of a class with few held-out positives
is noise, and F1 favours predicting everything when the signal is weak (8.9 labels per image against 1.6
in the truth, pooled over 9 held-out images): such classes decide at 0.5 on the calibrated probability.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

TEMPERATURES = np.geomspace(0.02, 50.0, 81)  # wide: ridge logits and softmax logits spread very differently
DEFAULT_THRESHOLD = 0.5  # multi-label decision where held-out data cannot set one
MIN_POSITIVES = 10  # a class gets its own F1 threshold from this many held-out positives (with 3 of 9 images,
#   F1 chose 0.08: predict it everywhere); others decide at DEFAULT_THRESHOLD on the calibrated probability


def logits(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


@dataclass(frozen=True)
class Calibration:
    multilabel: bool
    temperature: float = 1.0
    offset: float = 0.0  # multi-label: added to every logit (the class prior a ridge head has lost)
    thresholds: tuple[float, ...] | None = None  # multi-label: a class is predicted at or above its threshold
    fitted_on: int = 0  # held-out examples behind it (0: defaults, nothing was held out)

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """(N, K) probabilities: rows sum to 1 (single-label), or one probability per class (multi-label)."""
        z = logits(scores) / self.temperature
        return _sigmoid(z + self.offset) if self.multilabel else _softmax(z)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """(N, K) booleans: the predicted classes (the top one, or those above their thresholds; at least one)."""
        p = np.asarray(probabilities)
        top = p == p.max(1, keepdims=True)
        if not self.multilabel:
            return top & (np.cumsum(top, 1) == 1)  # one class per row, the first of any tie
        thresholds = np.asarray(self.thresholds if self.thresholds is not None else [DEFAULT_THRESHOLD] * p.shape[1])
        chosen = p >= thresholds
        return np.where(chosen.any(1, keepdims=True), chosen, top)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["thresholds"] = list(self.thresholds) if self.thresholds is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        thresholds = d.get("thresholds")
        return cls(bool(d["multilabel"]), float(d["temperature"]), float(d.get("offset", 0.0)),
                   tuple(float(t) for t in thresholds) if thresholds is not None else None, int(d.get("fitted_on", 0)))


def _offset(y: np.ndarray, z: np.ndarray, steps: int = 25) -> float:
    """The shared offset b minimising the mean binary log-loss of sigmoid(z + b) (convex: Newton steps)."""
    b = 0.0
    for _ in range(steps):
        p = _sigmoid(z + b)
        b -= float(np.mean(p - y)) / max(float(np.mean(p * (1 - p))), 1e-6)
        b = float(np.clip(b, -20, 20))
    return b


def _nll(y: np.ndarray, z: np.ndarray, multilabel: bool) -> float:
    if multilabel:
        return float(np.mean(np.logaddexp(0, z) - y * z))
    z = z - z.max(1, keepdims=True)
    log_q = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-np.mean((y / y.sum(1, keepdims=True) * log_q).sum(1)))


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float | None:
    """The threshold (midway between two held-out probabilities) with the best F1 for one class's column
    (or for pooled columns); None when there is no positive to find."""
    y, p = np.asarray(y).ravel() > 0.5, np.asarray(p, dtype=np.float64).ravel()
    if not y.any():
        return None
    order = np.argsort(-p)
    p_sorted, y_sorted = p[order], y[order]
    true_pos = np.cumsum(y_sorted)
    predicted = np.arange(1, len(p) + 1)
    f1 = 2 * true_pos / (predicted + y.sum())
    distinct = np.r_[p_sorted[1:] < p_sorted[:-1], True]  # cut only between different values
    f1 = np.where(distinct, f1, -1.0)
    k = int(np.argmax(f1))
    below = p_sorted[k + 1] if k + 1 < len(p) else max(0.0, p_sorted[k] - 1e-3)
    return float(0.5 * (p_sorted[k] + below))


def fit_calibration(labels: np.ndarray | None, scores: np.ndarray | None, multilabel: bool) -> Calibration:
    """A calibration fitted on held-out labels and the predictor's scores on them; defaults without them."""
    if labels is None or scores is None or len(labels) == 0:
        return Calibration(multilabel)
    y = np.asarray(labels, dtype=np.float64)
    z = logits(scores)
    if not multilabel:
        keep = y.sum(1) > 0
        y, z = y[keep], z[keep]
        if len(y) == 0:
            return Calibration(multilabel)
    offsets = [_offset(y, z / t) if multilabel else 0.0 for t in TEMPERATURES]
    losses = [_nll(y, z / t + b, multilabel) for t, b in zip(TEMPERATURES, offsets)]
    best = int(np.argmin(losses))
    calibration = Calibration(multilabel, float(TEMPERATURES[best]), offsets[best], None, len(y))
    if not multilabel:
        return calibration
    p = calibration.probabilities(scores)
    per_class = [best_f1_threshold(y[:, k], p[:, k]) if (y[:, k] > 0.5).sum() >= MIN_POSITIVES else None
                 for k in range(y.shape[1])]
    return replace(calibration, thresholds=tuple(DEFAULT_THRESHOLD if t is None else t for t in per_class))
