"""Who validates (1/2/5-shot, class-sorted, unlabelled rows) and how predictors are ranked on small splits."""
import numpy as np

from autoclint.train.config import TrainCfg
from autoclint.train.split import Validation, make_split
from tests.conftest import faces, one_hot


def test_every_class_with_two_examples_is_validated_and_keeps_one_for_training():
    for shots in (2, 3, 5):
        labels = one_hot(np.repeat(np.arange(8), shots), 8)
        split = make_split(labels, TrainCfg())
        assert sorted(set(labels[split.valid].argmax(1))) == list(range(8)), shots
        assert sorted(set(labels[split.train].argmax(1))) == list(range(8)), shots
        assert len(np.intersect1d(split.train, split.valid)) == 0
        assert len(split.train) + len(split.valid) == len(labels)


def test_one_shot_classes_are_only_trained_on_and_a_one_shot_set_holds_nothing_out():
    labels = one_hot(np.array([0, 1, 2, 3] + [4] * 20 + [5] * 20), 6)
    split = make_split(labels, TrainCfg())
    assert set(labels[split.valid].argmax(1)) == {4, 5}
    assert set(labels[split.train].argmax(1)) == set(range(6))
    one_shot = make_split(one_hot(np.arange(10), 10), TrainCfg())
    assert len(one_shot.valid) == 0 and sorted(one_shot.train) == list(range(10))


def test_class_sorted_records_and_unlabelled_rows():
    labels = one_hot(np.repeat(np.arange(10), 100), 10)  # records sorted by class, as the miniciao sample
    split = make_split(labels, TrainCfg())
    counts = np.bincount(labels[split.valid].argmax(1), minlength=10)
    assert (counts == 15).all()  # 15 % of every class, wherever it sits in the file
    labels[::3] = 0  # rows with no label are never held out (they cannot be scored)
    split = make_split(labels, TrainCfg())
    assert (labels[split.valid].sum(1) == 1).all()
    single = make_split(one_hot(np.zeros(50, int), 3), TrainCfg())
    assert len(single.valid) == 0  # one class only: NAUC is undefined, nothing is held out


def test_saturated_nauc_is_ranked_by_the_calibrated_loss():
    """40 held-out faces: two predictors both at NAUC 1.0; the more confident one wins, and a tiny NAUC
    difference inside the split's noise does not override a much better loss."""
    _, subjects = faces(per_subject=1)
    y = one_hot(subjects, 40)
    validation = Validation(y, False, TrainCfg())
    rng = np.random.default_rng(0)
    vague = 0.5 * y + 0.3 * rng.random(y.shape)  # right, but barely: NAUC 1.0
    sharp = 0.9 * y + 0.05 * rng.random(y.shape)  # right and confident: NAUC 1.0
    s_vague, s_sharp = validation.score(vague), validation.score(sharp)
    assert s_vague.nauc == s_sharp.nauc == 1.0 and s_sharp.loss < s_vague.loss
    assert validation.beats(sharp, s_sharp, vague, s_vague)
    assert not validation.beats(vague, s_vague, sharp, s_sharp)
    assert not validation.beats(sharp, s_sharp, sharp, s_sharp)  # no gain over itself


def test_a_drop_within_the_noise_of_8_examples_is_not_a_collapse_but_chance_is():
    """The 40-image, 8-class set: 8 held-out images moved NAUC 0.96 -> 0.86 and that triggered rollbacks."""
    y = one_hot(np.arange(8), 8)
    validation = Validation(y, False, TrainCfg())
    rng = np.random.default_rng(1)
    best = y * 0.6 + rng.random(y.shape) * 0.5
    worse = best.copy()
    worse[0, [0, 1]] = worse[0, [1, 0]]  # one example's top two classes swapped
    s_best, s_worse = validation.score(best), validation.score(worse)
    assert s_best.nauc - s_worse.nauc > 0.03
    assert not validation.clearly_worse(worse, s_worse, best, s_best, floor=0.02)
    chance = rng.random(y.shape)
    assert validation.clearly_worse(chance, validation.score(chance), best, s_best, floor=0.02)
    nan = np.full(y.shape, np.nan)
    assert validation.clearly_worse(nan, validation.score(nan), best, s_best, floor=0.02)


def test_with_the_loss_about_the_same_a_nauc_gain_inside_the_noise_is_not_a_gain():
    """Two predictors of the same quality with independent errors: a NAUC difference inside the split's
    noise, the loss about the same, neither beats the other (on 10 held-out 5-shot Cifar images such
    'gains' let in fine-tunes whose test NAUC had dropped); a clearly better one still does, even where
    the multi-label loss barely moves."""
    rng = np.random.default_rng(0)
    y = (rng.random((200, 18)) < 0.12).astype(float)
    validation = Validation(y, True, TrainCfg())
    old = 0.15 * y + rng.random(y.shape)
    new = 0.15 * y + rng.random(y.shape)
    s_old, s_new = validation.score(old), validation.score(new)
    gain = s_new.nauc - s_old.nauc
    assert TrainCfg().min_gain < gain < validation.noise(new, old)  # a small gain, inside the noise band
    assert abs(s_new.loss - s_old.loss) < TrainCfg().loss_gain * s_old.loss  # the loss about the same
    assert not validation.beats(new, s_new, old, s_old) and not validation.beats(old, s_old, new, s_new)
    better = 0.3 * y + rng.random(y.shape)
    assert validation.beats(better, validation.score(better), old, s_old)


def test_a_lower_loss_on_ten_examples_must_exceed_its_noise():
    """5-shot, 10 classes, one held-out image per class: a 3 % lower calibrated loss is not evidence."""
    rng = np.random.default_rng(3)
    y = one_hot(np.arange(10), 10)
    validation = Validation(y, False, TrainCfg())
    base = y * 1.2 + rng.normal(size=y.shape)
    old, new = base + 0.4 * rng.normal(size=y.shape), base + 0.4 * rng.normal(size=y.shape)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    old, new = sigmoid(old), sigmoid(new)
    s_old, s_new = validation.score(old), validation.score(new)
    if s_new.loss > s_old.loss:
        old, new, s_old, s_new = new, old, s_new, s_old
    assert s_new.loss < s_old.loss * (1 - TrainCfg().loss_gain)  # lower by more than the fixed 1 %
    assert not validation.beats(new, s_new, old, s_old)



def test_patience_counts_a_falling_loss_inside_the_noise_as_progress():
    """40 held-out faces, one per class, both predictors perfect: a lower loss is progress for patience
    (which needs no more than 1 %, whatever the noise), a higher one or a NAUC collapse is not."""
    rng = np.random.default_rng(0)
    y = one_hot(np.arange(40), 40)
    validation = Validation(y, False, TrainCfg())
    old = 0.45 + 0.10 * y + 0.05 * rng.random(y.shape)
    new = 0.40 + 0.20 * y + 0.05 * rng.random(y.shape)
    s_old, s_new = validation.score(old), validation.score(new)
    assert s_old.nauc == s_new.nauc == 1.0 and s_new.loss < 0.9 * s_old.loss
    assert validation.progresses(new, s_new, old, s_old) and not validation.progresses(old, s_old, new, s_new)
    chance = rng.random(y.shape)
    assert not validation.progresses(chance, validation.score(chance), old, s_old)
