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

import numpy as np
import torch
import torch.nn.functional as F

from autoclint.data.adapt import InputShape, adapted_shape, decode_to_cache, scan
from autoclint.nets import create_model, default_backbone
from autoclint.train.config import TrainCfg
from autoclint.train.heads import RidgeHead, pixel_features, safe_nauc

log = logging.getLogger("autoclint")


def split_indices(labels: np.ndarray, cfg: TrainCfg) -> tuple[np.ndarray, np.ndarray]:
    """Single held-out fold, stratified by the first positive class (seeded)."""
    rng = np.random.default_rng(cfg.seed)
    n = len(labels)
    n_valid = min(cfg.max_valid, int(round(cfg.valid_fraction * n)))
    if n_valid < 2 or n - n_valid < 2:
        return np.arange(n), np.arange(n)  # too few to hold out: choose on train (logged by the caller)
    keys = labels.argmax(1)
    order = np.concatenate([rng.permutation(np.flatnonzero(keys == k)) for k in np.unique(keys)])
    # every m-th of the class-sorted order: each class lands in valid in proportion to its size
    valid = order[np.linspace(0, n - 1, n_valid).round().astype(int)]
    train = np.setdiff1d(np.arange(n), valid)
    return rng.permutation(train), valid


class Session:
    def __init__(self, num_classes: int, cfg: TrainCfg = TrainCfg()):
        self.cfg = cfg
        self.num_classes = num_classes
        self.done_training = False
        self.stage = "read"
        self.prediction: np.ndarray | None = None
        self.pending = None  # callable producing the next test prediction, set when validation improved
        self.best_valid = -math.inf
        self.x_test = None
        self.test_s = 0.0  # measured time of one network pass over the test set
        self.epoch = 0.0
        self.slice_s = cfg.first_slice_s
        self.no_gain = 0
        self.last_loss = float("nan")
        self.t0 = time.time()
        torch.manual_seed(cfg.seed)

    # ------------------------------------------------------------------ stages

    def train(self, dataset, remaining_s: float) -> None:
        deadline = time.time() + remaining_s
        if self.stage == "read":
            self._read_train(dataset)
            self._fit_pixels()
            self.stage = "features"
        elif self.stage == "features":
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
            log.info("t=%.1fs stage=%s epoch=%.1f loss=%.3f valid_nauc=%.4f", time.time() - self.t0, self.stage_done,
                     self.epoch, self.last_loss, self.best_valid)
        return self.prediction

    def _read_train(self, dataset) -> None:
        self.scan = scan(dataset)
        self.shape: InputShape = adapted_shape(self.scan.median, self.cfg.max_side, self.cfg.wide_max_side,
                                               self.cfg.max_frames)
        per_example = self.shape.frames * self.shape.height * self.shape.width * self.shape.channels
        cap = max(1, self.cfg.cache_bytes // per_example)
        x, y = decode_to_cache(dataset, self.shape, self.scan.low, self.scan.high, max_examples=cap)
        if len(x) == cap:
            log.warning("train cache capped at %d examples (%.1f GiB, TrainCfg.cache_bytes)", cap,
                        self.cfg.cache_bytes / 2**30)
        self.x, self.y = x, y
        self.multilabel = bool((y.sum(1) > 1).any())
        self.train_idx, self.valid_idx = split_indices(y, self.cfg)
        if len(self.train_idx) == len(y):
            log.warning("only %d examples: no held-out validation; choices are made on train", len(y))
        log.info("t=%.1fs read %d examples, median shape %s -> input %s, %s", time.time() - self.t0, len(x),
                 tuple(vars(self.scan.median).values()), tuple(vars(self.shape).values()),
                 "multi-label" if self.multilabel else "single-label")

    def _offer(self, valid_nauc: float, make_prediction, stage: str) -> bool:
        """Queue a new test prediction when validation improved (or when there is none yet)."""
        if self.prediction is None or valid_nauc > self.best_valid + 1e-4:
            self.best_valid = valid_nauc
            self.pending = make_prediction
            self.stage_done = stage
            return True
        return False

    def _fit_pixels(self) -> None:
        feats = pixel_features(self.x, self.cfg.pixel_side)
        head = RidgeHead(self.cfg.ridge_alphas)
        score = head.fit(feats[self.train_idx], self.y[self.train_idx], feats[self.valid_idx], self.y[self.valid_idx])
        self._offer(score, lambda: head.predict(pixel_features(self.x_test, self.cfg.pixel_side)), "pixels")

    # ------------------------------------------------------------------ network

    def _build_net(self) -> None:
        name = self.cfg.backbone or default_backbone()
        self.net = create_model(name, self.num_classes, self.shape.channels, video=self.shape.frames > 1)
        self.net = self.net.to(memory_format=torch.channels_last) if self.shape.frames == 1 else self.net
        cfg = self.net.net_cfg
        c = self.shape.channels
        mean = cfg.mean if c == 3 else (float(np.mean(cfg.mean)),) * c
        std = cfg.std if c == 3 else (float(np.mean(cfg.std)),) * c
        self.mean = torch.tensor(mean).view(1, c, 1, 1) * 255
        self.std = torch.tensor(std).view(1, c, 1, 1) * 255
        h, w = self.shape.height, self.shape.width
        scale = max(1.0, self.cfg.net_min_long_side / max(h, w), cfg.min_side / min(h, w))
        self.net_hw = (int(round(h * scale)), int(round(w * scale)))
        log.info("backbone %s (%s), network input %dx%d", name, "pretrained" if cfg.pretrained else "random init",
                 *self.net_hw)

    def _batch(self, x_u8: np.ndarray, augment: bool = False) -> torch.Tensor:
        """uint8 (B, T, H, W, C) -> normalised float (B, C, H, W) or (B, T, C, H, W) at the network size."""
        b, t, h, w, c = x_u8.shape
        x = torch.from_numpy(x_u8).permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w).float()
        x = (x - self.mean) / self.std
        if (h, w) != self.net_hw:
            x = F.interpolate(x, size=self.net_hw, mode="bilinear", align_corners=False)
        if augment:  # random translation by up to 1/8 of the side, one shift per example (batched roll)
            pad_h, pad_w = max(1, self.net_hw[0] // 8), max(1, self.net_hw[1] // 8)
            x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="replicate")
            dy = torch.randint(0, 2 * pad_h + 1, (b,)).repeat_interleave(t)
            dx = torch.randint(0, 2 * pad_w + 1, (b,)).repeat_interleave(t)
            rows = (torch.arange(self.net_hw[0]).view(1, -1) + dy.view(-1, 1))
            cols = (torch.arange(self.net_hw[1]).view(1, -1) + dx.view(-1, 1))
            x = x[torch.arange(b * t).view(-1, 1, 1), :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2)
        x = x.contiguous(memory_format=torch.channels_last)
        return x.view(b, t, c, *self.net_hw) if t > 1 else x

    @torch.no_grad()
    def _infer(self, x_u8: np.ndarray, features: bool = False, batch: int = 128) -> np.ndarray:
        self.net.eval()
        out = []
        for i in range(0, len(x_u8), batch):
            xb = self._batch(x_u8[i:i + batch])
            f = self.net.forward_features(xb)
            out.append((f if features else self.net.forward_head(f)).float().numpy())
        return np.concatenate(out)

    def _fit_features(self, deadline: float) -> None:
        self._build_net()
        started = time.time()
        feats = self._infer(self.x[np.concatenate([self.train_idx, self.valid_idx])], features=True)
        per_example = (time.time() - started) / max(1, len(feats))
        self.test_s = per_example * (len(self.x_test) if self.x_test is not None else len(feats))
        n_train = len(self.train_idx)
        head = RidgeHead(self.cfg.ridge_alphas)
        score = head.fit(feats[:n_train], self.y[self.train_idx], feats[n_train:], self.y[self.valid_idx])
        log.info("t=%.1fs frozen features: valid_nauc=%.4f (%.0f img/s)", time.time() - self.t0, score,
                 1 / max(per_example, 1e-9))
        self._offer(score, lambda: head.predict(self._infer(self.x_test, features=True)), "features")
        self._init_head_from_ridge(head)
        self._make_optimizer()

    def _init_head_from_ridge(self, head: RidgeHead) -> None:
        """Start fine-tuning from the ridge solution (scaled to logits), not from a random head."""
        with torch.no_grad():
            w = head.w / head.std[:, None]
            self.net.head.weight.copy_(torch.from_numpy(w.T * 4.0).float())
            self.net.head.bias.copy_(torch.from_numpy(-(head.mean / head.std) @ head.w * 4.0).float())

    def _make_optimizer(self) -> None:
        cfg = self.cfg
        head_params = list(self.net.head.parameters())
        head_ids = {id(p) for p in head_params}
        body = [p for p in self.net.parameters() if id(p) not in head_ids]
        self.optimizer = torch.optim.SGD([{"params": body, "lr": cfg.lr}, {"params": head_params, "lr": cfg.lr * 10}],
                                         lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
        positives = self.y[self.train_idx].sum(0)
        negatives = len(self.train_idx) - positives
        self.pos_weight = torch.from_numpy(np.clip(negatives / np.maximum(positives, 1), 1, 30)).float()
        self.order = np.array([], dtype=int)
        self.steps = 0

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight)
        has_label = y.sum(1) > 0
        if not has_label.any():
            return logits.sum() * 0
        return F.cross_entropy(logits[has_label], y[has_label].argmax(1), label_smoothing=self.cfg.label_smoothing)

    def _finetune_slice(self, deadline: float) -> None:
        cfg = self.cfg
        valid_s = self.test_s * len(self.valid_idx) / max(1, len(self.x_test))
        budget = deadline - time.time() - self.test_s - valid_s - cfg.reserve_s
        slice_s = min(self.slice_s, budget)
        if slice_s < 1.0:
            self.done_training = True
            log.info("t=%.1fs stopping: %.1f s left is too little for another slice", time.time() - self.t0,
                     deadline - time.time())
            return
        self.net.train()
        for m in self.net.modules():  # frozen BN statistics: batch statistics would shift the features the
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):  # ridge-initialised head was fit on
                m.eval()
        end = time.time() + slice_s
        losses = []
        n = len(self.train_idx)
        bs = min(cfg.batch_size, n)
        while time.time() < end:
            if len(self.order) < bs:
                self.order = np.concatenate([self.order, np.random.default_rng(self.steps).permutation(self.train_idx)])
            idx, self.order = self.order[:bs], self.order[bs:]
            warm = min(1.0, (self.steps + 1) / 20)  # short warm-up: the body's BN statistics adapt first
            for group, base in zip(self.optimizer.param_groups, (cfg.lr, cfg.lr * 10)):
                group["lr"] = base * warm
            logits = self.net(self._batch(self.x[idx], augment=True))
            loss = self._loss(logits, torch.from_numpy(self.y[idx]))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
            self.steps += 1
            self.epoch += bs / n
        self.last_loss = float(np.mean(losses)) if losses else float("nan")
        self.slice_s = min(self.slice_s * 2, cfg.max_slice_s)
        score = safe_nauc(self.y[self.valid_idx], self._infer(self.x[self.valid_idx]))
        if self._offer(score, self._predict_net, "finetune"):
            self.no_gain = 0
        else:
            self.no_gain += 1
            log.info("t=%.1fs epoch=%.1f loss=%.3f valid_nauc=%.4f (best %.4f, no gain %d)", time.time() - self.t0,
                     self.epoch, self.last_loss, score, self.best_valid, self.no_gain)
        if self.best_valid >= cfg.perfect_nauc or self.no_gain >= cfg.patience:
            self.done_training = True

    def _predict_net(self) -> np.ndarray:
        started = time.time()
        logits = self._infer(self.x_test)
        self.test_s = time.time() - started
        if self.multilabel:
            return 1 / (1 + np.exp(-logits))
        z = np.exp(logits - logits.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)
