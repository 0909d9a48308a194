"""Every constant that steers training, with the reason for its value."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainCfg:
    # input adaptation
    max_side: int = 64  # AutoCLINT's cap on the long side: larger inputs make every CPU pass slower
    largest_side: int = 128  # the cap may grow to this for small sets of large images (adapt.side_cap)
    pass_pixels: float = 1.0e7  # ... as long as one pass over the train set stays this many pixels (~5 s, 2 cores)
    wide_factor: int = 2  # the cap is doubled when aspect > 2 (AutoCLINT), so thin objects keep detail
    max_frames: int = 8  # frames sampled per clip (AutoCLINT)
    net_min_long_side: int = 64  # smaller inputs are upsampled for the pretrained net (ImageNet features need it)
    first_read_s: float = 2.0  # reading before the first prediction; the suite's sets take <= 0.8 s (measured)
    cache_bytes: int = 6 * 2**30  # memory cap for the uint8 train cache; larger sets are cut (logged)
    # validation
    valid_fraction: float = 0.15  # held-out share for choosing between predictors (single fold)
    max_valid: int = 600  # enough for a stable NAUC; more only slows each check
    # first predictions
    pixel_side: int = 16  # raw pixels downsized to 16x16 + ridge: 0.96-1.0 NAUC on grey sets in < 1 s (measured)
    ridge_alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)  # chosen on validation, relative to the trace
    min_gain: float = 1e-4  # a new prediction only for a real validation gain (each one costs a test pass)
    flip_tolerance: float = 0.02  # mirrored valid examples may score this much lower and still count as same-class
    max_feature_examples: int = 4000  # frozen-feature ridge: more examples barely help, each costs a backbone pass
    # fine-tuning
    backbone: str = ""  # empty: the best pretrained backbone whose weights are present
    batch_size: int = 64  # CPU: larger batches were no faster per image at 64 px
    lr: float = 0.003  # SGD on the whole net, head at 10x; 0.01 with batch-statistics BN wrecked Cifar's features
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1  # regularises the few-epoch fine-tune (airbench uses 0.2)
    warmup_steps: int = 20  # linear lr warm-up: the ridge-initialised head must not be wrecked by the first steps
    grad_clip: float = 2.0  # gradient-norm cap: one bad batch must not wreck the pretrained weights
    ema_decay: float = 0.99  # weights validated and predicted with are an average over ~100 recent steps (less noise)
    plateau_lr_factor: float = 0.5  # lr multiplier after a slice without validation gain (AutoCLINT halves)
    rollback_drop: float = 0.05  # validation this far below the best fine-tuned weights: reload them, halve lr
    max_averaged: int = 4  # earlier fine-tune predictions that may be averaged with the newest (DeepBlueAI: 5)
    first_slice_s: float = 8.0  # the first fine-tune slice; later slices double up to max_slice_s
    max_slice_s: float = 60.0  # predictions keep coming at least this often while validation improves
    patience: int = 4  # slices without validation gain before training stops
    perfect_nauc: float = 0.9999  # validation at this level cannot improve: stop
    reserve_s: float = 3.0  # kept free at the end of the budget besides the measured test time
    seed: int = 0
