import os

import pytest

from autoclint.data.metadata import AutoDLMetadata
from autoclint.errors import AutoclintError
from tests.conftest import copy_dataset, shared


def test_miniciao_metadata_methods():
    m = AutoDLMetadata(shared("samples", "miniciao", "miniciao.data", "train"))
    assert m.size() == 82 and m.get_output_size() == 10
    assert m.get_tensor_shape() == (1, 32, 32, 3)
    assert m.is_compressed() and not m.is_sparse() and m.get_bundle_size() == 1
    assert dict(m.get_label_to_index_map())["airplane"] == 0


def test_legacy_metadata_defaults():
    """mini1 lacks sequence_size and num_channels: defaults 1 and (DENSE) 1."""
    m = AutoDLMetadata(shared("samples", "mini1", "mini1.data", "test"))
    assert m.get_tensor_shape() == (1, 28, 28, 1) and m.size() == 10 and not m.is_compressed()


def test_variable_size_stays_raw():
    m = AutoDLMetadata(shared("samples", "Monkeys", "Monkeys.data", "train"))
    assert m.get_matrix_size() == (-1, -1) and m.get_num_channels() == 3


@pytest.mark.parametrize("drop", ["output_dim", "sample_count", "matrix_spec"])
def test_missing_field_is_named(tmp_path, drop):
    root = copy_dataset(shared("samples", "miniciao"), tmp_path)
    path = os.path.join(root, "miniciao.data", "train", "metadata.textproto")
    text = open(path).read()
    if drop == "matrix_spec":
        start = text.index("matrix_spec {")
        text = text[:start] + text[text.index("}", start) + 1:]
    else:
        text = "\n".join(line for line in text.splitlines() if not line.startswith(drop))
    open(path, "w").write(text)
    with pytest.raises(AutoclintError, match=f"metadata.textproto: missing required field.*{drop}"):
        AutoDLMetadata(os.path.dirname(path))


def test_unknown_field_is_an_error(tmp_path):
    root = copy_dataset(shared("samples", "miniciao"), tmp_path)
    path = os.path.join(root, "miniciao.data", "train", "metadata.textproto")
    open(path, "a").write("colour_space: 3\n")
    with pytest.raises(AutoclintError, match="not a valid autodl.DataSpecification"):
        AutoDLMetadata(os.path.dirname(path))


def test_missing_file(tmp_path):
    with pytest.raises(AutoclintError, match="file not found"):
        AutoDLMetadata(str(tmp_path))
