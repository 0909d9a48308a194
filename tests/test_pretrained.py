"""Fetching weight files: verified before they are put in place; a failure leaves nothing behind.
The downloads here come from file:// URLs (no internet on these machines)."""
import hashlib
import os

import pytest
import torch

import autoclint.pretrained as pretrained
from autoclint.errors import AutoclintError
from autoclint.nets.resnet import ResNet18Features, resnet18


@pytest.fixture
def served_state(tmp_path, monkeypatch):
    source = tmp_path / "served.pth"
    torch.save(ResNet18Features().state_dict(), source)
    monkeypatch.setitem(pretrained.SOURCES, "resnet18", (source.as_uri(), "resnet18-f37072fd.pth"))
    return source


def test_fetch_refuses_a_file_with_the_wrong_checksum(tmp_path, served_state):
    weights = tmp_path / "weights"
    with pytest.raises(AutoclintError, match="does not match f37072fd; nothing was saved"):
        pretrained.fetch("resnet18", str(weights))
    assert os.listdir(weights) == []


def test_fetch_puts_a_verified_file_where_resnet18_finds_it(tmp_path, served_state, monkeypatch):
    digest = hashlib.sha256(served_state.read_bytes()).hexdigest()
    monkeypatch.setitem(pretrained.RESNET18_FILES, "resnet18-f37072fd.pth", digest[:8])
    weights = tmp_path / "weights"
    path = pretrained.fetch("resnet18", str(weights))
    assert os.listdir(weights) == ["resnet18-f37072fd.pth"] and path.endswith("resnet18-f37072fd.pth")
    _, cfg = resnet18(weights_dir=str(weights))
    assert cfg.pretrained


def test_unreachable_source_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(pretrained.SOURCES, "resnet18", ((tmp_path / "absent.pth").as_uri(), "resnet18-f37072fd.pth"))
    assert pretrained.main(["fetch", "resnet18", "--dir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "cannot be downloaded" in err and "by hand" in err and len(err.strip().splitlines()) == 1
    assert pretrained.main(["fetch", "vgg"]) == 2
    assert "no weights to fetch" in capsys.readouterr().err
