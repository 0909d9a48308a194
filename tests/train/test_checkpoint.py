"""Saving the best predictor and loading it back: same predictions, and one clear sentence for a bad folder."""
import dataclasses
import json
import os

import numpy as np
import pytest

from autoclint.data.dataset import AutoDLDataset
from autoclint.errors import AutoclintError
from autoclint.harness.scoring import read_solution
from autoclint.metrics import nauc
from autoclint.train.checkpoint import load_trained, save_trained
from autoclint.train.config import TrainCfg
from autoclint.train.session import Session
from tests.conftest import shared

FAST = TrainCfg(first_slice_s=1.0, max_slice_s=1.0)


def trained_session(stages: int, cfg: TrainCfg = FAST) -> tuple[Session, AutoDLDataset]:
    root = shared("suite", "Faces", "Faces.data")
    train, test = AutoDLDataset(os.path.join(root, "train")), AutoDLDataset(os.path.join(root, "test"))
    cfg = dataclasses.replace(cfg, first_read_s=60.0)  # the whole set in the first read, on a loaded machine too
    session = Session(40, cfg, train_size=train.get_metadata().size())
    for _ in range(stages):
        session.train(train.get_dataset(), 600)  # ample: the stages, not the clock, are under test
        session.test(test.get_dataset(), 600)
    return session, test


@pytest.mark.parametrize("stages, kind", [(1, "pixels"), (3, None)])
def test_saved_model_predicts_like_the_best_predictor(tmp_path, stages, kind):
    session, test = trained_session(stages)
    folder = save_trained(session.export(), str(tmp_path / "model"), [f"s{i + 1}" for i in range(40)])
    model = load_trained(folder)
    assert model.kind == session.export().kind and (kind is None or model.kind == kind)
    assert model.class_names[0] == "s1" and model.num_classes == 40
    predictions = model.scores_dataset(test.get_dataset())
    assert predictions.shape == (120, 40)
    if model.kind == "pixels":  # the best predictor's own test prediction is the session's current one
        np.testing.assert_allclose(predictions, session.anytime.prediction, rtol=1e-5, atol=1e-6)
    solution = read_solution(shared("suite", "Faces", "Faces.solution"))
    assert nauc(solution, predictions) > 0.9  # faces: pixels alone reach 0.99 (measured)
    probabilities = model.predict_dataset(test.get_dataset())  # calibrated on the held-out split
    assert model.calibration.fitted_on == len(session.validation) > 0
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(probabilities.argmax(1), predictions.argmax(1))


def test_saving_replaces_an_older_model_only_when_complete_and_never_someone_elses_files(tmp_path):
    session, _ = trained_session(1)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")  # an earlier saved model (as far as its files go)
    (folder / "ridge.npz").write_text("old")
    save_trained(session.export(), str(folder))
    assert json.loads((folder / "model.json").read_text())["kind"] == "pixels"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".saving")] == []
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(AutoclintError, match="holds files this command did not write"):
        save_trained(session.export(), str(folder))
    assert (folder / "notes.txt").read_text() == "mine"
    save_trained(session.export(), str(folder), overwrite=True)
    assert not (folder / "notes.txt").exists()


def test_bad_model_folders_name_the_file(tmp_path):
    with pytest.raises(AutoclintError, match="no such model folder"):
        load_trained(str(tmp_path / "absent"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AutoclintError, match=r"model\.json: missing"):
        load_trained(str(empty))
    session, _ = trained_session(2)
    folder = save_trained(session.export(), str(tmp_path / "m"))
    info = json.loads(open(os.path.join(folder, "model.json")).read())
    if info["kind"] != "pixels":
        os.remove(os.path.join(folder, "weights.pt"))
        with pytest.raises(AutoclintError, match=r"weights\.pt: missing"):
            load_trained(folder)
        with open(os.path.join(folder, "weights.pt"), "wb") as f:
            f.write(b"not a torch file")
        with pytest.raises(AutoclintError, match=r"weights\.pt: cannot be loaded"):
            load_trained(folder)
    with open(os.path.join(folder, "model.json"), "w") as f:
        f.write("{ truncated")
    with pytest.raises(AutoclintError, match=r"model\.json: not valid JSON"):
        load_trained(folder)
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump(dict(info, format=99), f)
    with pytest.raises(AutoclintError, match="not a model this version reads"):
        load_trained(folder)
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump({k: v for k, v in info.items() if k != "shape"}, f)
    with pytest.raises(AutoclintError, match="incomplete or malformed"):
        load_trained(folder)


@pytest.mark.parametrize("stages, kind", [(1, "pixels"), (2, "features"), (3, "upsampled"), (4, "finetune")])
def test_round_trip_gives_the_in_run_predictions_of_every_predictor_kind(tmp_path, stages, kind, monkeypatch):
    """train -> save -> load -> predict from the dataset equals the learner's own test prediction with the
    same predictor to 1e-6 (pixels after stage 1, frozen features after stage 2, frozen features of the
    upsampled cache after stage 3, the fine-tuned net after a slice; with mirrored TTA where the learner
    chose it): the saved preprocessing is the learner's, the upsampled input size included."""
    from autoclint.train.anytime import Anytime
    offered = []
    keep = Anytime.keep_if_best

    def remember(self, candidate):  # every single predictor, whether or not it ranks best
        if candidate.single is not None:
            offered.append(candidate)
        keep(self, candidate)
    monkeypatch.setattr(Anytime, "keep_if_best", remember)
    session, test = trained_session(stages, dataclasses.replace(FAST, upsample_min_scale=1.25))  # 112x96 -> 160x137
    best = offered[-1]  # the stage's own predictor, saved as when it ranks best
    assert best.single.kind == ("pixels", "features", "features", "finetune")[stages - 1]
    assert (best.single.pre is not None) == (kind == "upsampled"), "the stage ran"
    session.anytime.best_single = best
    in_run = best.predict()  # right after the stage: the live network is the one this predictor used
    model = load_trained(save_trained(session.export(), str(tmp_path / "model")))
    assert (model.kind, model.tta) == (best.single.kind, best.single.tta)
    if kind == "upsampled":
        assert model.runner.pre.net_hw == session.upsampled_hw != session.runner.pre.net_hw
    np.testing.assert_allclose(model.scores_dataset(test.get_dataset()), in_run, rtol=0, atol=1e-6)


def test_a_model_saved_with_lite0_on_its_package_still_loads(tmp_path):
    """Models saved before Lite0 moved onto timm's definition hold its weights under the package's names
    (with its unused 1000-class layer): loaded under today's names, they predict as before."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    session, test = trained_session(3)
    folder = save_trained(session.export(), str(tmp_path / "model"))
    assert load_trained(folder).kind != "pixels"
    expected = load_trained(folder).scores_dataset(test.get_dataset())
    state = torch.load(os.path.join(folder, "weights.pt"), weights_only=True)
    package = {k: v for k, v in EfficientNet.from_name("efficientnet-lite0", num_classes=1000).state_dict().items()
               if not k.endswith("num_batches_tracked")}
    ours = [k for k in state if k.startswith("backbone.net.") and not k.endswith("num_batches_tracked")]
    assert len(ours) == len(package) - 2  # the package's net also holds _fc.weight and _fc.bias
    old = {k: v for k, v in state.items() if not k.startswith("backbone.net.")}
    old.update({f"backbone.net.{name}": state[key] for name, key in zip((n for n in package if "_fc." not in n), ours)})
    old.update({f"backbone.net.{n}": package[n] for n in package if "_fc." in n})
    torch.save(old, os.path.join(folder, "weights.pt"))
    np.testing.assert_allclose(load_trained(folder).scores_dataset(test.get_dataset()), expected, rtol=1e-5, atol=1e-6)


def test_a_features_model_saved_before_the_descriptor_had_levels_still_loads(tmp_path):
    """Models saved before the head read several stages hold a ridge (or a head) on the final features and
    no `feature_levels`: loaded, they read the final features and predict as in their run. Today's saves
    record the levels, and their ridge reads the wider input."""
    session, test = trained_session(2, dataclasses.replace(FAST, feature_levels=1))
    best = session.anytime.best_single
    assert best.single.kind == "features"
    in_run = best.predict()
    folder = save_trained(session.export(), str(tmp_path / "model"))
    with open(os.path.join(folder, "model.json"), encoding="utf-8") as f:
        info = json.load(f)
    assert info["network"].pop("feature_levels") == 1
    with open(os.path.join(folder, "model.json"), "w", encoding="utf-8") as f:
        json.dump(info, f)
    np.testing.assert_allclose(load_trained(folder).scores_dataset(test.get_dataset()), in_run, rtol=0, atol=1e-6)

    session, _ = trained_session(2)
    exported = session.export()
    assert exported.network.feature_levels == TrainCfg().feature_levels > 1
    assert exported.ridge.w.shape[0] == session.runner.net.num_features > 1280
