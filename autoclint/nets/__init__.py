"""Backbones behind one entry: `create_model(name, num_classes, in_chans, video=...)`."""
from autoclint.nets.registry import NetCfg, create_model, default_backbone, list_models  # noqa: F401
from autoclint.nets import efficientnet, resnet, small  # noqa: F401  (registers the families)
