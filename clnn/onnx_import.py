"""ONNX -> clnn.Model.

Everything is checked on the host before any device work: the opset, the
graph inputs (float32, rank 0 to 6, only the batch may be symbolic) and, for
every node, its op type, attributes, constant operands and used outputs. A
node that clnn cannot compute exactly raises ModelError naming the node, its
op type and the reason; nothing is imported as an approximation.

Each layer is named after the ONNX tensor it produces, so graph outputs keep
their names. Identity and Dropout produce no layer: their output is another
name for their input (a graph output that is such a name renames its
producer, or gets a copy where it cannot). A node with several outputs
(Split) becomes one layer per used output, each named after its output and
reading the node's inputs: its converter returns a list with one result per
output (None for an output nothing reads). The layers' own converters live
in their op modules (clnn.ops.registry); the ones here make no layer.
"""

import collections
import os
import re

import numpy as np

from .box import MAX_RANK
from .errors import ModelError
from .model import Model
from .onnx_common import DEFAULT_DOMAINS, OLDEST_OPSET, REVIEWED_OPSET, require_onnx
from .onnx_fold import fold
from .onnx_patterns import rewrite
from .onnx_types import check_types
from .ops import Activation, Constant, Layer, registry


def load(model, batch=1, fuse=True):
    """A clnn.Model from an ONNX file path, its bytes or an onnx.ModelProto;
    a symbolic or unknown batch (first) dimension of the inputs becomes
    ``batch``; ``fuse=False`` skips the fusion passes."""
    onnx = require_onnx()
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ModelError(f"batch must be a positive integer, got {batch!r}")
    proto = _read(onnx, model)
    check_types(onnx, proto, _opset(onnx, proto))
    # a proto parsed here is clnn's to change: folded in place, its weights
    # released as they are converted (a caller's is copied)
    return _Importer(onnx, proto, int(batch), owned=proto is not model).build(fuse)


def _read(onnx, model):
    if isinstance(model, onnx.ModelProto):
        proto, what = model, "the ModelProto given"
    elif isinstance(model, (bytes, bytearray, memoryview)):
        what = "the bytes given"
        proto = _parse(lambda: onnx.load_model_from_string(bytes(model)), what)
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        what = f"file {path!r}"
        if not os.path.isfile(path):
            raise ModelError(f"no ONNX file at {path!r}")
        proto = _parse(lambda: onnx.load(path), what)
    else:
        raise ModelError("a model must be an ONNX file path, its bytes or an onnx.ModelProto, "
                         f"not {type(model).__name__}")
    if not proto.HasField("graph"):
        raise ModelError(f"no ONNX graph in {what}")
    return proto


def _copy(onnx, proto):
    copied = onnx.ModelProto()
    copied.CopyFrom(proto)
    return copied


def _parse(read, what):
    try:
        return read()
    except Exception as exc:  # protobuf and onnx raise many kinds of error on corrupt data
        raise ModelError(f"cannot read an ONNX model from {what}: {exc}") from exc


def _opset(onnx, proto):
    """The model's ai.onnx opset: 11 up to the newest the installed onnx defines."""
    versions = [o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        raise ModelError("the model imports no ai.onnx opset")
    newest = onnx.defs.onnx_opset_version()
    if not OLDEST_OPSET <= max(versions) <= newest:
        raise ModelError(f"opset {max(versions)} is not supported; clnn reads ai.onnx opsets {OLDEST_OPSET} to "
                         f"{newest} (the newest that the installed onnx {onnx.__version__} defines)")
    return max(versions)


def _layer_reason(text, layer):
    """A layer's error message less its naming of the layer ("Conv node 'y': "),
    which the importer's prefix naming the node and op replaces."""
    return re.sub(rf"^(\w+ )?(node|layer) {re.escape(repr(layer))}:? ", "", text)


class _Node:
    """An ONNX node being converted. Its attributes and inputs are marked as
    they are read, so that any the converter did not look at is an error
    instead of being silently ignored."""

    def __init__(self, proto, importer):
        self.proto = proto
        self.op = proto.op_type
        self.importer = importer
        self.prefix = f"node {proto.name or (proto.output[0] if proto.output else '?')!r} ({self.op})"
        self.attrs = {a.name: a for a in proto.attribute}
        self.unread_attrs = set(self.attrs)
        self.unread_inputs = {i for i, name in enumerate(proto.input) if name}

    @property
    def opset(self):
        return self.importer.opset

    @property
    def out(self):
        return self.proto.output[0]

    @property
    def outputs(self):
        """Every output's name, for converters of nodes with several."""
        return list(self.proto.output)

    def used(self, index):
        """Whether something reads output ``index`` (a node or the graph)."""
        name = self.proto.output[index]
        return bool(name) and name in self.importer.used

    def fail(self, text):
        raise ModelError(f"{self.prefix}: {text}")

    # attributes -------------------------------------------------------------------
    def attr(self, name, default=None):
        self.unread_attrs.discard(name)
        if name not in self.attrs:
            return default
        value = self.importer.onnx.helper.get_attribute_value(self.attrs[name])
        return value.decode() if isinstance(value, bytes) else value

    def ints(self, name, count, default=None):
        """An attribute of ``count`` ints (required where default is None)."""
        value = self.attr(name, default)
        if value is None:
            self.fail(f"attribute {name} is required")
        value = tuple(int(v) for v in value)
        if len(value) != count:
            self.fail(f"{name} {list(value)} must have {count} values (one per spatial axis, or two per axis for pads)")
        return value

    def ignore(self, *names):
        """Attributes that do not change the result at inference."""
        self.unread_attrs.difference_update(names)

    # inputs -------------------------------------------------------------------------
    def has(self, index):
        return index < len(self.proto.input) and self.proto.input[index] != ""

    def _source(self, index):
        self.unread_inputs.discard(index)
        if not self.has(index):
            self.fail(f"input {index} is missing")
        name = self.importer.resolve(self.proto.input[index])
        if not self.importer.defined(name):
            self.fail(f"reads {name!r}, which no node, graph input or initializer defines")
        return name

    def is_constant(self, index):
        return self.has(index) and self.importer.resolve(self.proto.input[index]) in self.importer.constants

    def tensor(self, index):
        """The clnn tensor that input ``index`` reads. A constant input
        (float) becomes the output of a Constant layer, for an op that clnn
        computes from tensors only: a ViT's class token before a Concat,
        EdgeNeXt's positional encoding into a Conv."""
        name = self._source(index)
        if name in self.importer.constants and name not in self.importer.dims:
            value = self.importer.value(name)
            if value.dtype.kind != "f":
                self.fail(f"input {index} ({name!r}) is a {value.dtype} constant; clnn computes float32 tensors")
            self.add_layer(Constant(name, value))
        return name

    def add_layer(self, layer):
        """Add a layer computing a part of this node (before the layer the
        converter returns); its output's name."""
        self.importer.add(layer)
        return layer.name

    def constant(self, index, what):
        """The numpy value of input ``index``, which must be a constant."""
        name = self._source(index)
        if name not in self.importer.constants:
            self.fail(f"{what} ({name!r}) must be a constant (an initializer or a Constant node), "
                      "not a computed tensor")
        return self.importer.value(name)

    def shape(self, tensor):
        """The shape of a clnn tensor as ONNX sees it."""
        return self.importer.dims[tensor]

    def axis(self, value, rank):
        if not -rank <= value < rank:
            self.fail(f"axis {value} is out of range for a rank-{rank} input")
        return value % rank

    def check_all_read(self, produced):
        """Everything was read, and no output past the ``produced`` first
        ones is used."""
        if self.unread_attrs:
            self.fail(f"attribute {sorted(self.unread_attrs)[0]!r} is not supported")
        if self.unread_inputs:
            index = min(self.unread_inputs)
            self.fail(f"input {index} ({self.proto.input[index]!r}) is not supported")
        for index in range(produced, len(self.proto.output)):
            if self.used(index):
                self.fail(f"output {index} ({self.proto.output[index]!r}) is used, but clnn computes only "
                          f"the first {'output' if produced == 1 else f'{produced} outputs'}")


def _first_dim_name(info):
    """The name of a graph output's symbolic batch dimension, if it has one."""
    dims = info.type.tensor_type.shape.dim if info.type.tensor_type.HasField("shape") else ()
    return dims[0].dim_param or None if dims else None


class _Importer:
    def __init__(self, onnx, proto, batch, owned=False):
        self.onnx = onnx
        self.opset = _opset(onnx, proto)
        self.batch = batch
        self.symbolic = {}      # graph input name -> its batch dimension's name (None: unnamed)
        initialized = {t.name for t in proto.graph.initializer}
        # graph input name -> shape, the batch fed in place of a symbolic one
        self.inputs = {i.name: self._input_shape(i) for i in proto.graph.input if i.name not in initialized}
        # exporters' subgraphs of one operation become its node again (clnn.onnx_patterns)
        nodes = rewrite(onnx, proto, batch)
        if len(nodes) != len(proto.graph.node) or any(a is not b for a, b in zip(nodes, proto.graph.node)):
            if not owned:  # the caller's proto stays as it was
                proto, owned = _copy(onnx, proto), True
            proto.graph.ClearField("node")
            proto.graph.node.extend(nodes)
        # shape subgraphs (Shape, Gather, Concat, ... of static shapes) become constants
        self.proto = fold(proto, self.inputs, in_place=owned)
        self.owned = True  # a proto parsed here, or the copy made of the caller's by rewrite or fold
        self.graph = self.proto.graph
        # name -> numpy value (Constant nodes) or TensorProto (an initializer, read on first use)
        self.constants = {t.name: t for t in self.graph.initializer}
        self.initializer_names = set(self.constants)
        # how many node inputs and graph outputs still read each tensor: a weight
        # is let go once the layers reading it hold their own copies
        self.readers = collections.Counter(name for node in self.graph.node for name in node.input if name)
        self.readers.update(o.name for o in self.graph.output)
        self.alias = {}         # Identity/Dropout output -> the tensor it names
        self.dims = {}          # clnn tensor -> shape as ONNX sees it
        self.layers = []
        self.converters = converters()
        self.nodes = list(self.graph.node)
        self.used = {name for node in self.nodes for name in node.input if name}
        self.used |= {o.name for o in self.graph.output}

    def resolve(self, name):
        return self.alias.get(name, name)

    def defined(self, name):
        return name in self.dims or name in self.constants or name in self.alias

    def value(self, name):
        """The numpy value of constant ``name``."""
        value = self.constants[name]
        if isinstance(value, self.onnx.TensorProto):
            tensor, value = value, self.array(value, f"initializer {name!r}")
            if self.owned:
                tensor.ClearField("raw_data")  # the array holds the values now
            self.constants[name] = value
        return value

    def build(self, fuse=True):
        self.dims.update(self.inputs)
        for node in self.nodes:
            self._convert(node)
        outputs = [o.name for o in self.graph.output]
        for name in outputs:
            self._bind_output(name, outputs)
        model = Model(self.inputs, self.layers, outputs, name=self.graph.name or "model", fuse=fuse)
        model.metadata = {
            "producer_name": self.proto.producer_name, "graph_name": self.graph.name, "domain": self.proto.domain,
            "description": self.proto.doc_string, "graph_description": self.graph.doc_string,
            "version": self.proto.model_version,
            "custom_metadata_map": {p.key: p.value for p in self.proto.metadata_props}}
        if self.symbolic:
            model.symbolic_batch = dict(self.symbolic, **{o.name: _first_dim_name(o) for o in self.graph.output})
        return model

    def array(self, tensor, what):
        try:
            return self.onnx.numpy_helper.to_array(tensor)
        except Exception as exc:  # external data that cannot be found, corrupt or unknown types
            raise ModelError(f"{what}: cannot read its value: {exc}") from exc

    def _input_shape(self, info):
        name = info.name
        if info.type.WhichOneof("value") != "tensor_type":
            raise ModelError(f"graph input {name!r} is not a tensor")
        tensor_type = info.type.tensor_type
        if tensor_type.elem_type != self.onnx.TensorProto.FLOAT:
            kind = self.onnx.helper.tensor_dtype_to_string(tensor_type.elem_type)
            raise ModelError(f"graph input {name!r} has type {kind}; clnn runs float32 inputs only")
        if not tensor_type.HasField("shape"):
            raise ModelError(f"graph input {name!r} has no shape; clnn needs its rank and sizes")
        shape = []
        for index, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(dim.dim_value)
            elif index == 0:
                shape.append(self.batch)
                self.symbolic[name] = dim.dim_param or None
            else:
                raise ModelError(f"graph input {name!r}: dimension {index} is {dim.dim_param or 'unknown'}; "
                                 "only the batch (first) dimension may be symbolic")
        if len(shape) > MAX_RANK:
            raise ModelError(f"graph input {name!r} has rank {len(shape)}; clnn supports ranks 0 to {MAX_RANK}")
        return tuple(shape)

    def _convert(self, proto):
        node = _Node(proto, self)
        if proto.domain not in DEFAULT_DOMAINS:
            node.fail(f"domain {proto.domain!r} is not supported; clnn runs ai.onnx ops only")
        convert = self.converters.get(node.op)
        if convert is None:
            node.fail(f"op type {node.op!r} is not supported; supported: {', '.join(sorted(self.converters))}")
        self._check_version(node)
        if not proto.output or not proto.output[0]:
            node.fail("it has no output")
        for name in proto.output:
            if name and self.defined(name):
                node.fail(f"output {name!r} is already defined")
        try:
            result = convert(node)
            # a node with several outputs converts to a list: one result per output, None for unused ones
            results = result if isinstance(result, list) else [result]
            node.check_all_read(len(results))
            self._read_by(proto)
            for name, value in zip(proto.output, results):
                if isinstance(value, Layer):
                    self.add(value)
                elif isinstance(value, np.ndarray):
                    self.constants[name] = value
                elif value is not None:
                    self.alias[name] = value
        except (ValueError, TypeError) as exc:   # ModelError from the layers included
            if str(exc).startswith(node.prefix):
                raise
            raise ModelError(f"{node.prefix}: {_layer_reason(str(exc), node.out)}") from exc

    def _read_by(self, proto):
        """Let go of the initializers that no node or output reads any more."""
        for name in proto.input:
            self.readers[name] -= 1
            if self.readers[name] == 0 and name in self.initializer_names:
                self.constants.pop(name, None)

    def _check_version(self, node):
        """The node's op at the model's opset is a version clnn follows."""
        defs = self.onnx.defs
        try:
            since = defs.get_schema(node.op, self.opset, "").since_version
        except defs.SchemaError:
            first = min(s.since_version for s in defs.get_all_schemas_with_history()
                        if s.name == node.op and s.domain == "")
            node.fail(f"{node.op} is an ai.onnx op from opset {first} on, not {self.opset}")
        if since > REVIEWED_OPSET:
            node.fail(f"{node.op} changed in opset {since}; clnn follows its changes up to opset {REVIEWED_OPSET}")

    def add(self, layer):
        self.dims[layer.name] = layer.bind([self.dims[t] for t in layer.inputs])
        self.layers.append(layer)

    def _bind_output(self, name, outputs):
        """Make graph output ``name`` the name of a layer."""
        if outputs.count(name) > 1:
            raise ModelError(f"graph output {name!r} is listed twice")
        source = self.resolve(name)
        if source in self.constants:
            raise ModelError(f"graph output {name!r} is a constant; clnn computes outputs from the inputs")
        if source not in self.dims:
            raise ModelError(f"graph output {name!r} is produced by no node")
        if source in self.inputs and source == name:
            raise ModelError(f"graph output {name!r} is a graph input; clnn needs a node between them")
        if source == name:
            return
        if source in self.inputs or source in outputs:
            self.add(Activation(name, source, None))
        else:
            self._rename(source, name)

    def _rename(self, old, new):
        for layer in self.layers:
            if layer.name == old:
                layer.name = new
            layer.inputs = tuple(new if t == old else t for t in layer.inputs)
        self.alias = {k: new if v == old else v for k, v in self.alias.items()}
        self.dims[new] = self.dims.pop(old)


# converters of the ONNX ops that make no layer; the layers' own live in
# their op modules (clnn.ops.registry). Each takes a _Node and returns a Layer,
# a tensor name (an alias) or a numpy array (a constant) ----------------------------

def _identity(node):
    return node.constant(0, "the input") if node.is_constant(0) else node.tensor(0)


def _dropout(node):
    node.ignore("seed", "ratio")
    if node.has(1):
        node.constant(1, "ratio")   # unused at inference, read only to be checked
    if node.has(2) and np.any(node.constant(2, "training_mode")):
        node.fail("training_mode=true is not supported (inference only)")
    return _identity(node)


def _cast(node):
    """A cast of a tensor to float32 (the type of every tensor clnn
    computes) is the tensor; constants' casts are folded before import."""
    node.ignore("saturate", "round_mode")    # they change casts to 8-bit floats only
    to = node.attr("to")
    if to != node.importer.onnx.TensorProto.FLOAT:
        names = node.importer.onnx.TensorProto.DataType
        node.fail(f"a cast to {names.Name(to).lower() if to in names.values() else to}; clnn computes float32 "
                  "tensors only")
    return node.constant(0, "the input").astype(np.float32) if node.is_constant(0) else node.tensor(0)


def _constant(node):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            value = node.attr(key)
            if key == "value":
                return node.importer.array(value, node.prefix)
            return np.array(value, dtype=np.float32 if "float" in key else np.int64)
    node.fail("only tensor, float and int constants are supported")


GRAPH_CONVERTERS = {"Identity": _identity, "Dropout": _dropout, "Constant": _constant, "Cast": _cast}


def converters():
    """{ONNX op type: converter} of every op clnn reads."""
    return {**registry.onnx_converters(), **GRAPH_CONVERTERS}
