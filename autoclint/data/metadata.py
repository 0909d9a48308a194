"""`metadata.textproto` (protobuf text format of `autodl.DataSpecification`) and `AutoDLMetadata`.

The message is declared here from the official `data.proto` so that parsing is as strict as the
official reader (an unknown field is an error) without shipping generated code.
"""
from __future__ import annotations

import os
from functools import lru_cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from autoclint.errors import AutoclintError

DENSE, SPARSE, COMPRESSED = 0, 1, 2

_F = descriptor_pb2.FieldDescriptorProto
_REQUIRED_FIELDS = ("sample_count", "output_dim")


def _add_field(msg, name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None, default=None):
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if default is not None:
        f.default_value = default


def _add_map(msg, name, number):
    entry = msg.nested_type.add(name="".join(p.capitalize() for p in name.split("_")) + "Entry")
    entry.options.map_entry = True
    _add_field(entry, "key", 1, _F.TYPE_STRING)
    _add_field(entry, "value", 2, _F.TYPE_INT32)
    _add_field(msg, name, number, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, f".autodl.DataSpecification.{entry.name}")


@lru_cache(maxsize=1)
def _data_specification_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="autoclint_autodl_data.proto", package="autodl", syntax="proto2")
    ms = fdp.message_type.add(name="MatrixSpec")
    fmt = ms.enum_type.add(name="Format")
    for name, number in (("DENSE", DENSE), ("SPARSE", SPARSE), ("COMPRESSED", COMPRESSED)):
        fmt.value.add(name=name, number=number)
    _add_field(ms, "col_count", 1, _F.TYPE_INT32)
    _add_field(ms, "row_count", 2, _F.TYPE_INT32)
    _add_field(ms, "is_sequence_col", 3, _F.TYPE_BOOL)
    _add_field(ms, "is_sequence_row", 4, _F.TYPE_BOOL)
    _add_field(ms, "has_locality_col", 5, _F.TYPE_BOOL)
    _add_field(ms, "has_locality_row", 6, _F.TYPE_BOOL)
    _add_field(ms, "is_sparse", 7, _F.TYPE_BOOL)  # deprecated, ignored
    _add_field(ms, "format", 8, _F.TYPE_ENUM, type_name=".autodl.MatrixSpec.Format", default="DENSE")
    _add_field(ms, "num_channels", 9, _F.TYPE_INT32, default="-1")
    ds = fdp.message_type.add(name="DataSpecification")
    _add_field(ds, "matrix_spec", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".autodl.MatrixSpec")
    _add_field(ds, "is_sequence", 2, _F.TYPE_BOOL)
    _add_field(ds, "output_dim", 3, _F.TYPE_INT32)
    _add_map(ds, "label_to_index_map", 4)
    _add_map(ds, "feature_to_index_map", 5)
    _add_field(ds, "sequence_size", 6, _F.TYPE_INT32, default="1")
    _add_map(ds, "channel_to_index_map", 7)
    _add_field(ds, "sample_count", 8, _F.TYPE_INT32)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("autodl.DataSpecification"))


def parse_metadata(path: str):
    """Parse a `metadata.textproto` strictly; raise AutoclintError naming the file on any problem."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise AutoclintError(f"{path}: file not found; every train/ and test/ folder needs a metadata.textproto.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AutoclintError(f"{path}: cannot be read ({e}).") from None
    spec = _data_specification_class()()
    try:
        text_format.Parse(text, spec)
    except text_format.ParseError as e:
        raise AutoclintError(f"{path}: not a valid autodl.DataSpecification textproto ({e}).") from None
    missing = [name for name in _REQUIRED_FIELDS if not spec.HasField(name)]
    if not len(spec.matrix_spec):
        missing.append("matrix_spec")
    if missing:
        raise AutoclintError(f"{path}: missing required field(s) {', '.join(missing)}.")
    if spec.output_dim < 1 or spec.sample_count < 0:
        raise AutoclintError(f"{path}: output_dim must be >= 1 and sample_count >= 0 (got {spec.output_dim}, {spec.sample_count}).")
    return spec


class AutoDLMetadata:
    """Same methods and semantics as the official `dataset.AutoDLMetadata` (values returned raw)."""

    def __init__(self, dataset_name: str):
        self.dataset_name_ = dataset_name
        self.metadata_ = parse_metadata(os.path.join(dataset_name, "metadata.textproto"))

    def get_dataset_name(self) -> str:
        return self.dataset_name_

    def is_compressed(self, bundle_index: int = 0) -> bool:
        return self.metadata_.matrix_spec[bundle_index].format == COMPRESSED

    def is_sparse(self, bundle_index: int = 0) -> bool:
        return self.metadata_.matrix_spec[bundle_index].format == SPARSE

    def get_bundle_size(self) -> int:
        return len(self.metadata_.matrix_spec)

    def get_matrix_size(self, bundle_index: int = 0) -> tuple[int, int]:
        spec = self.metadata_.matrix_spec[bundle_index]
        return spec.row_count, spec.col_count

    def get_num_channels(self, bundle_index: int = 0) -> int:
        n = self.metadata_.matrix_spec[bundle_index].num_channels
        if n == -1:
            return 3 if self.is_compressed(bundle_index) else 1
        return n

    def get_tensor_size(self, bundle_index: int = 0) -> tuple[int, int, int]:
        return (*self.get_matrix_size(bundle_index), self.get_num_channels(bundle_index))

    def get_tensor_shape(self, bundle_index: int = 0) -> tuple[int, int, int, int]:
        return (self.get_sequence_size(), *self.get_tensor_size(bundle_index))

    def get_sequence_size(self) -> int:
        return self.metadata_.sequence_size

    def get_output_size(self) -> int:
        return self.metadata_.output_dim

    def size(self) -> int:
        return self.metadata_.sample_count

    def get_label_to_index_map(self):
        return self.metadata_.label_to_index_map

    def get_channel_to_index_map(self):
        return self.metadata_.channel_to_index_map

    def get_feature_to_index_map(self):
        return self.metadata_.feature_to_index_map
