"""Save the best trained predictor with the preprocessing it needs, and load it back to predict.

A saved model is a folder:
    model.json   format version, predictor kind, flip TTA, cache shape and value range, class count, task
                 type, held-out NAUC, the network's preprocessing (backbone, input size, mean/std) and
                 the augmentation policy a fine-tuned network was trained with (for the record)
    weights.pt   the network's state dict (kinds "features" and "finetune")
    ridge.npz    the ridge head (kinds "pixels" and "features")
model.json also holds the calibration fitted on held-out data (train/calibrate.py): predictions are
probabilities, and multi-label decisions use per-class thresholds. It holds the best single predictor by held-out NAUC; averaged predictions are not stored.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from autoclint.data.adapt import InputShape, iterate_cache
from autoclint.errors import AutoclintError
from autoclint.files import check_model_destination, replace_folder
from autoclint.train.heads import RidgeHead, pixel_features
from autoclint.train.runner import NetRunner, Preprocess
from autoclint.train.anytime import KINDS
from autoclint.train.calibrate import Calibration

FORMAT = 1


@dataclass
class Exported:
    """What a saved model holds: the learner's best single predictor and the preprocessing it needs."""
    kind: str  # one of anytime.KINDS
    tta: bool
    valid_nauc: float  # nan when nothing was held out
    shape: InputShape  # of the uint8 cache
    low: float  # value range the cache was mapped from
    high: float
    num_classes: int
    multilabel: bool
    pixel_side: int
    ridge: RidgeHead | None  # kinds "pixels" and "features"
    state: dict | None  # network weights, kinds "features" and "finetune"
    network: Preprocess | None  # None for "pixels"
    policy: list = field(default_factory=list)  # augmentation the fine-tune was trained with (Policy.to_list)
    calibration: Calibration | None = None  # scores -> probabilities (None: defaults, as a model saved before it)


def save_trained(exported: Exported | None, folder: str, class_names: list[str] | None = None,
                 overwrite: bool = False, extra_files: dict[str, bytes] | None = None) -> str:
    """Write a learner's export to `folder` (replaced only once complete). Returns the folder.

    A folder holding anything but an earlier run folder is refused unless overwrite: it is the user's.
    extra_files: name -> content written beside the model (the run's log, metrics, config, curve).
    """
    check_model_destination(folder, overwrite)
    if exported is None:
        raise AutoclintError(f"{folder}: nothing to save yet (no predictor was fitted).")
    valid_nauc = None if math.isnan(exported.valid_nauc) else exported.valid_nauc
    info = {"format": FORMAT, "kind": exported.kind, "tta": exported.tta, "valid_nauc": valid_nauc,
            "shape": vars(exported.shape), "low": exported.low, "high": exported.high,
            "num_classes": exported.num_classes, "multilabel": exported.multilabel,
            "pixel_side": exported.pixel_side, "class_names": class_names,
            "network": exported.network.to_dict() if exported.network is not None else None,
            "augmentation_policy": exported.policy,
            "calibration": (exported.calibration or Calibration(exported.multilabel)).to_dict()}
    folder = os.path.abspath(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".saving-", dir=parent)
    try:
        with open(os.path.join(tmp, "model.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1)
        if exported.state is not None:
            torch.save(exported.state, os.path.join(tmp, "weights.pt"))
        if exported.ridge is not None:
            r = exported.ridge
            np.savez(os.path.join(tmp, "ridge.npz"), mean=r.mean, std=r.std, w=r.w, alpha=r.alpha)
        for name, content in (extra_files or {}).items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(content)
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@dataclass
class TrainedModel:
    kind: str
    tta: bool
    shape: InputShape
    low: float
    high: float
    num_classes: int
    multilabel: bool
    pixel_side: int
    valid_nauc: float | None
    ridge: RidgeHead | None
    runner: NetRunner | None
    class_names: list[str] | None = None
    calibration: Calibration | None = None

    def __post_init__(self):
        if self.calibration is None:
            self.calibration = Calibration(self.multilabel)

    def scores_cache(self, x_u8: np.ndarray) -> np.ndarray:
        """(N, num_classes) the predictor's own scores in [0, 1] (what the learner predicted with: ranks per
        class, not probabilities) for a uint8 cache made at self.shape."""
        if self.kind == "pixels":
            return self.ridge.predict(pixel_features(x_u8, self.pixel_side))
        if self.kind == "features":
            return self.runner.predict_ridge(self.ridge, x_u8, self.tta)
        return self.runner.predict(x_u8, tta=self.tta)

    def scores_batches(self, dataset, batch: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(uint8 examples at self.shape, the predictor's own scores) per `batch` examples of a tf.data dataset
        of (tensor (T, H, W, C), label)."""
        for x, _ in iterate_cache(dataset, self.shape, self.low, self.high, batch):
            yield x, self.scores_cache(x)

    def scores_dataset(self, dataset, batch: int = 256) -> np.ndarray:
        """The predictor's own scores for every example of a tf.data dataset of (tensor (T, H, W, C), label),
        decoded `batch` examples at a time."""
        scores = [s for _, s in self.scores_batches(dataset, batch)]
        if not scores:
            raise AutoclintError("the dataset to predict on holds no example.")
        return np.concatenate(scores)

    def predict_dataset(self, dataset, batch: int = 256) -> np.ndarray:
        """Calibrated probabilities for every example (rows sum to 1 unless multi-label)."""
        return self.calibration.probabilities(self.scores_dataset(dataset, batch))


def read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise AutoclintError(f"{path}: missing; is {os.path.dirname(path)} a model saved by autoclint?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AutoclintError(f"{path}: not valid JSON ({e}).") from None


def load_trained(folder: str, device: str | None = None) -> TrainedModel:
    """A saved model, ready to predict; every problem is one AutoclintError naming the file."""
    if not os.path.isdir(folder):
        raise AutoclintError(f"{folder}: no such model folder.")
    path = os.path.join(folder, "model.json")
    info = read_json(path)
    if info.get("format") != FORMAT or info.get("kind") not in KINDS:
        raise AutoclintError(f"{path}: not a model this version reads (format {info.get('format')!r}, "
                             f"kind {info.get('kind')!r}; expected format {FORMAT}).")
    try:
        shape = InputShape(**info["shape"])
        runner = ridge = None
        if info["kind"] != "pixels":
            pre = Preprocess.from_dict(info["network"])
            runner = NetRunner(pre, torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
        if info["kind"] != "finetune":
            ridge = _load_ridge(os.path.join(folder, "ridge.npz"))
        model = TrainedModel(info["kind"], bool(info["tta"]), shape, float(info["low"]), float(info["high"]),
                             int(info["num_classes"]), bool(info["multilabel"]), int(info["pixel_side"]),
                             None if info["valid_nauc"] is None else float(info["valid_nauc"]), ridge, runner,
                             info.get("class_names"),
                             Calibration.from_dict(info["calibration"]) if info.get("calibration") else None)
    except (KeyError, TypeError, ValueError) as e:
        raise AutoclintError(f"{path}: incomplete or malformed ({type(e).__name__}: {e}).") from None
    if runner is not None:
        weights = os.path.join(folder, "weights.pt")
        if not os.path.isfile(weights):
            raise AutoclintError(f"{weights}: missing (the model's network weights).")
        try:
            state = from_package_lite0(torch.load(weights, map_location="cpu", weights_only=True), runner.net)
            runner.net.load_state_dict(state)
        except Exception as e:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
            raise AutoclintError(f"{weights}: cannot be loaded into {runner.pre.backbone} "
                                 f"({type(e).__name__}: {str(e).splitlines()[0][:200]}).") from None
    return model


def from_package_lite0(state: dict, net: torch.nn.Module) -> dict:
    """A model saved before EfficientNet-Lite0 moved onto timm's definition (its weights under the package's
    names, `backbone.net._conv_stem...`, with the unused 1000-class layer) under today's names; other
    states unchanged. Same tensors in the same order, every shape checked (nets.efficientnet)."""
    prefix = "backbone.net."
    if prefix + "_conv_stem.weight" not in state:
        return state
    from autoclint.nets.efficientnet import package_state_on_timm
    backbone = {k[len(prefix):]: v for k, v in state.items()
                if k.startswith(prefix) and not k.startswith(prefix + "_fc.")}
    mapped = package_state_on_timm(backbone, net.backbone.net)
    counters = {k: v for k, v in net.backbone.net.state_dict().items() if k.endswith("num_batches_tracked")}
    return {**{k: v for k, v in state.items() if not k.startswith(prefix)},
            **{prefix + k: v for k, v in {**counters, **mapped}.items()}}


def _load_ridge(path: str) -> RidgeHead:
    if not os.path.isfile(path):
        raise AutoclintError(f"{path}: missing (the model's ridge head).")
    try:
        with np.load(path) as arrays:
            head = RidgeHead(arrays["mean"], arrays["std"], arrays["w"], float(arrays["alpha"]))
    except Exception as e:  # noqa: BLE001
        raise AutoclintError(f"{path}: cannot be read ({type(e).__name__}: {e}).") from None
    return head

