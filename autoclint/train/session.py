"""The clock-driven learner: a short stage machine over the parts in this package.

Stages, one per train() call until fine-tuning: (1) read the train set into a uint8 cache (a first part
only, for a prediction within seconds) and fit a ridge head on downsized raw pixels; (2) read the rest
and fit a ridge head on frozen pretrained features, checking whether mirrored images keep their class;
(3) when a share of the time left pays for it, the same on features of the cache upsampled towards the
scale the backbone was pretrained at; (4) fine-tune the whole network in time slices that double in length. Every candidate is offered to the
any-time selection, which makes a new prediction only when validation ranks it higher; every stage asks
the clock before it spends, and the test pass that must follow always fits.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from autoclint.augment.policy import AUTOAUGMENT_CIFAR, NO_POLICY, Policy, trivial_augment
from autoclint.augment.search import SearchResult, search_policy
from autoclint.data.adapt import adapted_shape, read_batch, scan, side_cap
from autoclint.metrics import log_loss
from autoclint.data.cache import TestSetCache, TrainCache
from autoclint.nets import default_backbone
from autoclint.nets.registry import create_model
from autoclint.train.accel import accel_for, configure, pass_pixels, warm_up
from autoclint.train.anytime import Anytime, Candidate, Single
from autoclint.train.calibrate import fit_calibration
from autoclint.train.checkpoint import Exported
from autoclint.train.clock import Clock
from autoclint.train.config import TrainCfg
from autoclint.train.finetune import FineTuner, cpu_state, init_head_from_ridge
from autoclint.train.heads import fit_ridge, pixel_features, refit
from autoclint.train.runner import NetRunner, Preprocess, channel_stats, network_input, probabilities
from autoclint.train.split import Score, Validation, make_split

log = logging.getLogger("autoclint")

COST_MARGIN = 1.25  # measured costs are planned with this margin: CPU speed varies between passes


@dataclass(frozen=True)
class Status:
    stage: str
    elapsed_s: float
    kind: str | None  # of the predictor behind the current prediction
    score: Score | None


@dataclass
class Reference:
    """The weights fine-tuning falls back to when validation collapses, with their held-out scores."""
    valid: np.ndarray
    score: Score
    state: dict


class Session:
    def __init__(self, num_classes: int, cfg: TrainCfg = TrainCfg(), train_size: int | None = None,
                 clock: Clock | None = None):
        """train_size: the train set's example count (metadata), to size the input; None: AutoCLINT's cap."""
        self.cfg, self.num_classes, self.train_size = cfg, num_classes, train_size
        # The same code runs on a GPU: the network, its batches and (when it fits) the train cache move there,
        # with the GPU's switches (autoclint/train/accel.py); the warm-up comes before the clock starts.
        self.device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.accel = accel_for(self.device, cfg)
        configure(self.accel, cfg)
        self.pixel_rate = (warm_up(cfg.backbone or default_backbone(), self.accel)
                           if self.accel.cuda and cfg.gpu.warm_up else None)
        self.clock = clock or Clock()
        self.stage = "read"
        self.done_training = False
        self.stop_reason = ""
        self.cache: TrainCache | None = None
        self.test_cache: TestSetCache | None = None
        self.validation: Validation | None = None
        self.anytime = Anytime(None, min_precision=cfg.min_precision)
        self.runner: NetRunner | None = None
        self.tuner: FineTuner | None = None
        self.reference: Reference | None = None
        self.best_tuned: tuple[np.ndarray, Score] | None = None  # the fine-tune's own best held-out scores
        self.best_progress: tuple[np.ndarray, Score] | None = None  # ... by the looser rule patience uses
        self.flip = False  # mirrored images keep their class (checked on frozen features): augment with it
        self.multilabel = False
        self.slice_s = cfg.first_slice_s
        self.no_gain = 0
        self.stream_slot = 0  # the next train slot streaming overwrites (sets larger than the cache)
        self.predictions = 0
        self.blend_features = False  # the features ridge gains a large share by its refit: blend with it
        self.policy_search: SearchResult | None = None
        self.policy_decided = cfg.augment == "none"  # the augmentation policy is chosen once, when it can pay
        self.features_fitted: Candidate | None = None  # the frozen-features predictor, and the examples its
        self.features_fit_idx: np.ndarray | None = None  # ridge was fitted on (the upsampled one fits the same)
        self.upsampled_hw: tuple[int, int] | None = None
        torch.manual_seed(cfg.seed)

    # ------------------------------------------------------------------ the harness's calls

    def train(self, dataset, remaining_s: float | None) -> None:
        self.clock.set_remaining(remaining_s)
        if self.done_training:
            return
        if self.anytime.prediction is not None and self.clock.left() < self.cfg.end_margin_s:
            return self._stop(f"{self.clock.left():.1f} s left: ending before the scorer's last look")
        if self.stage == "read":
            self._read_first(dataset)
            self._fit_pixels()
            self.stage = "features"
        elif self.stage == "features":
            if self._read_rest():
                return  # a pixel head on the whole set waits: predict with it before the long features stage
            self._fit_features()
        elif self.stage == "upsample":
            self._fit_upsampled()
        elif self.stage == "finetune":
            self._finetune_slice()

    def test(self, dataset, remaining_s: float | None) -> np.ndarray | None:
        self.clock.set_remaining(remaining_s)
        if self.cache is None:
            return None  # train() never read anything: nothing to predict with
        if self.test_cache is None:
            started = time.monotonic()
            self.test_cache = TestSetCache(dataset, self.shape, self.scan.low, self.scan.high,
                                           self.cfg.test_cache_bytes)
            log.info("t=%.1fs read %d test examples in %.1f s", self.clock.elapsed(), len(self.test_cache),
                     time.monotonic() - started)
        pending = self.anytime.pending
        if pending is not None:
            cost = self._test_cost(pending)
            if self.anytime.prediction is not None and not self.clock.can_afford(cost, self.cfg.end_margin_s):
                log.info("t=%.1fs no time for the %s prediction (%.1f s needed, %.1f s left): the last one stays",
                         self.clock.elapsed(), pending.note, cost, self.clock.left())
                self.anytime.pending = None
                self._stop("the budget is spent")
            else:
                started = time.monotonic()
                self.anytime.make_pending()
                self.clock.measure(self._pass_kind(pending), len(self.test_cache) * pending.passes,
                                   time.monotonic() - started)
                self.predictions += 1
                self._log_prediction(pending, time.monotonic() - started)
        return self.anytime.prediction

    def status(self) -> Status:
        shown = self.anytime.delivered
        return Status(self.stage, self.clock.elapsed(), shown.kind if shown else None,
                      shown.score if shown else None)

    def choices(self) -> dict:
        """What the learner decided, for a person (the run folder, the report)."""
        runner, tuner = self.runner, self.tuner
        return {"input_shape": list(vars(self.shape).values()) if self.cache is not None else None,
                "train_examples": len(self.cache) if self.cache is not None else 0,
                "held_out": len(self.validation) if self.validation is not None else 0,
                "multilabel": self.multilabel,
                "backbone": runner.pre.backbone if runner is not None else None,
                "network_input": list(runner.pre.net_hw) if runner is not None else None,
                "upsampled_features_input": list(self.upsampled_hw) if self.upsampled_hw else None,
                "mirroring": self.flip,
                "fine_tune_epochs": round(tuner.epoch, 2) if tuner is not None else 0.0,
                "policy": str(tuner.policy) if tuner is not None else "none",
                "policy_search": self.policy_search.summary() if self.policy_search is not None else None,
                "stage": self.stage, "stopped": self.stop_reason, "predictions": self.predictions}

    def held_out(self) -> tuple[float, float, float] | None:
        """Held-out NAUC, macro precision and calibrated loss of the predictor export() would save (None
        before one is ranked)."""
        best, _ = self.anytime.for_saving()
        if best is None or best.valid is None or best.score is None or self.validation is None:
            return None
        return best.score.nauc, self.validation.macro_precision(best.valid), best.score.loss

    def export(self, warn: bool = True) -> Exported | None:
        """The best single predictor with what a saved model needs to reproduce it (None before any).
        warn=False: no log line when the precision constraint is unmet (a save while training goes on)."""
        best, note = self.anytime.for_saving()
        if best is None:
            return None
        if note and warn:
            log.warning("%s", note)
        single = best.single
        held_out = self.validation.labels if self.validation is not None else None
        return Exported(single.kind, single.tta, best.score.nauc if best.score else math.nan, self.shape,
                        self.scan.low, self.scan.high, self.num_classes, self.multilabel, self.cfg.pixel_side,
                        single.ridge, single.state, (single.pre or self.runner.pre) if single.kind != "pixels" else None,
                        self.tuner.policy.to_list() if single.kind == "finetune" else [],
                        fit_calibration(held_out, best.valid, self.multilabel))

    # ------------------------------------------------------------------ stages

    def _read_first(self, dataset) -> None:
        cfg, clock = self.cfg, self.clock
        started = time.monotonic()
        self.scan = scan(dataset, cfg.scan_examples, until=clock.at(min(cfg.scan_s, 0.25 * clock.left())))
        frames = min(self.scan.median.frames, cfg.max_frames)
        largest = max(cfg.largest_side, cfg.gpu.largest_side) if self.accel.cuda else cfg.largest_side
        cap = side_cap(self.scan.median, self.train_size or 10**9, frames, cfg.max_side, largest,
                       pass_pixels(cfg, self.pixel_rate))
        self.shape = adapted_shape(self.scan.median, cap, cap * cfg.wide_factor, cfg.max_frames)
        self.cache = TrainCache(dataset, self.shape, self.scan.low, self.scan.high, cfg.cache_bytes,
                                read_batch(self.scan.median, cfg.read_batch_bytes))
        # The first prediction must not wait for a large set: read for a fraction of a second (half the budget
        # at most, the test set must still be read and predicted), the rest before the frozen features.
        self.cache.read(until=clock.at(min(cfg.first_read_s, 0.5 * clock.left())))
        if not len(self.cache):
            raise ValueError("the train set is empty")
        clock.measure("read", len(self.cache), time.monotonic() - started)
        log.info("t=%.1fs read %d examples%s, median shape %s -> input %s", clock.elapsed(), len(self.cache),
                 "" if self.cache.complete else " (the first part)", tuple(vars(self.scan.median).values()),
                 tuple(vars(self.shape).values()))
        self._new_split()

    def _read_rest(self) -> bool:
        """The rest of the train set (up to the cache cap), then a split over all of it and a new pixel head.
        True when that head is new (records sorted by class: the first part may miss classes; Fashion8's
        first prediction from 7 of 10 classes scored test NAUC 0.58, the whole set's 0.91 at 2.8 s, and
        frozen features came only at 23.6 s)."""
        refitted = False
        if not self.cache.complete:
            before = len(self.cache)
            started = time.monotonic()
            self.cache.read(until=self.clock.at(0.5 * self.clock.left()))
            self.clock.measure("read", len(self.cache) - before, time.monotonic() - started)
            if not self.cache.complete:
                log.warning("budget too small to read the whole train set: training on its first %d examples",
                            len(self.cache))
                self.cache.complete = True
            log.info("t=%.1fs read %d train examples in all", self.clock.elapsed(), len(self.cache))
            if len(self.cache) > before:  # nothing new: the split and pixel head of the first read stand
                self._new_split()
                self._fit_pixels()
                refitted = True
        return refitted

    def _new_split(self) -> None:
        y = self.cache.y
        self.multilabel = bool((y.sum(1) > 1).any())
        self.split = make_split(y, self.cfg)
        valid = self.split.valid
        self.validation = Validation(y[valid], self.multilabel, self.cfg) if len(valid) else None
        self.anytime.restart(self.validation)
        if self.validation is None:
            log.warning("%d examples, no class with 2 or more: nothing can be held out to rank predictors; "
                        "frozen features will be used without fine-tuning", len(y))
        else:
            log.info("held out %d of %d examples (%d classes) for validation; %s", len(valid), len(y),
                     int((y[valid].sum(0) > 0).sum()), "multi-label" if self.multilabel else "single-label")

    def _fit_pixels(self) -> None:
        cfg, x, y, split = self.cfg, self.cache.x, self.cache.y, self.split
        started = time.monotonic()
        use = np.concatenate([split.train[:cfg.max_pixel_examples], split.valid])
        feats = pixel_features(x[use], cfg.pixel_side)
        n_train = len(use) - len(split.valid)
        valid = score = None
        if self.validation is not None:
            head, _ = fit_ridge(feats[:n_train], y[use[:n_train]], cfg.ridge_alphas, self.multilabel)
            valid = head.predict(feats[n_train:])
            score = self.validation.score(valid)
            head = refit(head, feats, y[use])  # the predictor used: the held-out examples added
        else:
            head, _ = fit_ridge(feats, y[use], cfg.ridge_alphas, self.multilabel)
        side = cfg.pixel_side
        candidate = Candidate("pixels", "pixels", lambda: self.test_cache.map(lambda t: head.predict(
            pixel_features(t, side))), 1, valid, score, Single("pixels", ridge=head))
        self.anytime.offer(candidate)
        log.info("t=%.1fs pixels ridge (alpha %g, %d examples, %.1f s)%s", self.clock.elapsed(), head.alpha,
                 len(use), time.monotonic() - started, f": {score}" if score else "")

    def _build_net(self) -> None:
        name = self.cfg.backbone or default_backbone()
        net = create_model(name, self.num_classes, self.shape.channels, video=self.shape.frames > 1,
                           levels=self.cfg.feature_levels)
        mean, std = channel_stats(net.net_cfg, self.shape.channels)
        pre = Preprocess(self.shape, self.scan.low, self.scan.high,
                         network_input(self.shape, net.net_cfg, self.cfg.net_min_long_side), mean, std, name,
                         self.num_classes, self.multilabel, net.levels)
        self.runner = NetRunner(pre, self.device, net, self.accel)
        log.info("backbone %s (%s), network input %dx%d on %s", name,
                 "pretrained" if net.net_cfg.pretrained else "random init", *pre.net_hw, self.device)

    def _features(self, idx: np.ndarray, flip: bool = False) -> np.ndarray:
        started = time.monotonic()
        feats = self.runner.infer(self.cache.x[idx], features=True, flip=flip)
        self.clock.measure("net_pass", len(idx), time.monotonic() - started)
        return feats

    def _fit_features(self) -> None:
        """Ridge on frozen features, as many train examples as the clock allows; the mirror check; the fine-tune
        set up from the ridge solution. Every way out either stops or hands over to the upsampled stage."""
        cfg, clock, split, y = self.cfg, self.clock, self.split, self.cache.y
        if self.cache.capped:
            log.warning("train cache capped at %d examples (%.1f GiB, TrainCfg.cache_bytes): the rest is streamed, "
                        "a quarter of the cached train examples swapped for new ones before each fine-tune slice",
                        self.cache.cap, cfg.cache_bytes / 2**30)
        left = clock.left() - cfg.reserve_s
        n_test = len(self.test_cache) if self.test_cache is not None else 0
        if max(cfg.features_share, cfg.max_features_share) * left < 1.0:
            return self._stop(f"{clock.left():.1f} s left: too little for frozen features")
        started = time.monotonic()
        self._build_net()
        probe = split.train[:min(len(split.train), 16)]
        f_probe = self._features(probe)
        per = max(clock.cost("net_pass", 1), 1e-6) * COST_MARGIN
        # The held-out and test passes come first (plain + mirrored for the mirror check and its test-time
        # augmentation); train examples get what is left. Where the usual share cannot pay for that, the
        # mirror check goes, then the share grows: without this stage only raw pixels predict.
        plans = [(cfg.features_share, True), (cfg.features_share, False), (cfg.max_features_share, False)]
        for share, mirrored in plans:
            mirrored = mirrored and self.validation is not None
            budget = share * left - (time.monotonic() - started)
            fixed = per * (len(split.valid) + n_test) * (1 + mirrored)
            n_fit = int(min(len(split.train), cfg.max_feature_examples, (budget - fixed) / per / (1 + 0.5 * mirrored)))
            if n_fit >= min(len(split.train), 32):
                break
        else:
            return self._stop(f"frozen features do not fit in the budget ({per:.3f} s per example, "
                              f"{budget:.1f} s for this stage)")
        fit_idx = split.train[:n_fit]  # split.train is shuffled: a random subset
        f_fit = np.concatenate([f_probe, self._features(fit_idx[len(probe):])])[:n_fit]
        if self.validation is None:
            head, _ = fit_ridge(f_fit, y[fit_idx], cfg.ridge_alphas, self.multilabel)
            candidate = Candidate("features", "features", self._features_predictor(head, False), 1, None, None,
                                  Single("features", False, head, cpu_state(self.runner.net)), True)
            self.anytime.offer(candidate)
            self.features_fitted, self.features_fit_idx = candidate, fit_idx
            log.info("t=%.1fs frozen features: ridge on %d examples (%.1f s); nothing held out to rank it",
                     clock.elapsed(), n_fit, time.monotonic() - started)
            self.stage = "upsample"
            return
        f_valid = self._features(split.valid)
        head, _ = fit_ridge(f_fit, y[fit_idx], cfg.ridge_alphas, self.multilabel)
        valid = head.predict(f_valid)
        score = self.validation.score(valid)
        if mirrored:
            valid, score, tta, flip_note = self._check_mirroring(head, f_fit, fit_idx, f_valid, valid, score)
        else:
            tta, flip_note = False, f"mirroring not checked (no time): flip off; {share:.0%} of the time left"
        final = refit(head, np.concatenate([f_fit, f_valid]), y[np.concatenate([fit_idx, split.valid])])
        self.blend_features = len(split.valid) >= cfg.blend_share * n_fit
        candidate = Candidate("features", "features" + (" +flip" if tta else ""), self._features_predictor(final, tta),
                              1 + tta, valid, score, Single("features", tta, final, cpu_state(self.runner.net)), True)
        self.anytime.offer(candidate)
        self.features_fitted, self.features_fit_idx = candidate, fit_idx
        log.info("t=%.1fs frozen features: ridge on %d examples (alpha %g, %.1f s), %s; %s", clock.elapsed(), n_fit,
                 head.alpha, time.monotonic() - started, score, flip_note)
        self.stage = "upsample"
        if cfg.finetune:
            # fine-tuning starts from the ridge fitted without the held-out examples: validation stays honest
            init_head_from_ridge(self.runner.net, head)
            self.tuner = FineTuner(self.runner, y, split.train, self.multilabel, cfg, self.flip)
            self.reference = Reference(valid, score, cpu_state(self.runner.net))

    def _upsampled_runner(self, side: int) -> NetRunner:
        """The untouched network at an input whose long side is `side`."""
        h, w = self.runner.pre.net_hw
        scale = side / max(h, w)
        pre = dataclasses.replace(self.runner.pre, net_hw=(round(h * scale), round(w * scale)))
        return NetRunner(pre, self.device, self.runner.net, self.accel)

    def _fit_upsampled(self) -> None:
        """Frozen features of the cache upsampled towards the backbone's pretraining scale, a ridge on the same
        examples as the frozen-features ridge, offered as another predictor. The side is the largest (from
        upsample_side down in steps of 32, at least upsample_min_scale times the current one) whose passes
        (fit, held-out and test, mirrored where the small size used test-time mirroring) fit in upsample_share
        of the time left, costed by a probe pass at the largest. The untouched network computes them (the
        fine-tune has not started), so their prediction is made before training changes it."""
        cfg, clock, split, y, validation = self.cfg, self.clock, self.split, self.cache.y, self.validation
        fit_idx, x_valid = self.features_fit_idx, self.cache.x[split.valid]
        mirrored = self.features_fitted.single.tta
        sides = [side for side in range(cfg.upsample_side, 0, -32)
                 if side >= cfg.upsample_min_scale * max(self.runner.pre.net_hw)]
        budget = cfg.upsample_share * (clock.left() - cfg.reserve_s)
        chosen_side = None
        if sides and self.test_cache is not None and budget > 0:
            runner = self._upsampled_runner(sides[0])
            probe = fit_idx[:16]
            started = time.monotonic()
            f_probe = runner.infer(self.cache.x[probe], features=True)
            per = (time.monotonic() - started) / len(probe) * COST_MARGIN
            items = len(fit_idx) + (len(x_valid) + len(self.test_cache)) * (1 + mirrored) - len(probe)
            for side in sides:
                expected = per * (side / sides[0]) ** 2 * items
                if expected <= budget - (time.monotonic() - started):
                    chosen_side = side
                    break
        if chosen_side is None:
            log.info("t=%.1fs frozen features upsampled: skipped (%s)", clock.elapsed(),
                     "the network input is large already" if not sides else
                     f"their passes would take more than {cfg.upsample_share:.0%} of the time left")
        else:
            if chosen_side != sides[0]:
                runner = self._upsampled_runner(chosen_side)
                f_probe = runner.infer(self.cache.x[probe], features=True)
            hw = runner.pre.net_hw
            f_fit = np.concatenate([f_probe, runner.infer(self.cache.x[fit_idx[len(probe):]], features=True)])
            head, _ = fit_ridge(f_fit, y[fit_idx], cfg.ridge_alphas, self.multilabel)
            valid = score = None
            final, tta = head, False
            if validation is not None:
                f_valid = runner.infer(x_valid, features=True)
                valid = head.predict(f_valid)
                score = validation.score(valid)
                if mirrored:  # mirrored test-time augmentation helped at the small size
                    valid, score, tta = self._with_mirrored_tta(head, valid, score,
                                                                runner.infer(x_valid, features=True, flip=True))
                final = refit(head, np.concatenate([f_fit, f_valid]), y[np.concatenate([fit_idx, split.valid])])
            clock.measure("upsampled_pass", len(fit_idx) + len(x_valid), time.monotonic() - started)
            candidate = Candidate(
                "features", f"features {hw[0]}x{hw[1]}" + (" +flip" if tta else ""),
                self._features_predictor(final, tta, runner), 1 + tta, valid, score,
                Single("features", tta, final, self.features_fitted.single.state, runner.pre), True, "upsampled_pass")
            offered = self.anytime.offer(candidate)
            self.upsampled_hw = hw
            log.info("t=%.1fs frozen features upsampled to %dx%d: ridge on %d examples (alpha %g, %.1f s, %.1f s "
                     "expected), %s%s", clock.elapsed(), *hw, len(fit_idx), head.alpha, time.monotonic() - started,
                     expected, score or "nothing held out to rank it", "" if offered else
                     f": no gain over {self.anytime.current.score}")
        if validation is None:
            return self._stop("without validation, fine-tuning cannot be checked")
        if not cfg.finetune:
            return self._stop("fine-tuning is off (finetune=false)")
        self.stage = "finetune"

    def _features_predictor(self, head, tta: bool, runner: NetRunner | None = None):
        """The test prediction of a ridge on frozen features of `runner` (default: the learner's)."""
        runner = runner or self.runner
        return lambda: self.test_cache.map(lambda t: runner.predict_ridge(head, t, tta))

    def _check_mirroring(self, head, f_fit, fit_idx, f_valid, valid, score):
        """Does a mirrored image keep its class? A ridge fitted on plain + mirrored train examples must not
        rank the held-out examples clearly worse than one fitted on plain examples only (mirroring a 'b'
        makes a 'd'). Sets self.flip; returns the held-out scores and their Score (with mirrored test-time
        augmentation where that ranks better), whether it does, and a note for the log."""
        cfg, clock, split = self.cfg, self.clock, self.split
        m = min(len(fit_idx), cfg.flip_examples)
        cost = clock.cost("net_pass", m + len(split.valid)) * COST_MARGIN
        self.flip = False
        if not clock.can_afford(2 * cost, cfg.reserve_s):  # at most half of what is left
            return valid, score, False, "mirroring not checked (no time): flip off"
        f_mirror = self._features(fit_idx[:m], flip=True)
        f_valid_mirror = self._features(split.valid, flip=True)
        both = refit(head, np.concatenate([f_fit, f_mirror]), self.cache.y[np.concatenate([fit_idx, fit_idx[:m]])])
        trained_mirrored = both.predict(f_valid)
        mirrored_score = self.validation.score(trained_mirrored)
        self.flip = not self.validation.clearly_worse(trained_mirrored, mirrored_score, valid, score, cfg.flip_floor,
                                                      cfg.flip_loss_tolerance)
        note = f"fitted with mirrored examples too: {mirrored_score} -> flip {'on' if self.flip else 'off'}"
        if not self.flip:
            return valid, score, False, note
        valid, score, tta = self._with_mirrored_tta(head, valid, score, f_valid_mirror)
        return valid, score, tta, note + (", mirrored test-time augmentation" if tta else "")

    def _with_mirrored_tta(self, head, valid: np.ndarray, score, f_valid_mirror: np.ndarray):
        """The held-out scores averaged with the ridge's scores of the mirrored held-out examples, where that
        ranks better than the plain ones: (scores, Score, whether averaged)."""
        averaged = 0.5 * (valid + head.predict(f_valid_mirror))
        averaged_score = self.validation.score(averaged)
        if self.validation.beats(averaged, averaged_score, valid, score):
            return averaged, averaged_score, True
        return valid, score, False

    # ------------------------------------------------------------------ fine-tuning

    def _finetune_slice(self) -> None:
        cfg, clock, tuner, split = self.cfg, self.clock, self.tuner, self.split
        self.anytime.drop_stale()
        passes = 1 + self.flip  # with flip, validation and the test set are scored twice
        n_test = len(self.test_cache) if self.test_cache is not None else 0
        after = clock.cost("net_pass", (n_test + len(split.valid)) * passes) * COST_MARGIN + cfg.reserve_s
        slice_s = min(self.slice_s, clock.left() - after)
        if slice_s < 1.0:
            return self._stop(f"{clock.left():.1f} s left is too little for another slice")
        if self.cache.capped:  # a set larger than the cache: a quarter of the train slots gets new examples
            started = time.monotonic()
            slots = split.train[(self.stream_slot + np.arange(max(1, len(split.train) // 4))) % len(split.train)]
            done = self.cache.refresh(slots, split.valid, until=clock.at(0.3 * slice_s))
            tuner.examples_changed(slots[:done])
            self.stream_slot = (self.stream_slot + done) % len(split.train)
            slice_s = max(0.5, slice_s - (time.monotonic() - started))
        steps = tuner.steps
        started = time.monotonic()
        loss = tuner.train_for(self.cache.x, self.cache.y, slice_s)
        clock.measure("step", (tuner.steps - steps) * tuner.batch, time.monotonic() - started)
        self.slice_s = min(self.slice_s * 2, cfg.max_slice_s)
        with tuner.averaged():  # validated, predicted with and saved: the average of recent weights
            x_valid = self.cache.x[split.valid]
            started = time.monotonic()
            plain = self.runner.predict(x_valid, tta=False)
            clock.measure("net_pass", len(x_valid), time.monotonic() - started)
            valid, score, tta = plain, self.validation.score(plain), False
            if self.flip:
                averaged = 0.5 * (plain + probabilities(self.runner.infer(x_valid, flip=True), self.multilabel))
                averaged_score = self.validation.score(averaged)
                if self.validation.beats(averaged, averaged_score, plain, score):
                    valid, score, tta = averaged, averaged_score, True
            state = cpu_state(self.runner.net)
        ref = self.reference
        if not math.isfinite(loss) or self.validation.clearly_worse(valid, score, ref.valid, ref.score,
                                                                    cfg.rollback_floor):
            tuner.restart_from(ref.state, cfg.plateau_lr_factor)
            log.warning("t=%.1fs %s (train loss %.3f) is below the reference %s by more than the split's noise: "
                        "back to its weights, lr x%.2g", clock.elapsed(), score, loss, ref.score, tuner.lr_scale)
            return self._no_gain(lr_factor=1.0)  # the restart already lowered it
        single = Candidate("finetune", "finetune" + (" +flip" if tta else ""), self._finetune_predictor(tta),
                           1 + tta, valid, score, Single("finetune", tta, state=state), True)
        self.anytime.keep_if_best(single)
        if self.validation.beats(valid, score, ref.valid, ref.score):
            self.reference = Reference(valid, score, state)
        # Training goes on while the fine-tune still improves on itself, even before it overtakes the
        # prediction made from frozen features (Faces: its calibrated loss was still falling when a rule
        # that only counted new predictions stopped it at 124 s of 300).
        improved = self.best_tuned is None or self.validation.beats(valid, score, *self.best_tuned)
        if improved:
            self.best_tuned = (valid, score)
        progressing = self.best_progress is None or self.validation.progresses(valid, score, *self.best_progress)
        if progressing:
            self.best_progress = (valid, score)
        if self.anytime.offer(self.anytime.averaged(single, cfg.max_averaged, self.blend_features)):
            self.no_gain = 0
        elif improved:
            self.no_gain = 0
            log.info("t=%.1fs epoch=%.1f loss=%.3f %s: better than the fine-tune so far, not yet than %s",
                     clock.elapsed(), tuner.epoch, loss, score, self.anytime.current.score)
        else:
            log.info("t=%.1fs epoch=%.1f loss=%.3f %s: no gain over %s%s", clock.elapsed(), tuner.epoch, loss, score,
                     self.anytime.current.score,
                     "; still progressing within the split's noise: patience restarts" if progressing else "")
            self._no_gain(counts=not progressing)
        if not self.policy_decided and not self.done_training:
            saturating = (loss < cfg.augment_fit_ratio * log_loss(self.validation.labels, plain, self.multilabel)
                          or not improved)
            if saturating:
                self._choose_policy(x_valid)

    def _choose_policy(self, x_valid: np.ndarray) -> None:
        """The augmentation policy for the rest of training, once: searched (FAA) or drawn (its control).
        Only while enough of the budget is left for harder training to pay; afterwards the lr and the
        patience start afresh, so the harder training is not read as a plateau or a divergence."""
        cfg, clock, tuner = self.cfg, self.clock, self.tuner
        budget = clock.elapsed() + clock.left()
        if clock.left() < cfg.augment_min_left * budget:
            self.policy_decided = True
            log.info("t=%.1fs augmentation policy: none (training saturated with %.0f%% of the budget left, "
                     "under %.0f%%)", clock.elapsed(), 100 * clock.left() / budget, 100 * cfg.augment_min_left)
            return
        rng = np.random.default_rng(cfg.seed)
        if cfg.augment == "random":
            picks = rng.choice(len(AUTOAUGMENT_CIFAR), cfg.search.sub_policies, replace=False)
            policy = Policy(tuple(AUTOAUGMENT_CIFAR[i] for i in picks))
            note = "drawn without a search"
        elif cfg.augment == "trivialaugment":
            policy, note = trivial_augment(), "TrivialAugment: one op a clip, op and magnitude uniform"
        else:
            seconds = cfg.augment_share * clock.left()
            pass_s = clock.cost("net_pass", len(x_valid)) * COST_MARGIN

            def evaluate(policy: Policy, draw: int) -> np.ndarray:
                with tuner.averaged():
                    logits = self.runner.infer(x_valid, policy=policy,
                                               generator=torch.Generator().manual_seed(cfg.seed + draw))
                return probabilities(logits, self.multilabel)

            end = clock.at(seconds)
            result = search_policy(evaluate, self.validation.labels, self.multilabel, AUTOAUGMENT_CIFAR,
                                   NO_POLICY, seconds, pass_s, rng, cfg.search, deadline=lambda: time.monotonic() > end)
            self.policy_search, policy = result, result.policy
            best = sorted(result.candidates, key=lambda c: c.loss)[:3]
            for c in best:
                log.info("  candidate loss=%.4f nauc=%.4f: %s", c.loss, c.nauc, c.policy)
            note = result.summary()
        self.policy_decided = True
        tuner.policy = policy
        if policy.subs:
            tuner.lr_scale, self.no_gain, self.slice_s = 1.0, 0, cfg.first_slice_s
        shown = policy if len(policy.subs) <= 8 else f"{len(policy.subs)} sub-policies"
        log.info("t=%.1fs augmentation policy (%s): %s", clock.elapsed(), note, shown)

    def _finetune_predictor(self, tta: bool):
        def predict() -> np.ndarray:
            with self.tuner.averaged():
                return self.test_cache.map(lambda t: self.runner.predict(t, tta))
        return predict

    def _no_gain(self, lr_factor: float | None = None, counts: bool = True) -> None:
        """lr lowered; the slice counts towards patience unless training still progresses (then it restarts)."""
        self.no_gain = self.no_gain + 1 if counts else 0
        self.tuner.lr_scale *= self.cfg.plateau_lr_factor if lr_factor is None else lr_factor
        if self.no_gain >= self.cfg.patience:
            self._stop(f"no validation gain in {self.no_gain} slices")

    # ------------------------------------------------------------------ bookkeeping

    def _stop(self, reason: str) -> None:
        self.done_training = True
        self.stage = "done"
        self.stop_reason = reason
        log.info("t=%.1fs stopping: %s; %.1f s of the budget left", self.clock.elapsed(), reason, self.clock.left())

    @staticmethod
    def _pass_kind(candidate: Candidate) -> str:
        return candidate.pass_kind or ("pixel_pass" if candidate.kind == "pixels" else "net_pass")

    def _test_cost(self, candidate: Candidate) -> float:
        per = self.clock.cost(self._pass_kind(candidate), len(self.test_cache) * candidate.passes)
        return per * COST_MARGIN + 0.5

    def _log_prediction(self, candidate: Candidate, seconds: float) -> None:
        trained = (f"epoch={self.tuner.epoch:.1f} loss={self.tuner.last_loss:.3f} "
                   if candidate.kind == "finetune" else "")
        log.info("t=%.1fs prediction %d: %s %s%s (%.1f s)", self.clock.elapsed(), self.predictions, candidate.note,
                 trained, candidate.score if candidate.score else "not validated", seconds)
