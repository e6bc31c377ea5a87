"""clnn.Model -> ONNX, so that a model built (and fused) by clnn runs in
onnxruntime and loads back with clnn.load.

Each layer becomes the ONNX nodes that compute the same function; the parts
fused into it (a residual add, an activation) become nodes of their own
after the main one. The last node of a layer writes the tensor named after
the layer; the nodes before it write fresh names that collide with no
tensor of the model. Constants are shaped so that ONNX's right-aligned
broadcasting gives what clnn computes (a per-channel value of a 4-D tensor
is (C, 1, 1)).
"""

import numpy as np

from . import __version__
from .errors import ModelError
from .graph import external
from .onnx_import import OPSETS, require_onnx
from .ops import LRN, Activation, Binary, Concat, Conv2d, Copy, Dense, Pool, Reshape, ScaleShift, Softmax
from .ops.eltwise import B_CHANNEL, B_SCALAR

ACTIVATIONS = {"relu": "Relu", "leaky_relu": "LeakyRelu", "clip": "Clip", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def to_onnx(model, opset=17):
    """The model as an onnx.ModelProto of ai.onnx ``opset`` (11 to 21)."""
    onnx = require_onnx()
    if opset not in OPSETS:
        raise ModelError(f"clnn writes ai.onnx opsets {OPSETS.start} to {OPSETS.stop - 1}, not {opset}")
    writer = _Writer(onnx, model, opset)
    for layer in model.layers:
        writer.write(layer)
    return writer.finish()


def _channel_shape(channels, rank):
    """Shape of a per-channel constant that broadcasts onto a rank-``rank`` tensor."""
    return (channels,) + (1,) * (rank - 2)


class _Writer:
    def __init__(self, onnx, model, opset):
        self.onnx, self.helper = onnx, onnx.helper
        self.model, self.opset = model, opset
        self.nodes, self.initializers = [], []
        self.taken = set(model.shapes)

    def fresh(self, base):
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def const(self, layer, what, value, dtype=np.float32):
        name = self.fresh(f"{layer.name}/{what}")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, layer, op, inputs, **attrs):
        out = self.fresh(f"{layer.name}/{op}")
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def rank(self, tensor):
        return self.model.ranks[tensor]

    def write(self, layer):
        emit = EMITTERS.get(type(layer))
        if emit is None:
            raise ModelError(f"layer {layer.name!r} of type {type(layer).__name__} cannot be written as ONNX")
        emit(self, layer)
        last = self.nodes[-1]
        last.output[0] = last.name = layer.name

    def finish(self):
        helper, float32 = self.helper, self.onnx.TensorProto.FLOAT

        def infos(tensors):
            return [helper.make_tensor_value_info(t.name, float32, list(t.shape)) for t in tensors]

        graph = helper.make_graph(self.nodes, self.model.name, infos(self.model.inputs),
                                  infos(self.model.outputs), self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name="clnn", producer_version=__version__,
                                 ir_version=helper.find_min_ir_version_for(opsets))

    # one method per layer type -------------------------------------------------------
    def activation(self, layer, x, spec):
        """Nodes of a fused activation after tensor ``x`` (none for None)."""
        if spec is None:
            return x
        name, *values = spec if isinstance(spec, tuple) else (spec,)
        if name == "leaky_relu":
            return self.node(layer, "LeakyRelu", [x], alpha=float(values[0]))
        if name == "clip":
            bounds = [self.const(layer, bound, value) for bound, value in zip(("min", "max"), values)]
            return self.node(layer, "Clip", [x, *bounds])
        return self.node(layer, ACTIVATIONS[name], [x])

    def conv(self, layer):
        a = layer.attrs
        weights = [self.const(layer, k, v) for k, v in layer.weights().items()]
        y = self.node(layer, "Conv", [layer.inputs[0], *weights], kernel_shape=list(a.kernel),
                      strides=list(a.stride), pads=list(a.pads), dilations=list(a.dilation), group=layer.groups)
        if layer.has_residual:
            y = self.node(layer, "Add", [y, layer.inputs[1]])
        self.activation(layer, y, layer.activation)

    def dense(self, layer):
        x = self.with_rank(layer, layer.inputs[0], 2)   # clnn also takes an (N, K, 1, 1) input
        weights = [self.const(layer, k, v) for k, v in layer.weights().items()]
        y = self.node(layer, "Gemm", [x, *weights], transB=1)
        self.activation(layer, y, layer.activation)

    def pool(self, layer):
        x = layer.inputs[0]
        if layer.is_global:
            self.node(layer, layer.op, [x])
            return
        a = layer.attrs
        attrs = {"kernel_shape": list(a.kernel), "strides": list(a.stride), "pads": list(a.pads),
                 "ceil_mode": int(a.ceil_mode)}
        if a.dilation != (1, 1):
            if layer.kind == "avg" and self.opset < 19:
                raise ModelError(f"AveragePool {layer.name!r}: dilations need opset 19 or later, not {self.opset}")
            attrs["dilations"] = list(a.dilation)
        if layer.kind == "avg":
            attrs["count_include_pad"] = int(layer.count_include_pad)
        self.node(layer, layer.op, [x], **attrs)

    def lrn(self, layer):
        self.node(layer, "LRN", [layer.inputs[0]], size=layer.size, alpha=layer.alpha, beta=layer.beta,
                  bias=layer.bias)

    def softmax(self, layer):
        # before opset 13 Softmax normalises over every axis from ``axis`` on,
        # which is the channel axis alone only where there are no others
        if self.opset < 13 and np.prod(layer.out_shape[2:]) != 1:
            raise ModelError(f"Softmax {layer.name!r}: a softmax over the channels of a {layer.out_shape} tensor "
                             f"needs opset 13 or later, not {self.opset}")
        self.node(layer, "Softmax", [layer.inputs[0]], axis=1)

    def binary(self, layer):
        x = layer.inputs[0]
        rank = self.rank(x)
        if layer.constant is None:
            other = self.with_rank(layer, layer.inputs[1], rank)
        elif layer.mode == B_SCALAR:
            other = self.const(layer, "operand", layer.constant.reshape(()))
        elif layer.mode == B_CHANNEL:
            other = self.const(layer, "operand", layer.constant.reshape(_channel_shape(layer.constant.size, rank)))
        else:
            shape = external(layer.out_shape, rank)
            other = self.const(layer, "operand", layer.constant.reshape((-1,) + shape[1:]))
        y = self.node(layer, layer.op, [other, x] if layer.reverse else [x, other])
        self.activation(layer, y, layer.activation)

    def with_rank(self, layer, tensor, rank):
        """``tensor`` reshaped to ``rank`` dimensions (the trailing ones it
        drops or adds are 1), as clnn, which holds both as 4-D, sees it."""
        if self.rank(tensor) == rank:
            return tensor
        shape = external(self.model.shapes[tensor], rank)
        return self.node(layer, "Reshape", [tensor, self.const(layer, "shape", shape, np.int64)])

    def scale_shift(self, layer):
        shape = _channel_shape(layer.scale.size, self.rank(layer.inputs[0]))
        y = self.node(layer, "Mul", [layer.inputs[0], self.const(layer, "scale", layer.scale.reshape(shape))])
        y = self.node(layer, "Add", [y, self.const(layer, "shift", layer.shift.reshape(shape))])
        self.activation(layer, y, layer.activation)

    def standalone_activation(self, layer):
        """An Activation layer, or a Copy (an Activation of None)."""
        if layer.activation is None:
            self.node(layer, "Identity", [layer.inputs[0]])
        else:
            self.activation(layer, layer.inputs[0], layer.activation)

    def concat(self, layer):
        self.node(layer, "Concat", list(layer.inputs), axis=1)

    def reshape(self, layer):
        x = layer.inputs[0]
        if layer.target is None:
            self.node(layer, "Flatten", [x], axis=1)
            return
        shape = external(layer.out_shape, self.rank(layer.name))
        self.node(layer, "Reshape", [x, self.const(layer, "shape", shape, np.int64)])


EMITTERS = {
    Conv2d: _Writer.conv, Dense: _Writer.dense, Pool: _Writer.pool, LRN: _Writer.lrn,
    Softmax: _Writer.softmax, Binary: _Writer.binary, ScaleShift: _Writer.scale_shift,
    Activation: _Writer.standalone_activation, Copy: _Writer.standalone_activation,
    Concat: _Writer.concat, Reshape: _Writer.reshape,
}
