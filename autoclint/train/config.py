"""Every constant that steers training, with the reason for its value."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from autoclint.augment.search import SearchCfg
from autoclint.train.accel import GpuCfg


@dataclass(frozen=True)
class TrainCfg:
    # input adaptation
    max_side: int = 64  # AutoCLINT's cap on the long side: larger inputs make every CPU pass slower
    largest_side: int = 128  # the cap may grow to this for small sets of large images (adapt.side_cap)
    pass_pixels: float = 1.0e7  # ... as long as one pass over the train set stays this many pixels (~5 s, 2 cores)
    wide_factor: int = 2  # the cap is doubled when aspect > 2 (AutoCLINT), so thin objects keep detail
    max_frames: int = 8  # frames sampled per clip (AutoCLINT)
    net_min_long_side: int = 64  # smaller inputs are upsampled for the pretrained net (ImageNet features need it)
    scan_examples: int = 256  # examples whose median shape sets the input size ...
    scan_s: float = 0.25  # ... or fewer, those decoded in this time (256 camera photos take ~5-40 s to decode;
    #   with 1.0 s, 1-megapixel photos gave their first prediction at 3.5 s, with 0.5 s at 2.4 s)
    read_batch_bytes: int = 16 * 2**20  # decoded source values per reading step, so reads stop on time (84
    #   1-megapixel photos came in one 256-example step of 1.7 s when the first read was to take 0.5 s; at
    #   32 MiB a step of 10 took ~0.5 s, at 16 MiB 5 photos take ~0.25 s)
    first_read_s: float = 0.5  # reading before the first prediction (after the scan); the rest is read next,
    #   and its own pixel prediction comes before the frozen features: with 1.0 s the first prediction came at 2.4 s on
    #   Cifar16 and Fashion8 (scan, read, ridge, test read), and a pixel prediction 1.4 s earlier is worth
    #   ~0.01 ALC on Fashion (NAUC 0.93 x the log-time it gains)
    cache_bytes: int = 6 * 2**30  # memory cap for the uint8 train cache; larger sets are streamed
    test_cache_bytes: int = 2 * 2**30  # memory cap for the test cache; a larger test set is decoded per pass
    # validation: a single held-out fold, ranked by NAUC with a noise band and a calibrated loss inside it
    valid_fraction: float = 0.15  # held-out share for choosing between predictors
    max_valid: int = 600  # enough for a stable NAUC; more only slows each check
    bootstrap_draws: int = 40  # resamples for the split's noise on a NAUC difference (~0.1 s at 600 x 100)
    min_gain: float = 1e-4  # the narrowest NAUC tie band: a new prediction only for a real gain
    gain_sds: float = 2.0  # a NAUC gain counts beyond this many noise bands: on a 5-shot split one band let
    #   a fine-tune in by chance (held-out NAUC up, test NAUC 0.607 -> 0.591)
    loss_gain: float = 0.01  # inside the band, the calibrated loss must fall by this share to count as a gain
    noise_sds: float = 3.0  # a drop counts as real (rollback, flip off) beyond this many noise bands
    # first predictions
    pixel_side: int = 16  # raw pixels downsized to 16x16 + ridge: 0.96-1.0 NAUC on grey sets in < 1 s (measured)
    ridge_alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)  # chosen by leave-one-out, relative to the trace
    max_pixel_examples: int = 20000  # pixel ridge: enough for its accuracy, and its float copy stays small
    max_feature_examples: int = 4000  # frozen-feature ridge: more examples barely help, each costs a backbone pass
    features_share: float = 0.3  # frozen features (and their test pass) may spend this share of the time left ...
    max_features_share: float = 0.6  # ... or up to this, without the mirror check, when that cannot pay for the
    #   held-out and test passes (Fashion at T=60: 6000 images, the passes needed 26 s of a 16 s share, and
    #   training stopped at 3.6 s with 56 s left on raw pixels, ALC 0.904)
    feature_levels: int = 4  # backbone stages the head reads, pooled (the last three block stages and the final
    #   maps): a frozen ridge on them ranked test labels better than on the final features alone on every
    #   suite set (Classifier); frozen features and the fine-tuned head read the same
    upsample_side: int = 160  # frozen features once more, the cache upsampled to this long side (or less in
    #   steps of 32 where the time share cannot pay for it): ImageNet features are tuned to ImageNet's object
    #   scale, and a ridge on the small inputs fine-tuning can afford misses it (test NAUC, same split, 64/96
    #   -> 160 px: Pokemon 0.525 -> 0.571, CatDog4 0.707 -> 0.816; Cifar 64 -> 128: 0.907 -> 0.943). A separate
    #   predictor, ranked on held-out data like any other; fine-tuning stays at the small size
    upsample_share: float = 0.1  # ... when its passes fit in this share of the time left: small sets, where
    #   fine-tuning gains least, pay little; on large ones (Cifar: ~40 s at 128 px) it would delay fine-tuning
    upsample_min_scale: float = 1.5  # ... and only when the side grows by at least this factor: inputs of
    #   112-128 px are near the pretraining scale already (test NAUC: Photos 128 -> 160 0.998 -> 0.988, Faces1
    #   112 -> 160 0.987 -> 0.983, Faces 1.0 both), while every gain came from 64-96 px (bench/results/upsampled-prior)
    flip_examples: int = 1000  # mirrored train examples fitted to check that mirroring keeps the classes
    flip_floor: float = 0.01  # ... a NAUC drop below this is never read as "mirroring changes the class"
    flip_loss_tolerance: float = 0.1  # ... nor a calibrated loss this much (relative) worse on a tied NAUC
    # fine-tuning
    finetune: bool = True  # false: the learner stops at frozen features (a stage `autoclint search` may turn off)
    backbone: str = ""  # empty: the best pretrained backbone whose weights are present
    batch_size: int = 64  # images per step; CPU: larger batches were no faster per image at 64 px
    batch_frames: int = 128  # frames per step for video (8-frame clips: 16 per step; 64 clips peaked at 5 GB)
    infer_frames: int = 128  # frames per inference batch: 128 images (as before) or 16 clips of 8 frames
    lr: float = 0.003  # SGD on the whole net, head at 10x; 0.01 with batch-statistics BN wrecked Cifar's features
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1  # regularises the few-epoch fine-tune (airbench uses 0.2)
    warmup_steps: int = 20  # linear lr warm-up: the ridge-initialised head must not be wrecked by the first steps
    grad_clip: float = 2.0  # gradient-norm cap: one bad batch must not wreck the pretrained weights
    ema_decay: float = 0.99  # weights validated and predicted with are an average over ~100 recent steps (less noise)
    plateau_lr_factor: float = 0.5  # lr multiplier after a slice without validation gain (AutoCLINT halves)
    rollback_floor: float = 0.02  # a NAUC drop (beyond the noise) below this never triggers a rollback
    max_averaged: int = 4  # earlier fine-tune predictions that may be averaged with the newest (DeepBlueAI: 5)
    blend_share: float = 0.25  # held-out examples / features-ridge examples from which fine-tune predictions are
    #   blended with the features' (the ridge refitted with them has that much more data than the net: the
    #   usual 15 % split gives 0.18; one held out per class on 5-shot Cifar 0.25, on 2-shot signs 1.0, where
    #   the fine-tune alone ended at test NAUC 0.577 and 0.865 against the features' 0.598 and 0.887)
    first_slice_s: float = 8.0  # the first fine-tune slice; later slices double up to max_slice_s
    max_slice_s: float = 60.0  # predictions keep coming at least this often while validation improves
    patience: int = 4  # slices without validation gain before training stops
    reserve_s: float = 3.0  # kept free at the end of the budget besides the measured test time
    end_margin_s: float = 2.0  # once a prediction exists, nothing starts that would end in the last seconds:
    #   the official scorer looks for end.txt once a second, then scores what is new (0.25 s per prediction
    #   here), and kills an ingestion still alive after T, which TF + torch keep alive ~2 s past end.txt
    #   (measured): a run ending 0.9 s before T=3 was flagged 'exceeded' in CI
    # augmentation policy (autoclint/augment), decided once when fine-tuning saturates
    augment: str = "none"  # "none": crop (+ flip) only; "faa": the light FAA search; "random": sub-policies
    #   drawn from the same pool at the same moment without a search (the search's control arm);
    #   "trivialaugment": one op a clip, op and magnitude uniform (a search option: -0.03 test NAUC on Cifar5,
    #   +0.01 on Signs2 in the ablation). "none" until the benchmark says otherwise
    augment_share: float = 0.1  # the search may spend this share of the time left
    augment_min_left: float = 0.3  # ... and starts only while this share of the budget is left (time to pay)
    augment_fit_ratio: float = 0.5  # saturating: train loss below this share of the held-out loss ...
    #   (or a slice without a gain)
    search: SearchCfg = SearchCfg()  # the light FAA search's own constants (candidates, draws, ranking check)
    seed: int = 0
    device: str = ""  # "cpu", "cuda", "cuda:1"; empty: a CUDA GPU when there is one, else the CPU
    gpu: GpuCfg = GpuCfg()  # what changes on a GPU (mixed precision, cache in GPU memory, batch sizes, input
    #   sizes, warm-up): autoclint/train/accel.py
    min_precision: float = 0.0  # the saved predictor should reach this held-out macro precision: the best-ranked
    #   one that does, else the most precise one, with a warning (0: no constraint; `train --min-precision`)

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTS:  # an unknown name must not quietly run the FAA search
            raise ValueError(f"augment={self.augment}: expected one of {', '.join(AUGMENTS)}")


AUGMENTS = ("none", "random", "trivialaugment", "faa")


def _convert(text: str, kind, key: str):
    """`text` as the field's type (int, float, str, bool, tuple[float, ...])."""
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if typing.get_origin(kind) is tuple:
            inner = typing.get_args(kind)[0]
            return tuple(inner(v) for v in text.replace(",", " ").split())
        return kind(text)
    except ValueError:
        raise ValueError(f"{key}={text}: not a valid {getattr(kind, '__name__', kind)}") from None


def settings_from_file(path: str) -> list[str]:
    """`key=value` settings from a JSON file of {key: value} (nested objects for parts, as the config.json a
    run folder holds); a file that cannot be read or parsed raises ValueError naming it."""
    import json
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of settings, found {type(data).__name__}")

    def flatten(prefix: str, value) -> list[str]:
        if isinstance(value, dict):
            return [s for k, v in value.items() for s in flatten(f"{prefix}{k}.", v)]
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        return [f"{prefix[:-1]}={value}"]
    return [s for k, v in data.items() for s in flatten(f"{k}.", v)]


def with_overrides(cfg, settings: list[str]):
    """`cfg` (TrainCfg, or a nested config such as TrainCfg.search) with `key=value` settings applied;
    nested keys are dotted (`search.min_candidates=4`). An unknown key or a bad value raises ValueError
    naming it and the keys there are."""
    for setting in settings:
        key, sep, value = setting.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{setting!r}: expected key=value")
        head, _, rest = key.partition(".")
        hints = typing.get_type_hints(type(cfg))
        names = [f.name for f in dataclasses.fields(cfg)]
        if head not in names:
            raise ValueError(f"{head}: no such setting; known: {', '.join(names)}")
        current = getattr(cfg, head)
        if rest:
            if not dataclasses.is_dataclass(current):
                raise ValueError(f"{key}: {head} has no parts")
            try:
                new = with_overrides(current, [f"{rest}={value}"])
            except ValueError as e:
                raise ValueError(f"{head}.{e}") from None
        else:
            if dataclasses.is_dataclass(current):
                raise ValueError(f"{key}: set its parts ({head}.name=value)")
            new = _convert(value.strip(), hints[head], key)
        cfg = dataclasses.replace(cfg, **{head: new})
    return cfg
