"""The challenge metrics: NAUC, soft accuracy and ALC (protocol sections 5.3-5.5)."""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from autoclint.errors import AutoclintError

T0_S = 60.0  # the challenge's fixed time scale of the log axis


def valid_columns(solution: np.ndarray) -> np.ndarray:
    """Columns holding both classes; a column that is all 0 or all 1 has no AUC and is dropped."""
    n = solution.shape[0]
    sums = solution.sum(axis=0)
    return ~(np.isclose(sums, 0) | np.isclose(sums, n))


def nauc(solution: np.ndarray, prediction: np.ndarray) -> float:
    """2*AUC-1 macro-averaged over valid columns; ties count 1/2 (average ranks)."""
    solution = np.asarray(solution, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    if solution.shape != prediction.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from solution shape {solution.shape}")
    if not np.isfinite(prediction).all():
        raise ValueError("prediction holds NaN or inf")
    valid = valid_columns(solution)
    if not valid.any():
        raise ValueError("no class column of the solution holds both positives and negatives")
    y = solution[:, valid] > 0.5
    ranks = rankdata(prediction[:, valid], axis=0)
    positives = y.sum(axis=0)
    negatives = y.shape[0] - positives
    auc = ((ranks * y).sum(axis=0) - positives * (positives + 1) / 2) / (positives * negatives)
    return float(2 * auc.mean() - 1)


def is_multiclass(solution: np.ndarray) -> bool:
    """Every row exactly one-hot (L1 norm 1 and max 1): only then is accuracy reported."""
    solution = np.asarray(solution, dtype=np.float64)
    return bool(np.all(np.isclose(np.abs(solution).sum(axis=1), 1)) and np.all(np.isclose(solution.max(axis=1), 1)))


def accuracy(solution: np.ndarray, prediction: np.ndarray) -> float:
    """Soft accuracy after L1-normalising each prediction row."""
    prediction = np.asarray(prediction, dtype=np.float64)
    norm = np.abs(prediction).sum(axis=1, keepdims=True) + 1e-15
    return float(np.mean(np.sum(np.asarray(solution) * prediction / norm, axis=1)))


def transform_time(t_s: float, time_budget_s: float, t0_s: float = T0_S) -> float:
    """x(t) = ln(1 + t/t0) / ln(1 + T/t0)."""
    return math.log(1 + t_s / t0_s) / math.log(1 + time_budget_s / t0_s)


def alc(timestamps_s: list[float], scores: list[float], time_budget_s: float, t0_s: float = T0_S) -> float:
    """Area under the left-step learning curve, (0, 0) prepended, last score held to x = 1.

    Like the official written score, points after T are kept (their segment is negative); the harness
    kills ingestion at T so that none exist.
    """
    if len(timestamps_s) != len(scores):
        raise ValueError("timestamps and scores differ in length")
    if not scores:
        return 0.0
    xs = [0.0] + [transform_time(t, time_budget_s, t0_s) for t in timestamps_s] + [1.0]
    ys = [0.0] + list(scores) + [scores[-1]]
    return float(sum((xs[i + 1] - xs[i]) * ys[i] for i in range(len(xs) - 1)))


def read_solution(path: str) -> np.ndarray:
    """A `.solution` file as a 2-D float array (a one-row file stays one row; trailing spaces are fine)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append([float(v) for v in line.split()])
            except ValueError:
                raise AutoclintError(f"{path}: line {number} holds a value that is not a number.") from None
    if not rows:
        raise AutoclintError(f"{path}: the solution file is empty.")
    if len({len(r) for r in rows}) != 1:
        raise AutoclintError(f"{path}: rows have different numbers of columns.")
    return np.asarray(rows, dtype=np.float64)


def read_prediction(path: str, expected_shape: tuple[int, int]) -> np.ndarray:
    """A `<task>.predict_<k>` file, checked against the solution's shape and for NaN/inf."""
    try:
        pred = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise AutoclintError(f"{path}: not a table of numbers ({e}).") from None
    if pred.shape != tuple(expected_shape):
        raise AutoclintError(f"{path}: shape {pred.shape} differs from the solution's {tuple(expected_shape)}.")
    if not np.isfinite(pred).all():
        raise AutoclintError(f"{path}: holds NaN or inf; the curve stops at the previous prediction.")
    return pred
