"""Who validates, and how two predictors are ranked on the held-out split.

A few dozen held-out examples reach NAUC 1.0 with raw pixels (Faces, Kth), and then NAUC can no longer
tell a better predictor from a worse one. So every comparison here looks at two things: NAUC, with a
tie band as wide as the split's own noise (a paired bootstrap of the difference), and inside that band
the calibrated log-loss (metrics.calibrated_log_loss), which keeps ranking predictors whose margins
differ; where the loss is about the same, NAUC decides again.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoclint.metrics import calibrated_log_loss, paired_loss_noise, paired_nauc_noise, safe_nauc
from autoclint.train.config import TrainCfg


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # indices into the train cache, shuffled
    valid: np.ndarray  # sorted; empty when nothing can be held out (then nothing can be ranked)


def make_split(labels: np.ndarray, cfg: TrainCfg) -> Split:
    """A single held-out fold, stratified by the first positive class (seeded).

    Every class with at least 2 examples gives max(1, its share) to validation and keeps at least one for
    training; one-example classes and unlabelled rows are only trained on. A split that would validate on
    fewer than 2 examples or a single class holds nothing out.
    """
    rng = np.random.default_rng(cfg.seed)
    n = len(labels)
    fraction = min(cfg.valid_fraction, cfg.max_valid / max(n, 1))
    keys = np.where(labels.sum(1) > 0, labels.argmax(1), -1)
    valid = []
    for k in np.unique(keys):
        members = rng.permutation(np.flatnonzero(keys == k))
        if k < 0 or len(members) < 2:
            continue
        valid.append(members[:min(len(members) - 1, max(1, int(round(fraction * len(members)))))])
    valid = np.sort(np.concatenate(valid)) if valid else np.zeros(0, int)
    if len(valid) < 2 or len(np.unique(keys[valid])) < 2:
        return Split(rng.permutation(n), np.zeros(0, int))
    return Split(rng.permutation(np.setdiff1d(np.arange(n), valid)), valid)


@dataclass(frozen=True)
class Score:
    nauc: float
    loss: float  # calibrated log-loss (lower is better)

    def __str__(self) -> str:
        return f"valid_nauc={self.nauc:.4f} valid_loss={self.loss:.4f}"


class Validation:
    """Scores on the held-out labels, and the rules that compare them."""

    def __init__(self, labels: np.ndarray, multilabel: bool, cfg: TrainCfg):
        self.labels, self.multilabel, self.cfg = labels, multilabel, cfg

    def __len__(self) -> int:
        return len(self.labels)

    def score(self, scores: np.ndarray) -> Score:
        return Score(safe_nauc(self.labels, scores), calibrated_log_loss(self.labels, scores, self.multilabel))

    def macro_precision(self, scores: np.ndarray) -> float:
        """Held-out macro precision of the decisions a saved model would make from these scores (its
        calibration fitted on this split: argmax, or per-class thresholds for multi-label)."""
        from autoclint.metrics import summarize
        from autoclint.train.calibrate import fit_calibration
        calibration = fit_calibration(self.labels, scores, self.multilabel)
        probabilities = calibration.probabilities(scores)
        return summarize(self.labels, probabilities, calibration.decide(probabilities)).macro[0]

    def noise(self, first: np.ndarray, second: np.ndarray) -> float:
        """How much this split alone moves the NAUC difference of two predictors (bootstrap sd)."""
        return paired_nauc_noise(self.labels, first, second, self.cfg.bootstrap_draws, self.cfg.seed)

    def beats(self, new: np.ndarray, new_score: Score, old: np.ndarray, old_score: Score) -> bool:
        """A NAUC gain beyond `gain_sds` noise bands; inside the band, a calibrated loss lower by more than
        `gain_sds` of its own paired standard error (and at least `loss_gain`), or, with the loss about the
        same, a NAUC gain of at least one noise band (multi-label losses barely move: Pokemon's stayed
        within 0.0003 while held-out NAUC rose 0.581 -> 0.591). On ten held-out examples (5-shot Cifar)
        fixed margins let fine-tunes in whose test NAUC had dropped; both noises grow as the split shrinks."""
        cfg = self.cfg
        noise = self.noise(new, old)
        band = max(cfg.min_gain, cfg.gain_sds * noise)
        if new_score.nauc > old_score.nauc + band:
            return True
        if new_score.nauc < old_score.nauc - band:
            return False
        loss_band = max(cfg.loss_gain * old_score.loss,
                        cfg.gain_sds * paired_loss_noise(self.labels, new, old, self.multilabel))
        if new_score.loss < old_score.loss - loss_band:
            return True
        if new_score.loss > old_score.loss + loss_band:
            return False
        return new_score.nauc > old_score.nauc + max(cfg.min_gain, noise)

    def leads_on_both(self, new_score: Score, old_score: Score) -> bool:
        """Ahead on both held-out measures, each perhaps inside the split's noise: a NAUC higher by more than
        `min_gain` and a calibrated loss lower by more than `loss_gain` (relative). Two measures that agree
        are evidence where a prior would otherwise decide (anytime: pixels against pretrained features)."""
        cfg = self.cfg
        return (new_score.nauc > old_score.nauc + cfg.min_gain
                and new_score.loss < old_score.loss * (1 - cfg.loss_gain))

    def progresses(self, new: np.ndarray, new_score: Score, old: np.ndarray, old_score: Score) -> bool:
        """Whether training still goes somewhere, for patience only (no prediction rests on it): a
        calibrated loss lower by `loss_gain`, or a NAUC higher by `min_gain` with the loss not worse by as
        much, and no NAUC drop beyond the noise band. Looser than `beats`, because stopping early wastes
        the rest of the budget while going on costs nothing (Faces: the loss fell 0.079 -> 0.041 -> 0.028
        on 40 held-out faces, each step inside its noise, and the run stopped at 191 s of 300)."""
        cfg = self.cfg
        if new_score.nauc < old_score.nauc - max(cfg.min_gain, cfg.gain_sds * self.noise(new, old)):
            return False
        if new_score.loss < old_score.loss * (1 - cfg.loss_gain):
            return True
        return new_score.nauc > old_score.nauc + cfg.min_gain and new_score.loss <= old_score.loss * (1 + cfg.loss_gain)

    def clearly_worse(self, new: np.ndarray, new_score: Score, old: np.ndarray, old_score: Score,
                      floor: float, loss_tolerance: float | None = None) -> bool:
        """A NAUC drop beyond `noise_sds` noise bands (and at least `floor`); with `loss_tolerance`, also a
        NAUC tie whose calibrated loss is that much (relative) worse. Non-finite scores are always worse."""
        if not (np.isfinite(new_score.loss) and np.isfinite(new_score.nauc)):
            return True
        band = max(floor, self.cfg.noise_sds * self.noise(new, old))
        if new_score.nauc < old_score.nauc - band:
            return True
        return (loss_tolerance is not None and new_score.nauc <= old_score.nauc + band
                and new_score.loss > old_score.loss * (1 + loss_tolerance))
