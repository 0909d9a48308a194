"""One slice of SGD on the whole network: optimiser, loss, warm-up, clipping and the weight average."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from autoclint.augment.policy import NO_POLICY, Policy
from autoclint.train.accel import autocast, batch_for_memory, cache_fits, free_bytes, grad_scaler, release_memory
from autoclint.train.config import TrainCfg
from autoclint.train.heads import RidgeHead
from autoclint.train.runner import NetRunner

log = logging.getLogger("autoclint")


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
        self.accel = runner.accel
        frames = runner.pre.shape.frames
        # video: the batch counts frames, so a step costs (and holds) about as much memory as an image batch
        per_step = (self.accel.train_batch if frames == 1 else min(
            self.accel.train_batch, cfg.batch_frames * self.accel.train_batch // cfg.batch_size // frames))
        self.cpu_batch = max(1, min(cfg.batch_size, cfg.batch_frames // frames if frames > 1 else cfg.batch_size,
                                    len(train_idx)))  # the batch the lr was set for (2 CPU cores)
        self.batch = max(1, min(per_step, len(train_idx)))
        self.batch_sized = not self.accel.cuda  # on a GPU, sized from the measured memory at the first step
        self.scaler = grad_scaler(self.accel)
        self._x_host: np.ndarray | None = None  # the cache array the device copy was made from
        self._x_device: torch.Tensor | None = None
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

    @property
    def batch_lr_scale(self) -> float:
        """lr grows with the batch beyond the one it was set for (linear scaling, GPU batches only)."""
        return float(np.clip(self.batch / self.cpu_batch, 1.0, self.cfg.gpu.max_lr_scale))

    def _examples(self, x: np.ndarray) -> np.ndarray | torch.Tensor:
        """The train cache as steps read it: a copy in device memory where allowed and it fits (gathered
        there every step instead of crossing PCIe), else the host array."""
        if x is self._x_host:
            return self._x_device if self._x_device is not None else x
        self._x_host, self._x_device = x, None
        if cache_fits(x.nbytes, self.accel, self.cfg.gpu.cache_share):
            self._x_device = torch.from_numpy(x).to(self.accel.device)
            log.info("train cache (%d examples, %.2f GiB) in %s memory", len(x), x.nbytes / 2**30, self.accel.device)
            return self._x_device
        if self.accel.cache_on_device:
            log.info("train cache (%.2f GiB) larger than %.0f %% of the free %s memory: batches come from the host",
                     x.nbytes / 2**30, 100 * self.cfg.gpu.cache_share, self.accel.device)
        return x

    def examples_changed(self, slots: np.ndarray) -> None:
        """Cache rows the host overwrote (streaming a set larger than the cache): copied to the device too."""
        if self._x_device is not None and len(slots) and self._x_device.data_ptr() != self._x_host.ctypes.data:
            index = torch.from_numpy(np.asarray(slots)).to(self.accel.device)
            self._x_device[index] = torch.from_numpy(self._x_host[slots]).to(self.accel.device)

    def _forward_loss(self, x: np.ndarray | torch.Tensor, y: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        """The training loss of examples `idx`, augmented as training augments them (crop, flip, policy)."""
        device = self.accel.device
        xb = x[torch.from_numpy(idx).to(device)] if isinstance(x, torch.Tensor) else x[idx]
        with autocast(self.accel):
            logits = self.net(self.runner.batch(xb, augment=True, random_flip=self.flip, policy=self.policy))
        return self.loss(logits.float(), torch.from_numpy(y[idx]).to(device))

    def _step(self, x: np.ndarray | torch.Tensor, y: np.ndarray, idx: np.ndarray) -> float:
        loss = self._forward_loss(x, y, idx)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # clipping reads the true gradient norm
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.item()

    def _size_batch(self, x: np.ndarray | torch.Tensor, y: np.ndarray) -> None:
        """GPU: the batch from the free memory and one probe step's measured activation memory per example
        (its gradients are dropped, the weights do not move)."""
        device = self.accel.device
        probe = self.train_idx[:min(8, len(self.train_idx))]
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        self._forward_loss(x, y, probe).backward()
        per_example = (torch.cuda.max_memory_allocated(device) - before) / len(probe)
        self.optimizer.zero_grad(set_to_none=True)
        release_memory(device)
        batch = batch_for_memory(self.batch, per_example, free_bytes(device), self.cfg.gpu.memory_share)
        log.info("batch %d (target %d): %.1f MiB of activations per example, %.1f GiB free", batch, self.batch,
                 per_example / 2**20, (free_bytes(device) or 0) / 2**30)
        self.batch = batch

    def train_for(self, x: np.ndarray, y: np.ndarray, seconds: float, max_steps: int | None = None) -> float:
        """SGD steps on x[train_idx] for `seconds` (or `max_steps` steps, if fewer); returns the mean loss
        (nan when no step fitted).

        Out of device memory, the batch halves (lr with it) and training goes on."""
        cfg = self.cfg
        self._hold_average(False)
        self.net.train()
        for m in self.net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
        examples = self._examples(x)
        if not self.batch_sized:
            self._size_batch(examples, y)
            self.batch_sized = True
        end = time.monotonic() + seconds
        losses = []
        while time.monotonic() < end and (max_steps is None or len(losses) < max_steps):
            if len(self.order) < self.batch:
                self.order = np.concatenate([self.order, np.random.default_rng(self.steps).permutation(self.train_idx)])
            idx = self.order[:self.batch]
            warm = min(1.0, (self.steps + 1) / cfg.warmup_steps)
            for group, base in zip(self.optimizer.param_groups, (cfg.lr, cfg.lr * 10)):
                group["lr"] = base * warm * self.lr_scale * self.batch_lr_scale
            try:
                losses.append(self._step(examples, y, idx))
            except torch.OutOfMemoryError:
                if self.batch == 1:
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                release_memory(self.accel.device)
                self.batch = max(1, self.batch // 2)
                log.warning("out of device memory in a training step: batch %d from now on", self.batch)
                continue
            self.order = self.order[self.batch:]
            with torch.no_grad():  # the average warms up: early steps must not be outweighed by the start
                torch._foreach_lerp_(self.average, self.params, max(1 - cfg.ema_decay, 1 / (self.steps + 2)))
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
