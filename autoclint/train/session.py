"""The clock-driven learner: cheap predictions first, better ones as validation improves.

Stages, one per train() call until fine-tuning: (1) decode the train set once into a uint8 cache and fit
a ridge head on downsized raw pixels (first prediction within seconds); (2) frozen pretrained features
+ ridge head; (3) fine-tune the whole network in time slices that double in length. A new prediction
is made only when held-out NAUC beats the best so far, so the curve never steps down.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from autoclint.data.adapt import InputShape, adapted_shape, decode_to_cache, iterate_cache, scan, side_cap
from autoclint.nets import default_backbone
from autoclint.nets.registry import create_model
from autoclint.train.config import TrainCfg
from autoclint.train.heads import RidgeHead, pixel_features, safe_nauc
from autoclint.train.runner import NetRunner, Preprocess, channel_stats, network_input, probabilities

log = logging.getLogger("autoclint")


def split_indices(labels: np.ndarray, cfg: TrainCfg) -> tuple[np.ndarray, np.ndarray]:
    """Single held-out fold, stratified by the first positive class (seeded).

    Each class gives its share but always keeps one example for training (a one-shot class gives none);
    with fewer than two held-out examples, choices are made on the train set itself.
    """
    rng = np.random.default_rng(cfg.seed)
    n = len(labels)
    fraction = min(cfg.valid_fraction, cfg.max_valid / max(n, 1))
    keys = np.where(labels.sum(1) > 0, labels.argmax(1), -1)  # unlabelled rows form their own group
    valid = []
    for k in np.unique(keys):
        members = rng.permutation(np.flatnonzero(keys == k))
        valid.append(members[:min(len(members) - 1, int(round(fraction * len(members))))])
    valid = np.sort(np.concatenate(valid))
    if len(valid) < 2 or n - len(valid) < 2:
        return rng.permutation(n), np.arange(n)
    return rng.permutation(np.setdiff1d(np.arange(n), valid)), valid


KINDS = ("pixels", "features", "finetune")  # the predictors, from the weakest learner to the strongest


@dataclass
class Best:
    """The single predictor behind the best held-out score: what a saved model reproduces."""
    kind: str  # "pixels" (ridge on raw pixels), "features" (ridge on frozen features) or "finetune"
    valid_nauc: float
    ridge: RidgeHead | None = None
    state: dict | None = None  # CPU copy of the network weights ("features": the untouched pretrained net)
    tta: bool = False


@dataclass
class Snapshot:
    """An offered fine-tune prediction, kept for averaging with later ones."""
    valid: np.ndarray
    test: np.ndarray | None = None


def cpu_state(net: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


class Session:
    def __init__(self, num_classes: int, cfg: TrainCfg = TrainCfg(), train_size: int | None = None):
        """train_size: the train set's example count (metadata), to size the input; None: AutoCLINT's cap."""
        self.cfg = cfg
        self.num_classes = num_classes
        self.train_size = train_size
        self.done_training = False
        self.stage = "read"
        self.prediction: np.ndarray | None = None
        self.pending = None  # callable producing the next test prediction, set when validation improved
        self.pending_note = ""
        self.best_valid = -math.inf  # of the offered predictions (ensembles included)
        self.offered_kind = "pixels"  # the kind of predictor behind the current prediction
        self.best: Best | None = None  # the best single predictor
        self.snapshots: list[Snapshot] = []
        self.runner: NetRunner | None = None
        self.flip = False  # mirroring keeps the classes (checked on frozen features): augment and TTA with it
        self.x_test = None
        self.pass_s = 0.0  # measured seconds per example of one inference pass (features or logits)
        self.epoch = 0.0
        self.slice_s = cfg.first_slice_s
        self.lr_scale = 1.0
        self.no_gain = 0
        self.last_loss = float("nan")
        self.t0 = time.time()
        # The same code runs on a lent GPU unchanged: only the network and its batches move there.
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(cfg.seed)

    # ------------------------------------------------------------------ stages

    def train(self, dataset, remaining_s: float) -> None:
        deadline = time.time() + remaining_s
        if self.stage == "read":
            self._read_train(dataset, deadline)
            self._fit_pixels()
            self.stage = "features"
        elif self.stage == "features":
            self._finish_read(deadline)
            self._fit_features(deadline)
            self.stage = "finetune"
        else:
            self._finetune_slice(deadline)

    def test(self, dataset, remaining_s: float) -> np.ndarray:
        if self.x_test is None:
            self.x_test, _ = decode_to_cache(dataset, self.shape, self.scan.low, self.scan.high)
        if self.pending is not None:
            self.prediction = self.pending()
            self.pending = None
            log.info("t=%.1fs %s epoch=%.1f loss=%.3f valid_nauc=%.4f", time.time() - self.t0, self.pending_note,
                     self.epoch, self.last_loss, self.best_valid)
        return self.prediction

    def _read_train(self, dataset, deadline: float) -> None:
        self.scan = scan(dataset)
        cfg = self.cfg
        frames = min(self.scan.median.frames, cfg.max_frames)
        cap = side_cap(self.scan.median, self.train_size or 10**9, frames, cfg.max_side, cfg.largest_side,
                       cfg.pass_pixels)
        self.shape: InputShape = adapted_shape(self.scan.median, cap, cap * cfg.wide_factor, cfg.max_frames)
        per_example = self.shape.frames * self.shape.height * self.shape.width * self.shape.channels
        cap = max(1, self.cfg.cache_bytes // per_example)
        self.cache_cap, self.stream = cap, None
        self.reader = iterate_cache(dataset.take(cap), self.shape, self.scan.low, self.scan.high)
        self.read_source = dataset
        # The first prediction must not wait for a large set: read for a few seconds (half the budget at most,
        # the test set must still be read and predicted), the rest before the frozen features.
        x, y, done = self._read_more(time.time() + min(cfg.first_read_s, max(0.0, deadline - time.time()) * 0.5))
        if not x:
            raise ValueError("the train set is empty")
        x, y = np.concatenate(x), np.concatenate(y)
        if not done:
            log.info("first predictions from the first %d examples; the rest is read before the frozen features",
                     len(x))
        self.x, self.y = x, y
        self.multilabel = bool((y.sum(1) > 1).any())
        self.train_idx, self.valid_idx = split_indices(y, self.cfg)
        if len(self.train_idx) == len(y):
            log.warning("only %d examples: no held-out validation; choices are made on train", len(y))
        log.info("t=%.1fs read %d examples, median shape %s -> input %s, %s", time.time() - self.t0, len(x),
                 tuple(vars(self.scan.median).values()), tuple(vars(self.shape).values()),
                 "multi-label" if self.multilabel else "single-label")

    def _read_more(self, read_by: float) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
        """Batches from the train reader until read_by (time.time() scale); True when the reader is exhausted."""
        xs, ys = [], []
        for x, y in self.reader:
            xs.append(x)
            ys.append(y)
            if time.time() > read_by:
                return xs, ys, False
        self.reader = None
        return xs, ys, True

    def _finish_read(self, deadline: float) -> None:
        """The rest of the train set, all of it for training (validation stays within the first part read)."""
        if self.reader is not None:
            xs, ys, done = self._read_more(time.time() + max(0.0, deadline - time.time()) * 0.5)
            if xs:
                n = len(self.x)
                self.x, self.y = np.concatenate([self.x] + xs), np.concatenate([self.y] + ys)
                added = np.random.default_rng(self.cfg.seed).permutation(np.arange(n, len(self.x)))
                self.train_idx = np.concatenate([self.train_idx, added])
            if not done:
                log.warning("budget too small to read the whole train set: training on its first %d examples",
                            len(self.x))
            self.reader = None
            log.info("t=%.1fs read %d train examples in all", time.time() - self.t0, len(self.x))
        if len(self.x) == self.cache_cap:
            log.warning("train cache capped at %d examples (%.1f GiB, TrainCfg.cache_bytes): the rest is streamed, "
                        "a quarter of the cached train examples swapped for new ones before each fine-tune slice",
                        self.cache_cap, self.cfg.cache_bytes / 2**30)
            self.stream_position, self.stream_slot = self.cache_cap, 0
            self.stream = iterate_cache(self.read_source.skip(self.cache_cap), self.shape, self.scan.low,
                                        self.scan.high)

    def _beats(self, valid_nauc: float, kind: str, best_nauc: float, best_kind: str) -> bool:
        """A real gain, or a tie on a saturated validation split won by the stronger kind of predictor.

        Small splits reach NAUC 1.0 with raw pixels already (Faces: 40 held-out images) and cannot rank what
        comes later; pretrained features generalise better (Faces test NAUC 0.977 -> 0.992, measured).
        """
        if valid_nauc > best_nauc + self.cfg.min_gain:
            return True
        # Only features over pixels: a fine-tune a slice old, chosen on a saturated split, scored lower on test
        # (Faces 0.979 vs 0.992 from features, Kth 0.985 vs 1.0; measured)
        return (best_nauc >= self.cfg.perfect_nauc and valid_nauc >= best_nauc - self.cfg.min_gain
                and kind == "features" and best_kind == "pixels")

    def _offer(self, valid_nauc: float, make_prediction, note: str, kind: str) -> bool:
        """Queue a new test prediction when validation improved (or when there is none yet)."""
        if self.prediction is None or self._beats(valid_nauc, kind, self.best_valid, self.offered_kind):
            self.best_valid = max(valid_nauc, self.best_valid)
            self.offered_kind = kind
            self.pending = make_prediction
            self.pending_note = note
            return True
        return False

    def _keep_if_best(self, best: Best) -> None:
        if self.best is None or self._beats(best.valid_nauc, best.kind, self.best.valid_nauc, self.best.kind):
            self.best = best

    def _fit_pixels(self) -> None:
        feats = pixel_features(self.x, self.cfg.pixel_side)
        head = RidgeHead(self.cfg.ridge_alphas)
        score = head.fit(feats[self.train_idx], self.y[self.train_idx], feats[self.valid_idx], self.y[self.valid_idx])
        self._keep_if_best(Best("pixels", score, ridge=head))
        self._offer(score, lambda: head.predict(pixel_features(self.x_test, self.cfg.pixel_side)), "pixels", "pixels")

    # ------------------------------------------------------------------ network

    def _build_net(self) -> None:
        name = self.cfg.backbone or default_backbone()
        net = create_model(name, self.num_classes, self.shape.channels, video=self.shape.frames > 1)
        mean, std = channel_stats(net.net_cfg, self.shape.channels)
        pre = Preprocess(self.shape, self.scan.low, self.scan.high,
                         network_input(self.shape, net.net_cfg, self.cfg.net_min_long_side), mean, std, name,
                         self.num_classes, self.multilabel)
        self.runner = NetRunner(pre, self.device, net)
        self.net = self.runner.net
        log.info("backbone %s (%s), network input %dx%d on %s", name,
                 "pretrained" if net.net_cfg.pretrained else "random init", *pre.net_hw, self.device)

    def _fit_features(self, deadline: float) -> None:
        self._build_net()
        started = time.time()
        fit_idx = self.train_idx[:self.cfg.max_feature_examples]  # train_idx is shuffled: a random subset
        feats = self.runner.infer(self.x[np.concatenate([fit_idx, self.valid_idx])], features=True)
        self.pass_s = (time.time() - started) / max(1, len(feats))
        n_train = len(fit_idx)
        head = RidgeHead(self.cfg.ridge_alphas)
        y_valid = self.y[self.valid_idx]
        score = head.fit(feats[:n_train], self.y[fit_idx], feats[n_train:], y_valid)
        # Do mirrored examples keep their class? Score the ridge fitted on plain features on mirrored ones.
        mirrored = self.runner.infer(self.x[self.valid_idx], features=True, flip=True)
        flip_score = safe_nauc(y_valid, head.predict(mirrored))
        self.flip = flip_score >= score - self.cfg.flip_tolerance
        tta_score = safe_nauc(y_valid, head.predict(feats[n_train:]) + head.predict(mirrored))
        tta = self.flip and tta_score > score
        log.info("t=%.1fs frozen features: valid_nauc=%.4f, mirrored %.4f, averaged %.4f -> flip %s (%.0f img/s)",
                 time.time() - self.t0, score, flip_score, tta_score, "on" if self.flip else "off",
                 1 / max(self.pass_s, 1e-9))
        best_score = max(score, tta_score) if tta else score
        self._keep_if_best(Best("features", best_score, ridge=head, state=cpu_state(self.net), tta=tta))

        self._offer(best_score, lambda: self.runner.predict_ridge(head, self.x_test, tta),
                    "features" + (" +flip" if tta else ""), "features")
        self._init_head_from_ridge(head)
        self.start_state = cpu_state(self.net)  # where a diverged fine-tune restarts when no better weights exist
        self._make_optimizer()
        self._reset_average()

    def _init_head_from_ridge(self, head: RidgeHead) -> None:
        """Start fine-tuning from the ridge solution (scaled to logits), not from a random head."""
        with torch.no_grad():
            w = head.w / head.std[:, None]
            self.net.head.weight.copy_(torch.from_numpy(w.T * RidgeHead.LOGIT_SCALE).float())
            self.net.head.bias.copy_(torch.from_numpy(-(head.mean / head.std) @ head.w * RidgeHead.LOGIT_SCALE).float())

    def _make_optimizer(self) -> None:
        cfg = self.cfg
        head_params = list(self.net.head.parameters())
        head_ids = {id(p) for p in head_params}
        body = [p for p in self.net.parameters() if id(p) not in head_ids]
        self.optimizer = torch.optim.SGD([{"params": body, "lr": cfg.lr}, {"params": head_params, "lr": cfg.lr * 10}],
                                         lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
        positives = self.y[self.train_idx].sum(0)
        negatives = len(self.train_idx) - positives
        self.pos_weight = torch.from_numpy(np.clip(negatives / np.maximum(positives, 1), 1, 30)).float().to(self.device)
        self.order = np.array([], dtype=int)
        self.steps = 0

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight)
        has_label = y.sum(1) > 0
        if not has_label.any():
            return logits.sum() * 0
        return F.cross_entropy(logits[has_label], y[has_label].argmax(1), label_smoothing=self.cfg.label_smoothing)

    def _stream_chunk(self) -> None:
        """Overwrite the next quarter of the train slots with the next examples of a set larger than the cache.

        At the end of the dataset reading starts over; held-out examples (all in the cached prefix) are skipped.
        """
        want, got, restarts = max(1, len(self.train_idx) // 4), 0, 0
        while got < want and restarts < 2:
            batch = next(self.stream, None)
            if batch is None:
                self.stream = iterate_cache(self.read_source, self.shape, self.scan.low, self.scan.high)
                self.stream_position, restarts = 0, restarts + 1
                continue
            x, y = batch
            keep = ~np.isin(self.stream_position + np.arange(len(x)), self.valid_idx)
            self.stream_position += len(x)
            x, y = x[keep][:want - got], y[keep][:want - got]
            slots = self.train_idx[(self.stream_slot + np.arange(len(x))) % len(self.train_idx)]
            self.x[slots], self.y[slots] = x, y
            self.stream_slot = (self.stream_slot + len(x)) % len(self.train_idx)
            got += len(x)

    def _reset_average(self) -> None:
        """Start the weight average (EMA) from the weights the net holds now."""
        self.params = [p for p in self.net.parameters()]
        self.raw = None  # the trained weights while the net holds the average
        self.average = [p.detach().clone() for p in self.params]

    def _hold_average(self, average: bool) -> None:
        """Swap the weight average in (to validate and predict with) or the trained weights back."""
        with torch.no_grad():
            if average and self.raw is None:
                self.raw = [p.detach().clone() for p in self.params]
                torch._foreach_copy_(self.params, self.average)
            elif not average and self.raw is not None:
                torch._foreach_copy_(self.params, self.raw)
                self.raw = None

    def _train_for(self, seconds: float) -> None:
        cfg = self.cfg
        self._hold_average(False)
        self.net.train()
        for m in self.net.modules():  # frozen BN statistics: batch statistics would shift the features the
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):  # ridge-initialised head was fit on
                m.eval()
        end = time.time() + seconds
        losses = []
        n = len(self.train_idx)
        bs = min(cfg.batch_size, n)
        while time.time() < end:
            if len(self.order) < bs:
                self.order = np.concatenate([self.order, np.random.default_rng(self.steps).permutation(self.train_idx)])
            idx, self.order = self.order[:bs], self.order[bs:]
            warm = min(1.0, (self.steps + 1) / cfg.warmup_steps)
            for group, base in zip(self.optimizer.param_groups, (cfg.lr, cfg.lr * 10)):
                group["lr"] = base * warm * self.lr_scale
            logits = self.net(self.runner.batch(self.x[idx], augment=True, random_flip=self.flip))
            loss = self._loss(logits, torch.from_numpy(self.y[idx]).to(self.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
            self.optimizer.step()
            with torch.no_grad():  # the average warms up: early steps must not be outweighed by the start
                torch._foreach_lerp_(self.average, self.params, max(1 - cfg.ema_decay, 1 / (self.steps + 2)))
            losses.append(loss.item())
            self.steps += 1
            self.epoch += bs / n
        self.last_loss = float(np.mean(losses)) if losses else float("nan")

    def _finetune_slice(self, deadline: float) -> None:
        cfg = self.cfg
        n_test = len(self.x_test) if self.x_test is not None else 0
        passes = 2 if self.flip else 1  # with flip, validation and test are scored twice
        budget = deadline - time.time() - self.pass_s * passes * (n_test + len(self.valid_idx)) - cfg.reserve_s
        slice_s = min(self.slice_s, budget)
        if slice_s < 1.0:
            self.done_training = True
            log.info("t=%.1fs stopping: %.1f s left is too little for another slice", time.time() - self.t0,
                     deadline - time.time())
            return
        if self.stream is not None:
            started = time.time()
            self._stream_chunk()
            slice_s = max(0.5, slice_s - (time.time() - started))
        self._train_for(slice_s)
        self._hold_average(True)  # validated, predicted with and saved: the average of recent weights
        self.slice_s = min(self.slice_s * 2, cfg.max_slice_s)
        x_valid, y_valid = self.x[self.valid_idx], self.y[self.valid_idx]
        plain = self.runner.predict(x_valid, tta=False)
        score, tta, current = safe_nauc(y_valid, plain), False, plain
        if self.flip:
            averaged = 0.5 * (plain + probabilities(self.runner.infer(x_valid, flip=True), self.multilabel))
            tta_score = safe_nauc(y_valid, averaged)
            if tta_score > score:
                score, tta, current = tta_score, True, averaged
        if score < self.best_valid - cfg.rollback_drop:  # diverged: back to the best weights, gentler steps
            finetuned = self.best.kind == "finetune"
            self.net.load_state_dict(self.best.state if finetuned else self.start_state)
            self._reset_average()
            self.optimizer.state.clear()  # the momentum points where the weights went wrong
            self.lr_scale *= 0.5
            log.warning("t=%.1fs valid_nauc fell to %.4f: back to the %s weights, lr x%.2g", time.time() - self.t0,
                        score, "best fine-tuned" if finetuned else "initial", self.lr_scale)
            self.no_gain += 1
            self.done_training = self.no_gain >= cfg.patience
            return
        self._keep_if_best(Best("finetune", score, state=cpu_state(self.net), tta=tta))
        # Average with the latest offered fine-tune predictions when validation says it helps (DeepBlueAI).
        chosen, chosen_score = 0, score
        for k in range(1, min(cfg.max_averaged, len(self.snapshots)) + 1):
            mixed = np.mean([current] + [s.valid for s in self.snapshots[-k:]], axis=0)
            mixed_score = safe_nauc(y_valid, mixed)
            if mixed_score > chosen_score:
                chosen, chosen_score = k, mixed_score

        def predict():
            started = time.time()
            snapshot = Snapshot(current, self.runner.predict(self.x_test, tta=tta))
            self.pass_s = (time.time() - started) / max(1, len(self.x_test) * (2 if tta else 1))
            earlier = [s.test for s in self.snapshots[-chosen:]] if chosen else []
            self.snapshots.append(snapshot)
            return np.mean([snapshot.test] + earlier, axis=0)
        note = "finetune" + (" +flip" if tta else "") + (f" +{chosen} earlier" if chosen else "")
        if self._offer(chosen_score, predict, note, "finetune"):
            self.no_gain = 0
        else:
            self.no_gain += 1
            self.lr_scale *= cfg.plateau_lr_factor
            log.info("t=%.1fs epoch=%.1f loss=%.3f valid_nauc=%.4f (best %.4f, no gain %d)", time.time() - self.t0,
                     self.epoch, self.last_loss, chosen_score, self.best_valid, self.no_gain)
        if self.best_valid >= cfg.perfect_nauc or self.no_gain >= cfg.patience:
            self.done_training = True
