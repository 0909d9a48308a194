"""The any-time selection: a prediction is replaced only by one that validation ranks higher; without a
held-out split the kinds' order decides; averaging is chosen only when it ranks higher."""
import numpy as np

from autoclint.train.anytime import Anytime, Candidate, Single, blend
from autoclint.train.config import TrainCfg
from autoclint.train.split import Validation
from tests.conftest import one_hot


def candidate(kind, valid, validation, test_value=0.0, single=True):
    test = np.full((3, valid.shape[1]), test_value)
    return Candidate(kind, kind, lambda: test, 1, valid, validation.score(valid) if validation else None,
                     Single(kind) if single else None)


def test_the_curve_never_steps_down_on_what_validation_sees():
    y = one_hot(np.arange(40) % 4, 4)
    validation = Validation(y, False, TrainCfg())
    rng = np.random.default_rng(0)
    good, bad = y + 0.8 * rng.random(y.shape), rng.random(y.shape)
    anytime = Anytime(validation)
    assert anytime.offer(candidate("pixels", bad, validation, 1.0))
    assert anytime.make_pending()[0, 0] == 1.0
    assert anytime.offer(candidate("features", good, validation, 2.0))
    assert not anytime.offer(candidate("finetune", bad, validation, 3.0))  # worse: the prediction stays
    assert anytime.pending is not None and anytime.pending.kind == "features"
    assert anytime.make_pending()[0, 0] == 2.0 and anytime.best_single.kind == "features"


def test_without_validation_the_stronger_kind_wins():
    anytime = Anytime(None)
    cand = Candidate("pixels", "pixels", lambda: np.zeros((2, 2)), 1, single=Single("pixels"))
    assert anytime.offer(cand)
    assert anytime.offer(Candidate("features", "features", lambda: np.ones((2, 2)), 1, single=Single("features")))
    assert not anytime.offer(cand)
    assert anytime.best_single.kind == "features"


def test_upsampled_features_replace_small_features_unless_the_split_says_otherwise():
    """Cifar, five images a class, ten held out: features at 128 px led those at 64 px on held-out NAUC and
    loss (0.80 / 1.27 against 0.73 / 1.41), inside the noise of ten examples, and the rule for two measured
    predictors kept the small ones (test: 0.78 upsampled against 0.62). The prior for the pretraining scale
    takes the upsampled ones, unless the small ones beat them or lead on both; without a split it decides."""
    def features(valid, validation, upsampled):
        return Candidate("features", "features", lambda: np.zeros((3, valid.shape[1])), 1, valid,
                         validation.score(valid) if validation else None, Single("features"),
                         pass_kind="upsampled_pass" if upsampled else "")
    y = one_hot(np.arange(10) % 10, 10)
    validation = Validation(y, False, TrainCfg())
    rng = np.random.default_rng(0)
    small, up = y + 0.9 * rng.random(y.shape), y + 0.9 * rng.random(y.shape)
    assert not validation.beats(up, validation.score(up), small, validation.score(small))
    assert not validation.beats(small, validation.score(small), up, validation.score(up))
    for first, second, taken in [(small, up, True), (up, small, True), (y + 0.01 * rng.random(y.shape), up, False)]:
        anytime = Anytime(validation)
        anytime.offer(features(first, validation, False))
        anytime.make_pending()
        assert anytime.offer(features(second, validation, True)) == taken
        assert anytime.best_single.pass_kind == ("upsampled_pass" if taken else "")
    anytime = Anytime(validation)  # the prior goes one way: small features do not replace upsampled ones
    anytime.offer(features(small, validation, True))
    assert not anytime.offer(features(up, validation, False))
    anytime = Anytime(None)
    anytime.offer(features(small, None, False))
    assert anytime.offer(features(small, None, True)) and not anytime.offer(features(small, None, False))


def test_averaging_is_used_only_when_it_ranks_higher():
    y = one_hot(np.arange(60) % 3, 3)
    validation = Validation(y, False, TrainCfg())
    rng = np.random.default_rng(2)
    anytime = Anytime(validation)
    # two noisy fine-tune predictions whose errors differ: their average ranks better than either
    first = candidate("finetune", y + 1.2 * rng.random(y.shape), validation, 1.0)
    assert anytime.offer(anytime.averaged(first, 4))
    anytime.make_pending()
    second = candidate("finetune", y + 1.2 * rng.random(y.shape), validation, 3.0)
    chosen = anytime.averaged(second, 4)
    assert chosen.note == "finetune +1 earlier" and chosen.single is None
    assert anytime.offer(chosen)
    assert anytime.make_pending()[0, 0] == 2.0  # the mean of 3.0 and the earlier 1.0
    assert len(anytime.snapshots) == 2  # the newest's own prediction is kept for later averages
    lone = Anytime(validation)
    assert lone.averaged(second, 4) is second  # nothing made yet to average with


def test_features_replace_pixels_unless_clearly_worse():
    """13 held-out photos: pixels and features both rank them perfectly and the pixels' loss is lower,
    yet on the test set pixels scored NAUC -0.47 and features 1.0. A tie goes to the pretrained features;
    features that rank clearly worse do not replace pixels."""
    y = one_hot(np.arange(13) % 3, 3)
    validation = Validation(y, False, TrainCfg())
    rng = np.random.default_rng(0)
    pixels = 0.1 + 0.8 * y + 0.05 * rng.random(y.shape)  # perfect, wide margins
    features = 0.4 + 0.2 * y + 0.05 * rng.random(y.shape)  # perfect, narrower margins
    assert validation.score(pixels).nauc == validation.score(features).nauc == 1.0
    assert validation.score(pixels).loss < validation.score(features).loss
    anytime = Anytime(validation)
    assert anytime.offer(candidate("pixels", pixels, validation))
    anytime.make_pending()
    assert anytime.offer(candidate("features", features, validation))
    anytime = Anytime(validation)
    anytime.offer(candidate("pixels", pixels, validation))
    anytime.make_pending()
    assert not anytime.offer(candidate("features", 1 - pixels, validation))  # ranks them backwards


def test_pixels_that_beat_features_stay():
    """83 held-out images of a 10:1 binary set: pixels ranked them 0.85, features 0.71 (test: 0.90 vs 0.66)."""
    rng = np.random.default_rng(4)  # a draw close to those figures: 0.85 vs 0.68 held out
    y = one_hot((np.arange(83) % 11 == 0).astype(int), 2)
    validation = Validation(y, False, TrainCfg())
    signal = y[:, 1] - y[:, 0]
    pixels = np.stack([-signal, signal], 1) * 0.8 + rng.normal(size=y.shape)
    features = np.stack([-signal, signal], 1) * 0.45 + rng.normal(size=y.shape)
    pixels, features = 1 / (1 + np.exp(-pixels)), 1 / (1 + np.exp(-features))
    assert validation.score(pixels).nauc > validation.score(features).nauc + 0.1
    # inside three noise bands: "unless clearly worse" would have let these features in
    assert not validation.clearly_worse(features, validation.score(features), pixels, validation.score(pixels),
                                        TrainCfg().min_gain)
    anytime = Anytime(validation)
    anytime.offer(candidate("pixels", pixels, validation))
    anytime.make_pending()
    assert not anytime.offer(candidate("features", features, validation))


def test_pixels_that_lead_features_on_both_measures_stay():
    """The same 10:1 shirts with features of four backbone stages: pixels led on held-out NAUC and calibrated
    loss both (0.847 / 0.445 against 0.793 / 0.458), each inside the split's noise, and on test 0.897
    against 0.756. Two measures that agree outweigh the prior for pretrained features."""
    rng = np.random.default_rng(15)  # a draw where pixels lead on both, neither beyond the noise
    y = one_hot((np.arange(83) % 11 == 0).astype(int), 2)
    validation = Validation(y, False, TrainCfg())
    signal = y[:, 1] - y[:, 0]
    pixels = 1 / (1 + np.exp(-(np.stack([-signal, signal], 1) * 0.8 + rng.normal(size=y.shape))))
    features = 1 / (1 + np.exp(-(np.stack([-signal, signal], 1) * 0.65 + rng.normal(size=y.shape))))
    p, f = validation.score(pixels), validation.score(features)
    assert p.nauc > f.nauc and p.loss < f.loss
    assert not validation.beats(pixels, p, features, f)  # the rule before: these features replaced pixels
    assert validation.leads_on_both(p, f) and not validation.leads_on_both(f, p)
    anytime = Anytime(validation)
    anytime.offer(candidate("pixels", pixels, validation))
    anytime.make_pending()
    assert not anytime.offer(candidate("features", features, validation))
    anytime = Anytime(validation)  # the other way round, features that lead on both replace pixels
    anytime.offer(candidate("pixels", features, validation))
    anytime.make_pending()
    assert anytime.offer(candidate("features", pixels, validation))


def test_tiny_sets_blend_the_fine_tune_with_the_features():
    """One held-out example per class: the features ridge that predicts was refitted with them, the net was
    not; its predictions are blended with the features' unless the blend ranks clearly worse."""
    y = one_hot(np.arange(10) % 10, 10)
    validation = Validation(y, False, TrainCfg())
    rng = np.random.default_rng(3)
    features_valid = np.clip(0.3 * y + 0.5 * rng.random(y.shape), 0, 1)
    tuned_valid = np.clip(0.3 * y + 0.5 * rng.random(y.shape), 0, 1)
    anytime = Anytime(validation)
    feats = Candidate("features", "features", lambda: np.eye(3, 10) * 0.9 + 0.05, 1, features_valid,
                      validation.score(features_valid), Single("features"))
    anytime.offer(feats)
    anytime.make_pending()
    tuned = Candidate("finetune", "finetune", lambda: np.eye(3, 10)[::-1] * 0.9 + 0.05, 1, tuned_valid,
                      validation.score(tuned_valid), Single("finetune"))
    assert anytime.averaged(tuned, 4) is tuned  # a usual split: no blend
    chosen = anytime.averaged(tuned, 4, with_features=True)
    assert chosen.note == "finetune +features" and chosen.single is None
    np.testing.assert_allclose(chosen.valid, blend(tuned_valid, features_valid))
    test = chosen.predict()
    np.testing.assert_allclose(test, blend(tuned.predict(), feats.predict()))
    assert len(anytime.snapshots) == 1  # the fine-tune's own prediction, for later averages
    # a blend that ranks clearly worse than the fine-tune alone is not used
    perfect = 0.05 + 0.9 * y
    strong = Candidate("finetune", "finetune", lambda: np.zeros((3, 10)), 1, perfect, validation.score(perfect),
                       Single("finetune"))
    anytime.features_made = type(anytime.features_made)(1 - perfect, anytime.features_made.test)
    assert anytime.averaged(strong, 0, with_features=True) is strong


def test_blend_keeps_each_column_order_of_a_prediction_it_is_blended_with_itself():
    p = np.random.default_rng(0).random((20, 4))
    b = blend(p, p)
    assert np.all((b > 0) & (b < 1))
    np.testing.assert_array_equal(np.argsort(b, 0), np.argsort(p, 0))


def test_min_precision_saves_the_best_predictor_that_meets_it_else_the_most_precise():
    """A ranks every class column perfectly (NAUC 1) but its argmax always says class 0 (macro precision
    0.11); B is noisier and precise. Without a constraint A is saved; with one, B; when nothing meets it,
    the most precise (B) with a sentence saying so."""
    y = one_hot(np.arange(60) % 3, 3)
    rng = np.random.default_rng(0)
    a = 0.1 * y + np.array([0.5, 0.0, 0.0])
    b = y + 1.5 * rng.random(y.shape)
    for min_precision, saved, says in [(0.0, "features", ""), (0.5, "finetune", ""), (0.999, "finetune", "no predictor")]:
        validation = Validation(y, False, TrainCfg())
        anytime = Anytime(validation, min_precision=min_precision)
        anytime.offer(candidate("features", a, validation))
        anytime.offer(candidate("finetune", b, validation))
        assert anytime.best_single.kind == "features"  # the ranking itself is unchanged
        chosen, note = anytime.for_saving()
        assert chosen.kind == saved and note.startswith(says), (min_precision, note)
    assert validation.macro_precision(a) < 0.2 and 0.5 < validation.macro_precision(b) < 0.999
