import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from autoclint.errors import AutoclintError
from autoclint import metrics
from autoclint.harness import scoring


def sklearn_nauc(solution, prediction):
    valid = metrics.valid_columns(solution)
    return 2 * roc_auc_score(solution[:, valid], prediction[:, valid], average="macro") - 1


@pytest.mark.parametrize("seed", range(5))
def test_nauc_matches_sklearn_on_random(seed):
    rng = np.random.default_rng(seed)
    solution = np.eye(7)[rng.integers(0, 7, 300)]
    solution[:, 6] = 0  # a class with no positive: dropped
    prediction = rng.random((300, 7))
    assert metrics.nauc(solution, prediction) == pytest.approx(sklearn_nauc(solution, prediction), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_nauc_matches_sklearn_with_ties_and_multilabel(seed):
    rng = np.random.default_rng(100 + seed)
    solution = (rng.random((200, 5)) < 0.3).astype(float)
    prediction = rng.integers(0, 4, (200, 5)) / 4.0  # heavy ties, as 6-digit rounding creates
    assert metrics.nauc(solution, prediction) == pytest.approx(sklearn_nauc(solution, prediction), abs=1e-12)


def test_worked_example_from_protocol():
    solution = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]], float)
    prediction = np.array([[.9, .1, .2], [.9, .8, .1], [.3, .3, .7], [.2, .5, 0]])
    assert metrics.nauc(solution, prediction) == pytest.approx(0.625)
    assert metrics.accuracy(solution, prediction) == pytest.approx(0.534875)


def test_constant_prediction_scores_zero_and_bad_values_raise():
    solution = np.eye(3)[[0, 1, 2, 0]]
    assert metrics.nauc(solution, np.zeros((4, 3))) == 0
    with pytest.raises(ValueError, match="NaN or inf"):
        metrics.nauc(solution, np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match="no class column"):
        metrics.nauc(np.ones((4, 1)), np.zeros((4, 1)))


def test_multiclass_detection():
    assert metrics.is_multiclass(np.eye(3)[[0, 1, 2]])
    assert not metrics.is_multiclass(np.array([[1, 1, 0], [0, 1, 0]]))


@pytest.mark.parametrize("stamps,scores,expected", [
    ([60], [1.0], 0.772329751303047),
    ([30, 120, 600], [0.5, 0.8, 0.9], 0.6463951132803267),
    ([], [], 0.0),
    ([1300], [1.0], -0.025085372286394625),
])
def test_alc_test_vectors(stamps, scores, expected):
    assert metrics.alc(stamps, scores, 1200.0) == pytest.approx(expected, abs=1e-12)


def test_alc_equals_integral_form():
    """ALC = 1/ln(1+T/t0) * integral_0^T s(t)/(t+t0) dt for the step function s."""
    rng = np.random.default_rng(3)
    T, t0 = 300.0, 60.0
    stamps = np.sort(rng.uniform(0, T, 8)).tolist()
    scores = rng.uniform(-0.2, 1, 8).tolist()
    integral = 0.0
    edges = stamps + [T]
    for i, s in enumerate(scores):  # exact integral of s/(t+t0) on each step
        integral += s * (math.log(edges[i + 1] + t0) - math.log(edges[i] + t0))
    assert metrics.alc(stamps, scores, T) == pytest.approx(integral / math.log(1 + T / t0), abs=1e-12)


def test_read_solution_trailing_spaces_and_one_row(tmp_path):
    p = tmp_path / "a.solution"
    p.write_text("0 1 0 \n")
    assert scoring.read_solution(str(p)).shape == (1, 3)
    p.write_text("0.0 1.0\n1.0 0.0\n")
    assert scoring.read_solution(str(p)).tolist() == [[0, 1], [1, 0]]


def test_read_prediction_checks(tmp_path):
    p = tmp_path / "t.predict_0"
    p.write_text("0.1 0.9\n0.3 0.7\n")
    assert scoring.read_prediction(str(p), (2, 2)).shape == (2, 2)
    with pytest.raises(AutoclintError, match=r"t.predict_0: shape \(2, 2\) differs from the solution's \(3, 2\)"):
        scoring.read_prediction(str(p), (3, 2))
    p.write_text("nan 0.9\n0.3 inf\n")
    with pytest.raises(AutoclintError, match="t.predict_0: holds NaN or inf"):
        scoring.read_prediction(str(p), (2, 2))


# ----------------------------------------------------------------------------- the learner's ranking signals

def one_hot(classes, k):
    return np.eye(k)[np.asarray(classes)]


def test_calibrated_loss_ranks_perfect_predictors_by_margin_and_stays_finite():
    y = one_hot([0, 1, 2, 0, 1, 2, 0, 1], 3)
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 0.1, y.shape)
    wide = np.clip(0.05 + 0.9 * y + noise * 0.05, 0, 1)  # true class far above the rest
    narrow = np.clip(0.45 + 0.1 * y + noise * 0.05, 0, 1)  # still perfectly ranked, barely apart
    assert metrics.nauc(y, wide) == metrics.nauc(y, narrow) == 1.0
    wide_loss = metrics.calibrated_log_loss(y, wide, multilabel=False)
    narrow_loss = metrics.calibrated_log_loss(y, narrow, multilabel=False)
    assert math.isfinite(wide_loss) and math.isfinite(narrow_loss)
    assert wide_loss < narrow_loss


def test_calibrated_loss_is_class_balanced_single_label():
    # 4:1 binary: a predictor that leans to the majority for every row (the minority is always wrong)
    # must not look better than one that gets both classes half right.
    y = one_hot([0] * 40 + [1] * 10, 2)
    leaning = np.tile([0.9, 0.1], (50, 1))
    leaning[:40] = [0.8, 0.2]  # tiny edge for the majority rows only
    fair = np.where(y > 0.5, 0.6, 0.4)
    fair[::2] = 1 - fair[::2]  # half the rows of each class wrong
    fair[1::2] = np.where(y[1::2] > 0.5, 0.7, 0.3)
    assert metrics.calibrated_log_loss(y, fair, False) < metrics.calibrated_log_loss(y, leaning, False)


def test_calibrated_loss_is_class_balanced_multilabel():
    # 10% positives: a predictor sure of the many negatives but with half the positives below them
    # (NAUC ~0) must not beat one that ranks every positive first with small margins (NAUC 1); an
    # unbalanced mean over entries preferred the first.
    rng = np.random.default_rng(1)
    y = (rng.uniform(size=(200, 3)) < 0.1).astype(float)
    y[0] = 1
    positive = y > 0.5
    sure_of_negatives = np.where(positive, np.where(rng.uniform(size=y.shape) < 0.5, 3.0, -1.5), -1.0)
    sure_of_negatives += rng.normal(0, 0.05, y.shape)
    ranks_positives_first = np.where(positive, 1.0, rng.uniform(-1.0, 0.5, y.shape))
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert metrics.nauc(y, sigmoid(ranks_positives_first)) == 1.0 > 0.1 > metrics.nauc(y, sigmoid(sure_of_negatives))
    assert (metrics.calibrated_log_loss(y, sigmoid(ranks_positives_first), True)
            < metrics.calibrated_log_loss(y, sigmoid(sure_of_negatives), True))


def test_paired_noise_small_for_near_identical_predictors_and_zero_for_tiny_splits():
    rng = np.random.default_rng(2)
    y = one_hot(rng.integers(0, 4, 200), 4)
    p = np.clip(y * 0.3 + rng.uniform(0, 1, y.shape), 0, 1)
    other = np.clip(y * 0.3 + rng.uniform(0, 1, y.shape), 0, 1)
    same_ish = np.clip(p + rng.normal(0, 1e-4, p.shape), 0, 1)
    assert metrics.paired_nauc_noise(y, p, same_ish) < 0.01 < metrics.paired_nauc_noise(y, p, other)
    assert metrics.paired_nauc_noise(y[:2], p[:2], other[:2]) == 0.0


def test_summarize_gives_the_figures_a_person_reads():
    """Hand-checked: 6 examples, 3 classes; class 0 predicted for rows 0 and 5 (one right), etc."""
    from autoclint.metrics import summarize
    y = np.eye(3)[[0, 0, 1, 2, 2, 2]]
    p = np.array([[.8, .1, .1], [.3, .6, .1], [.1, .8, .1], [.1, .1, .8], [.2, .2, .6], [.6, .2, .2]])
    s = summarize(y, p, p == p.max(1, keepdims=True))
    assert s.top1 == pytest.approx(4 / 6)
    assert s.precision.tolist() == pytest.approx([0.5, 0.5, 1.0]) and s.recall.tolist() == pytest.approx([0.5, 1, 2 / 3])
    assert s.macro[0] == pytest.approx(2 / 3) and s.micro == pytest.approx((4 / 6,) * 3)
    assert s.confusion.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert s.support.tolist() == [2, 1, 3] and s.predicted.tolist() == [2, 2, 2]
    multi = summarize(np.array([[1, 1, 0], [0, 1, 0]]), np.array([[.9, .2, .1], [.1, .9, .1]]),
                      np.array([[True, False, False], [False, True, False]]))
    assert multi.confusion is None and multi.top1 == 1.0 and multi.recall.tolist() == pytest.approx([1, 0.5, 0])
    assert multi.macro[1] == pytest.approx(0.75)  # class 2 is absent from the truth: left out of the mean
