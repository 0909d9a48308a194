"""The fine-tuner's snapshot: training continues from it exactly (the augmentation ablation restarts every
arm from one)."""
import torch

from autoclint.train.config import TrainCfg
from autoclint.train.session import Session
from tests.conftest import shared
from tests.train.test_session import datasets, run


def test_restore_brings_back_weights_average_and_counters():
    train, test = datasets(shared("suite", "Faces"))
    session = Session(40, TrainCfg(first_slice_s=1.0, max_slice_s=2.0), train_size=280)
    for _ in range(5):  # read, (the rest,) frozen features: then the fine-tuner exists
        run(session, train, test, 1, budget=900.0)  # the features stage fits even on a loaded machine
        if session.tuner is not None or session.done_training:
            break
    tuner = session.tuner
    assert tuner is not None, (session.stage, session.stop_reason)
    state = tuner.snapshot()
    before = [p.detach().clone() for p in tuner.net.parameters()]
    tuner.train_for(session.cache.x, session.cache.y, 1.0)
    assert tuner.steps > state["steps"]
    assert any(not torch.equal(a, b) for a, b in zip(before, tuner.net.parameters()))
    tuner.restore(state, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(before, tuner.net.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(state["average"], tuner.average))
    assert (tuner.steps, tuner.epoch, tuner.lr_scale) == (state["steps"], state["epoch"], state["lr_scale"])
