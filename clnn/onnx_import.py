"""ONNX -> clnn.Model.

Everything is checked on the host before any device work: the opset, the
graph inputs (float32, rank 2 to 4, only the batch may be symbolic) and, for
every node, its op type, attributes, constant operands and used outputs. A
node that clnn cannot compute exactly raises ModelError naming the node, its
op type and the reason; nothing is imported as an approximation.

Each layer is named after the ONNX tensor it produces, so graph outputs keep
their names. Identity and Dropout produce no layer: their output is another
name for their input (a graph output that is such a name renames its
producer, or gets a Copy where it cannot).
"""

import os

import numpy as np

from .errors import ModelError
from .graph import Model, external, to4d
from .ops import LRN, Activation, Binary, Concat, Conv2d, Copy, Dense, Layer, Pool, Reshape, ScaleShift, Softmax
from .ops.base import Attrs
from .ops.conv import same_pads

OPSETS = range(11, 22)
DEFAULT_DOMAINS = ("", "ai.onnx")
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def require_onnx():
    """The onnx module, or a ModelError that says how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ModelError("reading and writing ONNX needs the onnx package: pip install 'clnn[onnx]'") from exc
    return onnx


def load(model, batch=1):
    """A clnn.Model from an ONNX file path, its bytes or an onnx.ModelProto;
    a symbolic or unknown batch (first) dimension of the inputs becomes
    ``batch``."""
    onnx = require_onnx()
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ModelError(f"batch must be a positive integer, got {batch!r}")
    return _Importer(onnx, _read(onnx, model), int(batch)).build()


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


def _parse(read, what):
    try:
        return read()
    except Exception as exc:  # protobuf and onnx raise many kinds of error on corrupt data
        raise ModelError(f"cannot read an ONNX model from {what}: {exc}") from exc


def _opset(proto):
    versions = [o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        raise ModelError("the model imports no ai.onnx opset")
    if max(versions) not in OPSETS:
        raise ModelError(f"opset {max(versions)} is not supported; clnn reads ai.onnx opsets "
                         f"{OPSETS.start} to {OPSETS.stop - 1}")
    return max(versions)


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
            self.fail(f"{name} {list(value)} must have {count} values (clnn runs 2-D windows only)")
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
        """The clnn tensor that input ``index`` reads."""
        name = self._source(index)
        if name in self.importer.constants:
            self.fail(f"input {index} ({name!r}) is a constant; clnn needs a tensor computed from the "
                      "model inputs here")
        return name

    def constant(self, index, what):
        """The numpy value of input ``index``, which must be a constant."""
        name = self._source(index)
        if name not in self.importer.constants:
            self.fail(f"{what} ({name!r}) must be a constant (an initializer or a Constant node), "
                      "not a computed tensor")
        return self.importer.constants[name]

    def shape(self, tensor):
        """The shape of a clnn tensor as ONNX sees it."""
        return external(self.importer.shapes[tensor], self.importer.ranks[tensor])

    def axis(self, value, rank):
        if not -rank <= value < rank:
            self.fail(f"axis {value} is out of range for a rank-{rank} input")
        return value % rank

    def check_all_read(self):
        if self.unread_attrs:
            self.fail(f"attribute {sorted(self.unread_attrs)[0]!r} is not supported")
        if self.unread_inputs:
            index = min(self.unread_inputs)
            self.fail(f"input {index} ({self.proto.input[index]!r}) is not supported")
        used = self.importer.used
        for index, name in enumerate(self.proto.output[1:], start=1):
            if name in used:
                self.fail(f"output {index} ({name!r}) is used, but clnn computes only the first output")


def _first_dim_name(info):
    """The name of a graph output's symbolic batch dimension, if it has one."""
    dims = info.type.tensor_type.shape.dim if info.type.tensor_type.HasField("shape") else ()
    return dims[0].dim_param or None if dims else None


class _Importer:
    def __init__(self, onnx, proto, batch):
        self.onnx = onnx
        self.graph = proto.graph
        self.opset = _opset(proto)
        self.batch = batch
        self.inputs = {}        # graph input name -> shape
        self.symbolic = {}      # graph input name -> its batch dimension's name (None: unnamed)
        self.constants = {}     # name -> numpy value (initializers, Constant nodes)
        self.alias = {}         # Identity/Dropout output -> the tensor it names
        self.shapes, self.ranks = {}, {}    # clnn tensors: 4-D shape, rank seen outside
        self.layers = []
        self.used = {name for node in self.graph.node for name in node.input if name}
        self.used |= {o.name for o in self.graph.output}

    def resolve(self, name):
        return self.alias.get(name, name)

    def defined(self, name):
        return name in self.shapes or name in self.constants or name in self.alias

    def build(self):
        for tensor in self.graph.initializer:
            self.constants[tensor.name] = self.array(tensor, f"initializer {tensor.name!r}")
        self.inputs = {i.name: self._input_shape(i) for i in self.graph.input if i.name not in self.constants}
        for name, shape in self.inputs.items():
            self.shapes[name], self.ranks[name] = to4d(shape), len(shape)
        for node in self.graph.node:
            self._convert(node)
        outputs = [o.name for o in self.graph.output]
        for name in outputs:
            self._bind_output(name, outputs)
        model = Model(self.inputs, self.layers, outputs, name=self.graph.name or "model")
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
        if not 2 <= len(shape) <= 4:
            raise ModelError(f"graph input {name!r} has rank {len(shape)}; clnn supports ranks 2 to 4")
        return tuple(shape)

    def _convert(self, proto):
        node = _Node(proto, self)
        if proto.domain not in DEFAULT_DOMAINS:
            node.fail(f"domain {proto.domain!r} is not supported; clnn runs ai.onnx ops only")
        convert = CONVERTERS.get(node.op)
        if convert is None:
            node.fail(f"op type {node.op!r} is not supported; supported: {', '.join(sorted(CONVERTERS))}")
        if not proto.output or not proto.output[0]:
            node.fail("it has no output")
        for name in proto.output:
            if name and self.defined(name):
                node.fail(f"output {name!r} is already defined")
        try:
            result = convert(node)
            node.check_all_read()
            if isinstance(result, Layer):
                self._add(result)
            elif isinstance(result, np.ndarray):
                self.constants[node.out] = result
            else:
                self.alias[node.out] = result
        except (ValueError, TypeError) as exc:   # ModelError from the layers included
            if str(exc).startswith(node.prefix):
                raise
            raise ModelError(f"{node.prefix}: {exc}") from exc

    def _add(self, layer):
        in_ranks = [self.ranks[t] for t in layer.inputs]
        layer.bind([self.shapes[t] for t in layer.inputs], in_ranks)
        self.shapes[layer.name] = layer.out_shape
        self.ranks[layer.name] = layer.out_rank(in_ranks)
        self.layers.append(layer)

    def _bind_output(self, name, outputs):
        """Make graph output ``name`` the name of a layer."""
        if outputs.count(name) > 1:
            raise ModelError(f"graph output {name!r} is listed twice")
        source = self.resolve(name)
        if source in self.constants:
            raise ModelError(f"graph output {name!r} is a constant; clnn computes outputs from the inputs")
        if source not in self.shapes:
            raise ModelError(f"graph output {name!r} is produced by no node")
        if source in self.inputs and source == name:
            raise ModelError(f"graph output {name!r} is a graph input; clnn needs a node between them")
        if source == name:
            return
        if source in self.inputs or source in outputs:
            self._add(Copy(name, source))
        else:
            self._rename(source, name)

    def _rename(self, old, new):
        for layer in self.layers:
            if layer.name == old:
                layer.name = new
            layer.inputs = tuple(new if t == old else t for t in layer.inputs)
        self.alias = {k: new if v == old else v for k, v in self.alias.items()}
        self.shapes[new], self.ranks[new] = self.shapes.pop(old), self.ranks.pop(old)


# converters: each takes a _Node and returns a Layer, a tensor name (an alias)
# or a numpy array (a constant) --------------------------------------------------------

def _need_rank(node, tensor, rank):
    if len(node.shape(tensor)) != rank:
        node.fail(f"input {tensor!r} has shape {node.shape(tensor)}; clnn supports rank {rank} here")


def _window(node, kernel, size):
    """Strides, dilations and pads (top, left, bottom, right) of a Conv or
    pool node over an input of spatial ``size``; SAME pads are worked out."""
    stride = node.ints("strides", 2, (1, 1))
    dilation = node.ints("dilations", 2, (1, 1))
    pads = node.ints("pads", 4, (0, 0, 0, 0))
    mode = node.attr("auto_pad", "NOTSET")
    if mode not in AUTO_PADS:
        node.fail(f"auto_pad {mode!r} is not one of {', '.join(AUTO_PADS)}")
    if mode != "NOTSET" and any(pads):
        node.fail(f"pads {list(pads)} cannot be given with auto_pad {mode}")
    if mode.startswith("SAME"):
        pads = same_pads(Attrs(kernel=kernel, stride=stride, dilation=dilation), *size, mode)
    return {"stride": stride, "dilation": dilation, "pads": pads}


def _conv(node):
    x = node.tensor(0)
    _need_rank(node, x, 4)
    weight = node.constant(1, "the weight")
    if weight.ndim != 4:
        node.fail(f"only 2-D convolutions are supported; the weight has shape {weight.shape}")
    bias = node.constant(2, "the bias") if node.has(2) else None
    kernel = node.ints("kernel_shape", 2, weight.shape[2:])
    if kernel != weight.shape[2:]:
        node.fail(f"kernel_shape {list(kernel)} differs from the weight's {list(weight.shape[2:])}")
    groups, channels = node.attr("group", 1), node.shape(x)[1]
    if groups < 1 or channels % groups:
        node.fail(f"group {groups} does not divide {channels} input channels")
    return Conv2d(node.out, x, weight, bias, groups=groups, **_window(node, kernel, node.shape(x)[2:]))


def _pool(kind):
    def convert(node):
        x = node.tensor(0)
        _need_rank(node, x, 4)
        kernel = node.ints("kernel_shape", 2)
        window = _window(node, kernel, node.shape(x)[2:])
        extra = {}
        if kind == "max" and node.attr("storage_order", 0):
            node.fail("storage_order 1 is not supported")
        if kind == "avg":
            if window["dilation"] != (1, 1):
                node.fail(f"dilations {list(window['dilation'])} are not supported for average pooling")
            extra["count_include_pad"] = bool(node.attr("count_include_pad", 0))
        return Pool(node.out, x, kind, kernel, ceil_mode=bool(node.attr("ceil_mode", 0)), **window, **extra)
    return convert


def _global_pool(kind):
    def convert(node):
        x = node.tensor(0)
        _need_rank(node, x, 4)
        return Pool(node.out, x, kind)
    return convert


def _lrn(node):
    x = node.tensor(0)
    _need_rank(node, x, 4)
    size = node.attr("size")
    if size is None:
        node.fail("attribute size is required")
    return LRN(node.out, x, size, node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0))


def _gemm(node):
    x = node.tensor(0)
    _need_rank(node, x, 2)
    if node.attr("transA", 0):
        node.fail("transA=1 is not supported")
    b = node.constant(1, "B")
    if b.ndim != 2:
        node.fail(f"B must be 2-D, got shape {b.shape}")
    weight = node.attr("alpha", 1.0) * (b if node.attr("transB", 0) else b.T)
    beta = node.attr("beta", 1.0)
    bias = beta * _bias_vector(node, node.constant(2, "C"), weight.shape[0]) if node.has(2) else None
    return Dense(node.out, x, weight, bias)


def _bias_vector(node, c, m):
    """Gemm's C as one value per output: (M,), (1, M) or a scalar."""
    if c.size == 1:
        return np.full(m, float(c.reshape(-1)[0]))
    if c.shape in ((m,), (1, m)):
        return c.reshape(-1)
    node.fail(f"C of shape {c.shape} is not supported; it must be ({m},), (1, {m}) or a scalar")


def _matmul(node):
    x = node.tensor(0)
    _need_rank(node, x, 2)
    b = node.constant(1, "the right operand")
    if b.ndim != 2:
        node.fail(f"the right operand must be a 2-D matrix, got shape {b.shape}")
    return Dense(node.out, x, b.T)


def _binary(node):
    if node.is_constant(0) and node.is_constant(1):
        node.fail("both operands are constants; fold them before importing")
    for tensor_at, constant_at in ((0, 1), (1, 0)):
        if node.is_constant(constant_at):
            x = node.tensor(tensor_at)
            return Binary(node.out, x, node.op, constant=node.constant(constant_at, "the operand"),
                          reverse=constant_at == 0, rank=len(node.shape(x)))
    a, b = node.tensor(0), node.tensor(1)
    shapes = node.shape(a), node.shape(b)
    if len(shapes[0]) != len(shapes[1]):
        node.fail(f"operands of shapes {shapes[0]} and {shapes[1]} must have the same rank")
    out = np.broadcast_shapes(*shapes)
    if out not in shapes:
        node.fail(f"operands of shapes {shapes[0]} and {shapes[1]} broadcast to {out}; clnn needs one of them "
                  "to have the output's shape")
    # clnn's first operand has the output's shape: swap them where it is the second
    if out != shapes[0]:
        return Binary(node.out, (b, a), node.op, reverse=True)
    return Binary(node.out, (a, b), node.op)


def _activation(name):
    def convert(node):
        return Activation(node.out, node.tensor(0), name)
    return convert


def _leaky_relu(node):
    return Activation(node.out, node.tensor(0), ("leaky_relu", node.attr("alpha", 0.01)))


def _clip(node):
    bounds = []
    for index, default in ((1, -np.inf), (2, np.inf)):
        value = node.constant(index, "the bound") if node.has(index) else np.array(default)
        if value.size != 1:
            node.fail(f"bounds must be scalars, got shape {value.shape}")
        bounds.append(float(value.reshape(-1)[0]))
    return Activation(node.out, node.tensor(0), ("clip", *bounds))


def _batch_norm(node):
    x = node.tensor(0)
    if node.attr("training_mode", 0):
        node.fail("training_mode=1 is not supported (inference only)")
    node.ignore("momentum")
    gamma, beta, mean, var = (node.constant(i, what).astype(np.float64).reshape(-1)
                              for i, what in enumerate(("scale", "B", "mean", "var"), start=1))
    channels = node.shape(x)[1]
    if {gamma.size, beta.size, mean.size, var.size} != {channels}:
        node.fail(f"scale, B, mean and var must hold one value per channel ({channels})")
    scale = gamma / np.sqrt(var + node.attr("epsilon", 1e-5))
    return ScaleShift(node.out, x, scale, beta - mean * scale)


def _concat(node):
    tensors = [node.tensor(i) for i in range(len(node.proto.input))]
    ranks = {len(node.shape(t)) for t in tensors}
    if len(ranks) > 1:
        node.fail(f"inputs of different ranks {sorted(ranks)}")
    axis = node.attr("axis")
    if axis is None:
        node.fail("attribute axis is required")
    if node.axis(axis, ranks.pop()) != 1:
        node.fail(f"axis {axis} is not supported; only the channel axis (1) is")
    return Concat(node.out, tensors)


def _softmax(node):
    x = node.tensor(0)
    shape = node.shape(x)
    raw = node.attr("axis", 1 if node.opset < 13 else -1)
    axis = node.axis(raw, len(shape))
    # before opset 13 Softmax normalises over all axes from ``axis`` on
    if axis != 1 or (node.opset < 13 and np.prod(shape[2:]) != 1):
        node.fail(f"softmax over axis {raw} of a {shape} tensor in opset {node.opset} is not supported; "
                  "clnn normalises over the channel axis (1) only")
    return Softmax(node.out, x)


def _flatten(node):
    x = node.tensor(0)
    axis = node.attr("axis", 1)
    if node.axis(axis, len(node.shape(x))) != 1:
        node.fail(f"axis {axis} is not supported; only axis 1 (keep the batch) is")
    return Reshape(node.out, x)


def _reshape(node):
    x = node.tensor(0)
    shape = [int(s) for s in node.constant(1, "the shape").reshape(-1)]
    if node.attr("allowzero", 0) and 0 in shape:
        node.fail("allowzero=1 with a 0 in the shape is not supported")
    return Reshape(node.out, x, shape)


def _identity(node):
    return node.constant(0, "the input") if node.is_constant(0) else node.tensor(0)


def _dropout(node):
    node.ignore("seed", "ratio")
    if node.has(1):
        node.constant(1, "ratio")   # unused at inference, read only to be checked
    if node.has(2) and np.any(node.constant(2, "training_mode")):
        node.fail("training_mode=true is not supported (inference only)")
    return _identity(node)


def _constant(node):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            value = node.attr(key)
            if key == "value":
                return node.importer.array(value, node.prefix)
            return np.array(value, dtype=np.float32 if "float" in key else np.int64)
    node.fail("only tensor, float and int constants are supported")


CONVERTERS = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul,
    "Add": _binary, "Sub": _binary, "Mul": _binary, "Div": _binary,
    "Relu": _activation("relu"), "Sigmoid": _activation("sigmoid"), "Tanh": _activation("tanh"),
    "LeakyRelu": _leaky_relu, "Clip": _clip,
    "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalMaxPool": _global_pool("max"), "GlobalAveragePool": _global_pool("avg"),
    "LRN": _lrn, "BatchNormalization": _batch_norm, "Concat": _concat, "Softmax": _softmax,
    "Flatten": _flatten, "Reshape": _reshape, "Identity": _identity, "Dropout": _dropout,
    "Constant": _constant,
}
