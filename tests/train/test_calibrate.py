"""Probabilities and multi-label decisions fitted on held-out data (train/calibrate.py)."""
import numpy as np

from autoclint.data import convert
from autoclint.data.dataset import AutoDLDataset
from autoclint.harness.layout import find_data_dir
from autoclint.harness.scoring import read_solution
from autoclint.train.calibrate import Calibration, best_f1_threshold, fit_calibration
from autoclint.train.checkpoint import load_trained, save_trained
from autoclint.train.config import TrainCfg
from autoclint.train.session import Session
from tests.conftest import shared


def test_f1_threshold_cuts_between_held_out_scores():
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    assert best_f1_threshold(y, p) == 0.4  # the top four: F1 6/7, better than the top two (0.8)
    assert best_f1_threshold(np.zeros(3), p[:3]) is None
    assert best_f1_threshold(np.array([1, 1]), np.array([0.5, 0.5])) < 0.5  # ties are never cut


def test_temperature_makes_overconfident_scores_honest():
    """Scores that rank well but are far too sure: the fitted temperature spreads them."""
    y = np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1]]
    wrong = y[[1, 2, 0, 0, 1, 2, 0, 1]]  # three of eight rows confidently wrong
    scores = np.where(wrong > 0, 0.999, 0.001)
    fitted = fit_calibration(y, scores, multilabel=False)
    assert fitted.temperature > 1 and fitted.fitted_on == 8
    def nll(c):
        return -np.mean(np.log((c.probabilities(scores) * y).sum(1)))
    assert nll(fitted) < nll(Calibration(False))
    assert Calibration.from_dict(fitted.to_dict()) == fitted


def test_multilabel_decisions_follow_the_truth_count(tmp_path):
    """The issue's case: on a multi-label set a ridge head's scores sit near the class prior, and a fixed
    0.5 threshold gave 7.0 labels per image against 1.5 in the truth. Held-out thresholds bring the
    count near the truth, and they survive saving."""
    collected = convert.collect_csv(shared("raw", "pokemon_multilabel", "labels.csv"))
    root = convert.write_dataset(collected, str(tmp_path), "Poke", test_fraction=0.3, seed=1)
    data = find_data_dir(root)
    train, test = AutoDLDataset(f"{data}/train"), AutoDLDataset(f"{data}/test")
    session = Session(len(collected.class_names), TrainCfg(), train_size=train.get_metadata().size())
    for _ in range(3):  # read + pixels, features
        session.train(train.get_dataset(), 120)
        session.test(test.get_dataset(), 120)
    exported = session.export()
    assert exported.multilabel and exported.calibration.thresholds is not None
    model = load_trained(save_trained(exported, str(tmp_path / "model")))
    assert model.calibration == exported.calibration
    truth = read_solution(f"{root}/Poke.solution")
    probabilities = model.predict_dataset(test.get_dataset())
    chosen = model.calibration.decide(probabilities)
    assert chosen.any(1).all()
    assert 0.5 * truth.sum(1).mean() <= chosen.sum(1).mean() <= 2 * truth.sum(1).mean()
