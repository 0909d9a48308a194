"""The AutoDL submission: `Model(metadata)` with train/test/done_training, a thin adapter over
`autoclint.train.session.Session`. Any exception inside train/test is logged in one line and answered
with the last good prediction, so a late failure never costs the predictions already made."""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the package ships beside model.py

import numpy as np  # noqa: E402

from autoclint.data.reader import count_examples  # noqa: E402
from autoclint.train.config import TrainCfg, with_overrides  # noqa: E402
from autoclint.train.session import Session  # noqa: E402

log = logging.getLogger("autoclint")
if not log.handlers:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("autoclint: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class Model:
    def __init__(self, metadata, cfg: TrainCfg | None = None):
        # The harness builds Model(metadata) only: the benchmark picks the backbone and the augmentation
        # policy through the environment.
        # AUTOCLINT_SET: "key=value;key=value" settings of TrainCfg (bench/run.py --set).
        cfg = cfg or with_overrides(TrainCfg(backbone=os.environ.get("AUTOCLINT_BACKBONE", ""),
                                             augment=os.environ.get("AUTOCLINT_AUGMENT") or "none"),
                                    [s for s in os.environ.get("AUTOCLINT_SET", "").split(";") if s.strip()])
        self.num_classes = metadata.get_output_size()
        self.session = Session(self.num_classes, cfg, train_size=metadata.size())
        self.done_training = False
        self.failed = False
        self.last = None

    def train(self, dataset, remaining_time_budget=None):
        if self.failed:
            self.done_training = True
            return
        try:
            self.session.train(dataset, remaining_time_budget)
            self.done_training = self.session.done_training
        except Exception as e:  # noqa: BLE001 - keep the predictions made so far
            self._fail("train", e)

    def test(self, dataset, remaining_time_budget=None):
        try:
            if not self.failed:
                prediction = self.session.test(dataset, remaining_time_budget)
                self.done_training = self.session.done_training
                if prediction is not None:
                    self.last = np.asarray(prediction, dtype=np.float64)
                    return self.last
        except Exception as e:  # noqa: BLE001
            self._fail("test", e)
        return self._fallback(dataset)

    def _fail(self, where: str, error: Exception) -> None:
        log.error("%s failed (%s: %s); keeping the last good prediction and stopping", where,
                  type(error).__name__, error)
        self.failed = True
        self.done_training = True

    def _fallback(self, dataset) -> np.ndarray:
        """The last good prediction, else a constant prior with the test set's row count."""
        if self.last is not None:
            return self.last
        n = count_examples(dataset)
        log.warning("no prediction available: answering a constant prior for %d test rows", n)
        self.last = np.full((n, self.num_classes), 1.0 / self.num_classes)
        return self.last
