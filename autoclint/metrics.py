"""The metrics, in one place for the scorer, the learner and the reports.

The report's (a person's figures, from decisions): top-1, precision / recall / F1 per class and their
macro and micro means, the confusion matrix.

The challenge's own (protocol sections 5.3-5.5): NAUC, soft accuracy, ALC. The learner's ranking signal
next to NAUC, which saturates on small held-out splits: a temperature-calibrated log-loss, and a paired
bootstrap of the NAUC difference between two predictors (the split's own noise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

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


def safe_nauc(solution: np.ndarray, prediction: np.ndarray) -> float:
    """NAUC, or 0 (chance) where it is undefined: no class column with both labels, or non-finite scores."""
    try:
        return nauc(solution, prediction)
    except ValueError:
        return 0.0


def is_multiclass(solution: np.ndarray) -> bool:
    """Every row exactly one-hot (L1 norm 1 and max 1): only then is accuracy reported."""
    solution = np.asarray(solution, dtype=np.float64)
    return bool(np.all(np.isclose(np.abs(solution).sum(axis=1), 1)) and np.all(np.isclose(solution.max(axis=1), 1)))


def accuracy(solution: np.ndarray, prediction: np.ndarray) -> float:
    """Soft accuracy after L1-normalising each prediction row (the kit's, informational)."""
    prediction = np.asarray(prediction, dtype=np.float64)
    norm = np.abs(prediction).sum(axis=1, keepdims=True) + 1e-15
    return float(np.mean(np.sum(np.asarray(solution) * prediction / norm, axis=1)))


def top1(solution: np.ndarray, prediction: np.ndarray) -> float:
    """Share of rows whose highest-scored class is one of theirs (what people call accuracy; the kit's soft
    accuracy above divides by row sums that a ranking-only prediction need not keep near 1)."""
    y = np.asarray(solution) > 0.5
    return float(y[np.arange(len(y)), np.asarray(prediction).argmax(1)].mean())


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


# ----------------------------------------------------------------------------- the learner's ranking signals

TEMPERATURES = np.geomspace(0.5, 20.0, 25)  # on logits in units of their own spread (see below)


def calibrated_row_losses(solution: np.ndarray, prediction: np.ndarray, multilabel: bool) -> np.ndarray | None:
    """Each row's weighted share of calibrated_log_loss (they sum to it), at the best temperature; None
    where the loss is undefined (no labelled row, non-finite scores)."""
    y = np.asarray(solution, dtype=np.float64)
    p = np.clip(np.asarray(prediction, dtype=np.float64), 1e-7, 1 - 1e-7)
    if not multilabel:
        keep = y.sum(1) > 0
        y, p = y[keep], p[keep]
    if len(y) == 0 or not np.isfinite(p).all():
        return None
    z = np.log(p) - np.log1p(-p)
    z = (z - z.mean()) / max(float(z.std()), 1e-9)
    if multilabel:
        positive = y > 0.5
        counts = positive.sum(0, keepdims=True)
        weights = np.where(positive, 1 / np.maximum(counts, 1), 1 / np.maximum(len(y) - counts, 1))
        weights = weights / weights.sum()
    else:
        target = y / y.sum(1, keepdims=True)
        row_class = y.argmax(1)
        row_weights = 1 / np.bincount(row_class, minlength=y.shape[1])[row_class]
        row_weights = row_weights / row_weights.sum()
    best, best_rows = math.inf, None
    for t in TEMPERATURES:
        s = z / t
        if multilabel:
            rows = (weights * (np.logaddexp(0, s) - y * s)).sum(1)
        else:
            s = s - s.max(1, keepdims=True)
            log_q = s - np.log(np.exp(s).sum(1, keepdims=True))
            rows = -row_weights * (target * log_q).sum(1)
        if rows.sum() < best:
            best, best_rows = float(rows.sum()), rows
    return best_rows


def calibrated_log_loss(solution: np.ndarray, prediction: np.ndarray, multilabel: bool) -> float:
    """Mean log-loss of logit(prediction), put in units of its own spread, at the best of a bounded range
    of temperatures.

    Scores in [0, 1] from any predictor (squashed ridge outputs, softmax, sigmoid) become comparable: what
    is measured is how far the true classes stand out from the spread of all scores, not how the scores
    were scaled. The temperature range is bounded so that this stays finite and informative on a split
    that every predictor separates perfectly (where NAUC is 1 and an unbounded temperature would drive any
    loss to 0): it keeps rewarding the predictor whose margins are larger. Single-label: a softmax over
    classes (rows without a label are skipped); multi-label: a sigmoid per class.

    Class-balanced, like NAUC: each class weighs the same whatever its count (single-label rows weighted
    1 / their class's count; multi-label positives and negatives of each class weighted equally), so
    leaning towards the majority class is not read as a gain (on a 4:1 binary set the unbalanced loss
    accepted predictors whose held-out NAUC had dropped).
    """
    rows = calibrated_row_losses(solution, prediction, multilabel)
    return math.inf if rows is None else float(rows.sum())


def paired_loss_noise(solution: np.ndarray, first: np.ndarray, second: np.ndarray, multilabel: bool) -> float:
    """Standard error of calibrated_log_loss(first) - calibrated_log_loss(second) from the rows' paired
    differences: on a split of ten examples a 3 % lower loss is noise, on six hundred it is not."""
    a = calibrated_row_losses(solution, first, multilabel)
    b = calibrated_row_losses(solution, second, multilabel)
    if a is None or b is None or len(a) < 3:
        return math.inf
    d = a - b
    return float(np.sqrt(len(d)) * d.std(ddof=1))


def log_loss(solution: np.ndarray, prediction: np.ndarray, multilabel: bool) -> float:
    """Plain mean log-loss of probabilities (cross-entropy over classes, or per-class binary): what
    training minimises, so that train and held-out fit can be compared."""
    y = np.asarray(solution, dtype=np.float64)
    p = np.clip(np.asarray(prediction, dtype=np.float64), 1e-7, 1 - 1e-7)
    if multilabel:
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
    keep = y.sum(1) > 0
    if not keep.any():
        return math.inf
    y, p = y[keep], p[keep]
    return float(-np.mean((y / y.sum(1, keepdims=True) * np.log(p / p.sum(1, keepdims=True))).sum(1)))


def _nauc_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """NAUC of each of B resamples: y, p (B, N, C); columns without both labels are left out per resample."""
    positives = y.sum(1)
    negatives = y.shape[1] - positives
    ok = (positives > 0) & (negatives > 0)
    ranks = rankdata(p, axis=1)
    auc = ((ranks * y).sum(1) - positives * (positives + 1) / 2) / np.maximum(positives * negatives, 1)
    with np.errstate(invalid="ignore"):
        mean = np.where(ok, auc, 0).sum(1) / ok.sum(1)
    return 2 * mean - 1


def paired_nauc_noise(solution: np.ndarray, first: np.ndarray, second: np.ndarray, draws: int = 40,
                      seed: int = 0) -> float:
    """Standard deviation of NAUC(first) - NAUC(second) over bootstrap resamples of the examples.

    The same resamples for both predictors, so what is shared (which examples are hard) cancels: this is
    how much the split alone moves their difference. 0 for a split too small to resample.
    """
    y = np.asarray(solution, dtype=np.float64) > 0.5
    n = len(y)
    if n < 3:
        return 0.0
    draws = int(np.clip(2_000_000 // y.size, 10, draws))  # large splits: fewer resamples, same memory and time
    rows = np.random.default_rng(seed).integers(0, n, (draws, n))
    diff = _nauc_rows(y[rows], np.asarray(first)[rows]) - _nauc_rows(y[rows], np.asarray(second)[rows])
    diff = diff[np.isfinite(diff)]
    return float(diff.std()) if len(diff) > 1 else 0.0


@dataclass(frozen=True)
class Summary:
    """What a person reads about predictions on a labelled set (report, cv)."""
    nauc: float
    top1: float  # share of examples whose highest-probability class is one of theirs
    macro: tuple[float, float, float]  # precision, recall, F1: the unweighted mean over classes with support
    micro: tuple[float, float, float]  # ... over every (example, class) decision
    precision: np.ndarray  # (K,) per class (0 where nothing was predicted)
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray  # (K,) examples holding the class
    predicted: np.ndarray  # (K,) examples predicted with the class
    confusion: np.ndarray | None  # (K, K) rows true, columns predicted (single-label only)

    def to_dict(self) -> dict:
        return {"nauc": self.nauc, "top1": self.top1,
                "macro": dict(zip(("precision", "recall", "f1"), self.macro)),
                "micro": dict(zip(("precision", "recall", "f1"), self.micro)),
                "per_class": {"precision": self.precision.tolist(), "recall": self.recall.tolist(),
                              "f1": self.f1.tolist(), "support": self.support.tolist(),
                              "predicted": self.predicted.tolist()},
                "confusion": self.confusion.tolist() if self.confusion is not None else None}


def summarize(solution: np.ndarray, probabilities: np.ndarray, decisions: np.ndarray) -> Summary:
    """solution (N, K) 0/1 labels; probabilities (N, K); decisions (N, K) booleans (the predicted classes).
    Macro means run over classes present in the solution (a class absent from it has no recall)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    y = np.asarray(solution) > 0.5
    d = np.asarray(decisions, bool)
    k = y.shape[1]
    precision, recall, f1, _ = precision_recall_fscore_support(y, d, average=None, zero_division=0)
    present = y.sum(0) > 0
    micro = precision_recall_fscore_support(y, d, average="micro", zero_division=0)[:3]
    single = bool((y.sum(1) == 1).all() and (d.sum(1) == 1).all())
    confusion = (confusion_matrix(y.argmax(1), d.argmax(1), labels=np.arange(k)) if single else None)
    return Summary(safe_nauc(solution, probabilities), top1(solution, probabilities),
                   tuple(float(v[present].mean()) if present.any() else 0.0 for v in (precision, recall, f1)),
                   tuple(float(v) for v in micro), precision, recall, f1, y.sum(0), d.sum(0), confusion)
