"""Settings from the command line (`--set key=value`) onto the typed config, or one sentence why not."""
import pytest

from autoclint.train.config import TrainCfg, with_overrides


def test_settings_take_the_fields_types():
    cfg = with_overrides(TrainCfg(), ["lr=0.01", "max_side=96", "augment=faa", "ridge_alphas=0.1,10",
                                      "search.min_candidates=4"])
    assert (cfg.lr, cfg.max_side, cfg.augment, cfg.ridge_alphas) == (0.01, 96, "faa", (0.1, 10.0))
    assert cfg.search.min_candidates == 4 and cfg.search.draws == TrainCfg().search.draws
    assert TrainCfg().lr == 0.003  # the default itself is untouched


@pytest.mark.parametrize("setting, message", [
    ("lrr=1", "lrr: no such setting; known: max_side"),
    ("lr=fast", "lr=fast: not a valid float"),
    ("search.foo=1", "search.foo: no such setting; known: sub_policies"),
    ("search=1", "set its parts"),
    ("lr", "expected key=value"),
])
def test_bad_settings_are_named(setting, message):
    with pytest.raises(ValueError, match=message):
        with_overrides(TrainCfg(), [setting])


def test_a_run_folders_config_file_gives_back_the_same_config(tmp_path):
    """config.json (dataclasses.asdict, as `train --out` writes it) read back by `--config` is the config."""
    import dataclasses
    import json
    from autoclint.train.config import settings_from_file
    cfg = with_overrides(TrainCfg(), ["lr=0.02", "ridge_alphas=1,10", "search.draws=5", "augment=faa", "flip_floor=0.5"])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dataclasses.asdict(cfg)))
    assert with_overrides(TrainCfg(), settings_from_file(str(path))) == cfg
    (tmp_path / "partial.json").write_text('{"lr": 0.05, "search": {"min_candidates": 2}}')
    partial = with_overrides(TrainCfg(), settings_from_file(str(tmp_path / "partial.json")))
    assert (partial.lr, partial.search.min_candidates, partial.max_side) == (0.05, 2, TrainCfg().max_side)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object of settings, found list"),
    ('{"lrr": 1}', None),  # unknown key: named by with_overrides
])
def test_bad_config_files_are_named(tmp_path, text, message):
    from autoclint.train.config import settings_from_file
    path = tmp_path / "c.json"
    path.write_text(text)
    if message is None:
        with pytest.raises(ValueError, match="lrr: no such setting"):
            with_overrides(TrainCfg(), settings_from_file(str(path)))
    else:
        with pytest.raises(ValueError, match=message):
            settings_from_file(str(path))
    with pytest.raises(ValueError, match="cannot be read"):
        settings_from_file(str(tmp_path / "missing.json"))
