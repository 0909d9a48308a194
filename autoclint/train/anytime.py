"""Which prediction to hand back: the any-time selection.

Predictors are offered as candidates with their held-out scores; one replaces the current prediction only
when it beats it (validation.beats: NAUC beyond the split's noise, or a tie won by the calibrated loss),
so the learning curve never steps down on what validation can see. Without a held-out split the order of
the kinds decides (pretrained features over raw pixels, measured on every suite set); with one, features
replace pixels unless pixels beat them or lead them on both held-out measures. The best single
predictor is kept apart from averaged ones: it is what a saved model reproduces.

On tiny sets the frozen-features ridge that predicts is refitted with the held-out examples (a 2-shot set:
twice the examples its held-out score was measured with), which the fine-tuned net never sees; there a
fine-tune prediction is blended with the features' unless validation finds the blend clearly worse.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from autoclint.train.split import Score, Validation

log = logging.getLogger("autoclint")

KINDS = ("pixels", "features", "finetune")  # the predictors, from the weakest learner to the strongest


@dataclass
class Single:
    """One predictor a saved model can reproduce (no averaging of predictions)."""
    kind: str  # "pixels" (ridge on raw pixels), "features" (ridge on frozen features) or "finetune"
    tta: bool = False  # averaged with the mirrored input's scores
    ridge: object | None = None  # the RidgeHead ("pixels", "features")
    state: dict | None = None  # CPU copy of the network weights ("features": the untouched pretrained net)
    pre: object | None = None  # its runner.Preprocess where it is not the learner's (features upsampled)


@dataclass
class Candidate:
    kind: str
    note: str  # shown in the log line of its prediction
    predict: Callable[[], np.ndarray]  # the test prediction (n_test, classes); run only when it is chosen
    passes: int  # inference passes over the test set it costs (2 with mirrored test-time augmentation)
    valid: np.ndarray | None = None  # its scores on the held-out split (None: there is none)
    score: Score | None = None
    single: Single | None = None  # None for an average of several predictions
    uses_live_net: bool = False  # predicts with the network being trained: stale once training goes on
    pass_kind: str = ""  # the clock's name for its test pass cost; empty: by kind ("pixel_pass", "net_pass")


def prior_rank(candidate: Candidate) -> tuple[int, bool]:
    """Where held-out data cannot rank two predictors: raw pixels < pretrained features at the learner's
    input < pretrained features of the input upsampled towards the backbone's pretraining scale < fine-tuned."""
    return KINDS.index(candidate.kind), candidate.pass_kind == "upsampled_pass"


@dataclass
class Snapshot:
    """A fine-tune prediction that was made, kept for averaging with later ones."""
    valid: np.ndarray
    test: np.ndarray


def blend(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The mean of two predictions' logits, each centred per class column and put on one scale (ridge
    scores and softmax probabilities spread differently), squashed back to (0, 1)."""
    def standard(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
        z = np.log(p) - np.log1p(-p)
        z = z - z.mean(0)
        return z / max(float(z.std()), 1e-6)
    return 1.0 / (1.0 + np.exp(-0.5 * (standard(first) + standard(second))))


@dataclass
class Anytime:
    validation: Validation | None
    delivered: Candidate | None = None  # behind the latest prediction made
    pending: Candidate | None = None  # chosen, its prediction not made yet
    prediction: np.ndarray | None = None
    best_single: Candidate | None = None
    min_precision: float = 0.0  # a saved predictor should reach this held-out macro precision (0: no constraint)
    best_precise: Candidate | None = None  # the best-ranked single predictor that reaches it
    most_precise: tuple[float, Candidate] | None = None  # the single predictor of highest held-out precision
    snapshots: list[Snapshot] = field(default_factory=list)
    features_made: Snapshot | None = None  # the frozen-features prediction, once made (for blends)

    @property
    def current(self) -> Candidate | None:
        """What a new candidate must beat: the queued one, else the one behind the latest prediction."""
        return self.pending or self.delivered

    def _beats(self, new: Candidate, old: Candidate | None) -> bool:
        if old is None:
            return True
        if self.validation is None:
            return prior_rank(new) > prior_rank(old)
        if new.kind != "finetune" and prior_rank(new) > prior_rank(old):
            # A frozen predictor the prior ranks higher replaces a lower one unless the lower one beats it by
            # the usual rule or leads on both measures. Features of the input upsampled towards the pretraining
            # scale over those at the small input: on 10 held-out Cifar images (one a class) they led 0.80 to
            # 0.73, inside the noise, and on test 0.78 to 0.62 (bench/results/upsampled-prior).
            # Pretrained features replace raw pixels unless the pixels beat them by the usual rule: on 13
            # held-out photos both scored NAUC 1.0 and the pixels' loss was lower, while on the test set
            # pixels scored -0.47 and features 1.0. (Unless "clearly worse", 3 noise bands, was too
            # loose: on 83 held-out 10:1 shirts pixels led 0.85 to 0.71 and on test 0.90 to 0.66.) Nor when
            # the pixels lead on NAUC and loss both, each inside the noise: the same shirts with features of
            # four stages, held out 0.847 / loss 0.445 against 0.793 / 0.458, on test 0.897 against 0.756.
            return not (self.validation.beats(old.valid, old.score, new.valid, new.score)
                        or self.validation.leads_on_both(old.score, new.score))
        return self.validation.beats(new.valid, new.score, old.valid, old.score)

    def keep_if_best(self, candidate: Candidate) -> None:
        """Remember a single predictor that ranks above every earlier one (what a saved model holds); with a
        precision constraint, also the best one that meets it and the most precise one."""
        if candidate.single is None:
            return
        if self._beats(candidate, self.best_single):
            self.best_single = candidate
        if self.min_precision > 0 and self.validation is not None and candidate.valid is not None:
            precision = self.validation.macro_precision(candidate.valid)
            if precision >= self.min_precision and self._beats(candidate, self.best_precise):
                self.best_precise = candidate
            if self.most_precise is None or precision > self.most_precise[0]:
                self.most_precise = (precision, candidate)

    def for_saving(self) -> tuple[Candidate | None, str]:
        """The single predictor a saved model holds, and a sentence when the precision constraint could not
        be met (then the most precise one is kept)."""
        if self.min_precision <= 0 or self.validation is None or self.most_precise is None:
            return self.best_single, ""
        if self.best_precise is not None:
            return self.best_precise, ""
        precision, candidate = self.most_precise
        return candidate, (f"no predictor reached the held-out macro precision {self.min_precision:.3f} asked for; "
                           f"keeping the most precise one ({candidate.kind}, {precision:.3f})")

    def offer(self, candidate: Candidate) -> bool:
        """Queue the candidate's prediction when it beats the current one."""
        self.keep_if_best(candidate)
        if not self._beats(candidate, self.current):
            return False
        self.pending = candidate
        return True

    def restart(self, validation: Validation | None) -> None:
        """A new held-out split (more of the train set was read): earlier scores no longer compare."""
        self.validation = validation
        self.delivered = self.pending = self.best_single = self.features_made = None
        self.best_precise = self.most_precise = None
        self.snapshots.clear()

    def drop_stale(self) -> None:
        """A queued prediction from the network as it was is no longer what the network computes."""
        if self.pending is not None and self.pending.uses_live_net:
            log.info("the queued %s prediction was not made and is dropped", self.pending.note)
            self.pending = None

    def make_pending(self) -> np.ndarray:
        candidate, self.pending = self.pending, None
        self.prediction = candidate.predict()
        self.delivered = candidate
        if candidate.kind == "finetune" and candidate.single is not None and candidate.valid is not None:
            self.snapshots.append(Snapshot(candidate.valid, self.prediction))
        if candidate.kind == "features" and candidate.valid is not None:
            self.features_made = Snapshot(candidate.valid, self.prediction)
        return self.prediction

    def averaged(self, newest: Candidate, max_earlier: int, with_features: bool = False) -> Candidate:
        """The newest fine-tune candidate, or its average with the last k made predictions when validation
        says the average ranks better (DeepBlueAI); with_features (tiny sets), that blended with the frozen
        features' prediction unless the blend ranks clearly worse."""
        if self.validation is None:
            return newest
        chosen = newest
        for k in range(1, min(max_earlier, len(self.snapshots)) + 1):
            earlier = self.snapshots[-k:]
            valid = np.mean([newest.valid] + [s.valid for s in earlier], axis=0)
            score = self.validation.score(valid)
            if not self.validation.beats(valid, score, chosen.valid, chosen.score):
                continue

            def predict(earlier=earlier, newest=newest) -> np.ndarray:
                own = newest.predict()
                self.snapshots.append(Snapshot(newest.valid, own))
                return np.mean([own] + [s.test for s in earlier], axis=0)
            chosen = Candidate("finetune", f"{newest.note} +{k} earlier", predict, newest.passes, valid, score,
                               None, True)
        features = self.features_made
        if with_features and features is not None:
            valid = blend(chosen.valid, features.valid)
            score = self.validation.score(valid)
            if not self.validation.clearly_worse(valid, score, chosen.valid, chosen.score,
                                                 self.validation.cfg.min_gain):
                def predict(inner=chosen, newest=newest, features=features) -> np.ndarray:
                    own = inner.predict()
                    if inner is newest:  # an average keeps the newest's own prediction itself
                        self.snapshots.append(Snapshot(newest.valid, own))
                    return blend(own, features.test)
                chosen = Candidate("finetune", f"{chosen.note} +features", predict, chosen.passes, valid, score,
                                   None, True)
        return chosen
