"""One slice of SGD on the whole network: optimiser, loss, warm-up, clipping and the weight average."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from autoclint.augment.policy import NO_POLICY, Policy
from autoclint.train.config import TrainCfg
from autoclint.train.heads import RidgeHead
from autoclint.train.runner import NetRunner


def cpu_state(net: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


def init_head_from_ridge(net: torch.nn.Module, head: RidgeHead) -> None:
    """Start fine-tuning from the ridge solution (scaled to logits), not from a random head."""
    with torch.no_grad():
        w = head.w / head.std[:, None]
        net.head.weight.copy_(torch.from_numpy(w.T * RidgeHead.LOGIT_SCALE).float())
        net.head.bias.copy_(torch.from_numpy(-(head.mean / head.std) @ head.w * RidgeHead.LOGIT_SCALE).float())


class FineTuner:
    """Trains `runner.net` on the cached examples of `train_idx`; validated through `averaged()`.

    BN statistics stay frozen (batch statistics would shift the features the ridge-initialised head was
    fitted on); the head learns 10x faster than the body; the weights used for validation, prediction and
    saving are an exponential average over recent steps.
    """

    def __init__(self, runner: NetRunner, labels: np.ndarray, train_idx: np.ndarray, multilabel: bool,
                 cfg: TrainCfg, flip: bool):
        self.runner, self.net, self.cfg = runner, runner.net, cfg
        self.train_idx, self.multilabel, self.flip = train_idx, multilabel, flip
        frames = runner.pre.shape.frames
        # video: the batch counts frames, so a step costs (and holds) about as much memory as an image batch
        self.batch = max(1, min(cfg.batch_size, cfg.batch_frames // frames if frames > 1 else cfg.batch_size,
                                len(train_idx)))
        head_params = list(self.net.head.parameters())
        head_ids = {id(p) for p in head_params}
        body = [p for p in self.net.parameters() if id(p) not in head_ids]
        self.optimizer = torch.optim.SGD([{"params": body}, {"params": head_params}], lr=cfg.lr,
                                         momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
        positives = labels[train_idx].sum(0)
        negatives = len(train_idx) - positives
        self.pos_weight = torch.from_numpy(np.clip(negatives / np.maximum(positives, 1), 1, 30)).float().to(
            runner.device)
        self.order = np.array([], dtype=int)
        self.steps = 0
        self.epoch = 0.0
        self.lr_scale = 1.0
        self.last_loss = float("nan")
        self.policy: Policy = NO_POLICY  # augmentation sub-policies on top of crop (and flip), set by the search
        self._reset_average()

    def _reset_average(self) -> None:
        self.params = list(self.net.parameters())
        self.raw = None  # the trained weights while the net holds the average
        self.average = [p.detach().clone() for p in self.params]

    def _hold_average(self, average: bool) -> None:
        with torch.no_grad():
            if average and self.raw is None:
                self.raw = [p.detach().clone() for p in self.params]
                torch._foreach_copy_(self.params, self.average)
            elif not average and self.raw is not None:
                torch._foreach_copy_(self.params, self.raw)
                self.raw = None

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """The net holds the weight average inside the block (to validate, predict or copy it)."""
        self._hold_average(True)
        try:
            yield
        finally:
            self._hold_average(False)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight)
        has_label = y.sum(1) > 0
        if not has_label.any():
            return logits.sum() * 0
        return F.cross_entropy(logits[has_label], y[has_label].argmax(1), label_smoothing=self.cfg.label_smoothing)

    def train_for(self, x: np.ndarray, y: np.ndarray, seconds: float) -> float:
        """SGD steps on x[train_idx] for `seconds`; returns the mean loss (nan when no step fitted)."""
        cfg = self.cfg
        self._hold_average(False)
        self.net.train()
        for m in self.net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
        end = time.monotonic() + seconds
        losses = []
        while time.monotonic() < end:
            if len(self.order) < self.batch:
                self.order = np.concatenate([self.order, np.random.default_rng(self.steps).permutation(self.train_idx)])
            idx, self.order = self.order[:self.batch], self.order[self.batch:]
            warm = min(1.0, (self.steps + 1) / cfg.warmup_steps)
            for group, base in zip(self.optimizer.param_groups, (cfg.lr, cfg.lr * 10)):
                group["lr"] = base * warm * self.lr_scale
            logits = self.net(self.runner.batch(x[idx], augment=True, random_flip=self.flip, policy=self.policy))
            loss = self.loss(logits, torch.from_numpy(y[idx]).to(self.runner.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
            self.optimizer.step()
            with torch.no_grad():  # the average warms up: early steps must not be outweighed by the start
                torch._foreach_lerp_(self.average, self.params, max(1 - cfg.ema_decay, 1 / (self.steps + 2)))
            losses.append(loss.item())
            self.steps += 1
            self.epoch += len(idx) / len(self.train_idx)
        self.last_loss = float(np.mean(losses)) if losses else float("nan")
        return self.last_loss

    def snapshot(self) -> dict:
        """Everything training continues from (weights, their average, optimiser, counters), copied: an
        experiment can restart several arms from one state (bench/augment_ablation.py)."""
        import copy
        self._hold_average(False)
        with torch.no_grad():
            return {"net": copy.deepcopy(self.net.state_dict()), "average": [a.clone() for a in self.average],
                    "optimizer": copy.deepcopy(self.optimizer.state_dict()), "steps": self.steps,
                    "epoch": self.epoch, "lr_scale": self.lr_scale}

    def restore(self, state: dict, seed: int) -> None:
        """Back to a snapshot; `seed` draws the batch order from there."""
        import copy
        self._hold_average(False)
        self.net.load_state_dict(state["net"])
        with torch.no_grad():
            torch._foreach_copy_(self.average, state["average"])
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.steps, self.epoch, self.lr_scale = state["steps"], state["epoch"], state["lr_scale"]
        self.order = np.random.default_rng(seed).permutation(self.train_idx)

    def restart_from(self, state: dict, lr_factor: float) -> None:
        """Back to `state` (the best weights so far), with gentler steps and a fresh average and momentum."""
        self._hold_average(False)
        self.net.load_state_dict(state)
        self._reset_average()
        self.optimizer.state.clear()  # the momentum points where the weights went wrong
        self.lr_scale *= lr_factor
