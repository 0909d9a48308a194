"""Reading the scorer's inputs: solution and prediction files (the metrics: autoclint.metrics)."""
from __future__ import annotations

import numpy as np

from autoclint.errors import AutoclintError


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
