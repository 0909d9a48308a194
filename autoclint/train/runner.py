"""A network with the preprocessing it needs: uint8 cache batches in, features / probabilities out.

Shared by the trainer and by a model loaded back from disk, so both feed the network the same way.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from autoclint.augment.policy import Policy, apply_policy
from autoclint.data.adapt import InputShape
from autoclint.nets import create_model
from autoclint.train.accel import Accel, accel_for, autocast, release_memory
from autoclint.train.config import TrainCfg

log = logging.getLogger("autoclint")


@dataclass(frozen=True)
class Preprocess:
    """Everything between the dataset and the network: saved beside the weights."""
    shape: InputShape  # the cache's (T, H, W, C)
    low: float  # value range the cache was mapped from (adapt.decode_to_cache)
    high: float
    net_hw: tuple[int, int]  # the network input size (the cache is resized on the fly)
    mean: tuple[float, ...]  # per channel, on the [0, 255] scale
    std: tuple[float, ...]
    backbone: str
    num_classes: int
    multilabel: bool
    feature_levels: int = 1  # backbone stages the head reads (Classifier); models saved before it existed
    #   read the final features alone

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        d = dict(d)
        d["shape"] = InputShape(**d["shape"])
        d["net_hw"] = tuple(d["net_hw"])
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**d)


def network_input(shape: InputShape, net_cfg, min_long_side: int) -> tuple[int, int]:
    """Upsample small inputs so the stride-32 backbone keeps a spatial map (and ImageNet-like scale)."""
    h, w = shape.height, shape.width
    scale = max(1.0, min_long_side / max(h, w), net_cfg.min_side / min(h, w))
    return int(round(h * scale)), int(round(w * scale))


def channel_stats(net_cfg, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The backbone's RGB mean/std on the 0-255 scale; other channel counts use the RGB average."""
    mean = net_cfg.mean if channels == 3 else (float(np.mean(net_cfg.mean)),) * channels
    std = net_cfg.std if channels == 3 else (float(np.mean(net_cfg.std)),) * channels
    return tuple(255.0 * m for m in mean), tuple(255.0 * s for s in std)


def probabilities(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    if multilabel:
        return 1 / (1 + np.exp(-np.clip(logits, -50, 50)))
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


class NetRunner:
    def __init__(self, pre: Preprocess, device: torch.device, net: torch.nn.Module | None = None,
                 accel: Accel | None = None):
        """net: the network built for `pre` (the trainer's); None builds the bare architecture (a saved model).

        accel: the device's switches (mixed precision, batch sizes); None: the defaults for `device`.
        Inference batches count frames (a clip of T frames counts T times: memory follows frames).
        """
        self.pre = pre
        self.device = device
        self.accel = accel or accel_for(device, TrainCfg())
        self.infer_batch = max(1, self.accel.infer_frames // max(1, pre.shape.frames))
        video = pre.shape.frames > 1
        if net is None:
            net = create_model(pre.backbone, pre.num_classes, pre.shape.channels, video=video, pretrained=False,
                               levels=pre.feature_levels)
        self.net = net.to(device)
        if not video:
            self.net = self.net.to(memory_format=torch.channels_last)
        c = pre.shape.channels
        self.mean = torch.tensor(pre.mean, device=device).view(1, c, 1, 1)
        self.std = torch.tensor(pre.std, device=device).view(1, c, 1, 1)

    def batch(self, x_u8: np.ndarray | torch.Tensor, augment: bool = False, flip: bool = False,
              random_flip: bool = False, policy: Policy | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (B, T, H, W, C) -> normalised float (B, C, H, W) or (B, T, C, H, W) at the network size.

        x_u8: a host array, or a tensor already on the device (the train cache kept in GPU memory).

        policy: augmentation sub-policies (autoclint.augment), one per clip, at the cache's size before
        anything else (draws from `generator`); augment: random translation by up to 1/8 of the side (one
        shift per clip, batched gather); flip: mirror every example (test-time augmentation); random_flip:
        mirror half the clips.
        """
        b, t, h, w, c = x_u8.shape
        hw = self.pre.net_hw
        if isinstance(x_u8, torch.Tensor):
            x = x_u8.to(self.device)
        else:
            if not x_u8.flags.writeable:  # arrays straight from TensorFlow are read-only; torch wants to own them
                x_u8 = x_u8.copy()
            x = torch.from_numpy(x_u8).to(self.device, non_blocking=True)
        x = x.permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w).float()
        if policy is not None and policy.subs:
            x = apply_policy(x / 255, policy, frames=t, generator=generator) * 255
        x = (x - self.mean) / self.std
        if (h, w) != hw:
            x = F.interpolate(x, size=hw, mode="bilinear", align_corners=False)
        if flip:
            x = x.flip(-1)
        if random_flip:
            mirrored = (torch.rand(b, device=x.device) < 0.5).repeat_interleave(t).view(-1, 1, 1, 1)
            x = torch.where(mirrored, x.flip(-1), x)
        if augment:
            pad_h, pad_w = max(1, hw[0] // 8), max(1, hw[1] // 8)
            x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="replicate")
            dy = torch.randint(0, 2 * pad_h + 1, (b,), device=x.device).repeat_interleave(t)
            dx = torch.randint(0, 2 * pad_w + 1, (b,), device=x.device).repeat_interleave(t)
            rows = torch.arange(hw[0], device=x.device).view(1, -1) + dy.view(-1, 1)
            cols = torch.arange(hw[1], device=x.device).view(1, -1) + dx.view(-1, 1)
            x = x[torch.arange(b * t, device=x.device).view(-1, 1, 1), :, rows.unsqueeze(2), cols.unsqueeze(1)]
            x = x.permute(0, 3, 1, 2)
        x = x.contiguous(memory_format=torch.channels_last)
        return x.view(b, t, c, *hw) if t > 1 else x

    @torch.no_grad()
    def infer(self, x_u8: np.ndarray, features: bool = False, flip: bool = False, policy: Policy | None = None,
              generator: torch.Generator | None = None) -> np.ndarray:
        """The head's input features, or logits, for every example of a uint8 cache (eval mode); with `policy`, of
        the examples augmented by it (the policy search). Out of device memory, the batch halves (for this
        runner's later passes too) and the pass goes on from the batch that failed."""
        self.net.eval()
        out = []
        i = 0
        while i < len(x_u8):
            batch = self.infer_batch
            chunk = x_u8[i:i + batch]
            n = len(chunk)
            if self.device.type == "cuda" and n < batch:
                # cuDNN plans (and may compile) per input shape: a ragged last batch cost ~1 s on an H100
                # (Lite0, measured); zero-padding it keeps one shape
                chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), chunk.dtype)])
            try:
                with autocast(self.accel):
                    x = self.batch(chunk, flip=flip, policy=policy, generator=generator)
                    f = self.net.forward_features(x) if features else self.net(x)
            except torch.OutOfMemoryError:
                if batch == 1:
                    raise
                release_memory(self.device)
                self.infer_batch = max(1, batch // 2)
                log.warning("out of device memory at an inference batch of %d examples: %d from now on", batch,
                            self.infer_batch)
                continue
            out.append(f[:n].float().cpu().numpy())
            i += n
        if not out:
            width = self.net.num_features if features else self.pre.num_classes
            return np.zeros((0, width), np.float32)
        return np.concatenate(out)

    def predict_ridge(self, head, x_u8: np.ndarray, tta: bool) -> np.ndarray:
        """A ridge head's scores on the frozen features; with tta, averaged with those of the mirrored examples."""
        p = head.predict(self.infer(x_u8, features=True))
        if tta:
            p = 0.5 * (p + head.predict(self.infer(x_u8, features=True, flip=True)))
        return p

    def predict(self, x_u8: np.ndarray, tta: bool) -> np.ndarray:
        """Class probabilities; with tta, averaged with those of the mirrored examples."""
        p = probabilities(self.infer(x_u8), self.pre.multilabel)
        if tta:
            p = 0.5 * (p + probabilities(self.infer(x_u8, flip=True), self.pre.multilabel))
        return p
