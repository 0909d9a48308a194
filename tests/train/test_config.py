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
