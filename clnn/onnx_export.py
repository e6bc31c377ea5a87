"""A graph -> ONNX, so that a model built (and fused) by clnn runs in
onnxruntime and loads back with clnn.load.

Each layer writes the ONNX nodes that compute the same function
(``Layer.to_onnx``, through the writer below); the parts fused into it (a
residual add, an activation) become nodes of their own after the main one.
The last node of a layer writes the tensor named after the layer; the nodes
before it write fresh names that collide with no tensor of the model.
Constants are shaped so that ONNX's right-aligned broadcasting gives what
clnn computes (a per-channel value of a 4-D tensor is (C, 1, 1)).
"""

import numpy as np

from .errors import ModelError
from .onnx_common import OLDEST_OPSET, REVIEWED_OPSET, require_onnx
from .version import __version__

DEFAULT_OPSET = 17
# activations that one ONNX node computes: name -> (op, the attributes its
# parameters go to, the first opset with that op, fixed attributes)
ACTIVATIONS = {
    "relu": ("Relu",), "sigmoid": ("Sigmoid",), "tanh": ("Tanh",), "softplus": ("Softplus",),
    "softsign": ("Softsign",), "erf": ("Erf",), "exp": ("Exp",), "log": ("Log",), "sqrt": ("Sqrt",), "neg": ("Neg",),
    "abs": ("Abs",), "reciprocal": ("Reciprocal",), "floor": ("Floor",), "ceil": ("Ceil",),
    "leaky_relu": ("LeakyRelu", ("alpha",)), "hard_sigmoid": ("HardSigmoid", ("alpha", "beta")),
    "elu": ("Elu", ("alpha",)), "selu": ("Selu", ("alpha", "gamma")),
    "thresholded_relu": ("ThresholdedRelu", ("alpha",)),
    "celu": ("Celu", ("alpha",), 12), "hard_swish": ("HardSwish", (), 14), "mish": ("Mish", (), 18),
    "gelu": ("Gelu", (), 20), "gelu_tanh": ("Gelu", (), 20, {"approximate": "tanh"}),
}


def to_onnx(graph, opset=DEFAULT_OPSET):
    """The graph as an onnx.ModelProto of ai.onnx ``opset``."""
    onnx = require_onnx()
    newest = min(REVIEWED_OPSET, onnx.defs.onnx_opset_version())
    if not OLDEST_OPSET <= opset <= newest:
        raise ModelError(f"clnn writes ai.onnx opsets {OLDEST_OPSET} to {newest}, not {opset}")
    writer = Writer(onnx, graph, opset)
    for layer in graph.layers:
        writer.write(layer)
    return writer.finish()


class Writer:
    """What a layer's ``to_onnx`` writes with: nodes, constants, fused
    activations, rank changes."""

    def __init__(self, onnx, graph, opset):
        self.onnx, self.helper = onnx, onnx.helper
        self.graph, self.opset = graph, opset
        self.nodes, self.initializers = [], []
        self.taken = set(graph.dims)

    def fresh(self, base):
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def const(self, layer, what, value, dtype=np.float32):
        """An initializer named after the layer; returns its name."""
        name = self.fresh(f"{layer.name}/{what}")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, layer, op, inputs, **attrs):
        """A node of ``layer``; returns its output's name."""
        out = self.fresh(f"{layer.name}/{op}")
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def rank(self, tensor):
        return len(self.graph.dims[tensor])

    def write(self, layer):
        before = len(self.nodes)
        layer.to_onnx(self)
        if len(self.nodes) == before:
            raise ModelError(f"layer {layer.name!r} wrote no ONNX node")
        last = self.nodes[-1]
        last.output[0] = last.name = layer.name

    def finish(self):
        helper, float32 = self.helper, self.onnx.TensorProto.FLOAT

        def infos(tensors):
            return [helper.make_tensor_value_info(t.name, float32, list(t.shape)) for t in tensors]

        graph = helper.make_graph(self.nodes, self.graph.name, infos(self.graph.inputs),
                                  infos(self.graph.outputs), self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name="clnn", producer_version=__version__,
                                 ir_version=helper.find_min_ir_version_for(opsets))

    def activation(self, layer, x, spec):
        """Nodes of a fused activation after tensor ``x`` (none for None)."""
        if spec is None:
            return x
        name, *values = spec if isinstance(spec, tuple) else (spec,)
        if name == "clip":
            bounds = [self.const(layer, bound, value) for bound, value in zip(("min", "max"), values)]
            return self.node(layer, "Clip", [x, *bounds])
        entry = ACTIVATIONS.get(name, ())
        op, attributes, since, fixed = entry + ("", (), 1, {})[len(entry):]
        if op and self.opset >= since:
            return self.node(layer, op, [x], **dict(zip(attributes, map(float, values))), **fixed)
        return self._spelled_out(layer, x, name, values)

    def _spelled_out(self, layer, x, name, values):
        """Activations that ONNX has no op for (SiLU), or not in this opset,
        as the nodes exporters write for them: mostly x * gate(x)."""
        def scalar(what, value):
            return self.const(layer, what, np.float32(value))

        def node(op, *inputs, **attrs):
            return self.node(layer, op, list(inputs), **attrs)

        if name == "celu":   # alpha * Elu(x / alpha)
            return node("Mul", node("Elu", node("Div", x, scalar("alpha", values[0]))), scalar("alpha", values[0]))
        if name == "silu":
            gate = node("Sigmoid", x)
        elif name == "hard_swish":
            gate = node("HardSigmoid", x, alpha=1 / 6, beta=0.5)
        elif name == "mish":
            gate = node("Tanh", node("Softplus", x))
        elif name == "gelu":   # (1 + erf(x / sqrt 2)) / 2
            gate = node("Erf", node("Div", x, scalar("sqrt2", np.sqrt(2))))
            gate = node("Mul", node("Add", gate, scalar("one", 1)), scalar("half", 0.5))
        elif name == "gelu_tanh":   # (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) / 2
            cubic = node("Mul", node("Pow", x, scalar("three", 3)), scalar("k", 0.044715))
            gate = node("Tanh", node("Mul", node("Add", x, cubic), scalar("scale", np.sqrt(2 / np.pi))))
            gate = node("Mul", node("Add", gate, scalar("one", 1)), scalar("half", 0.5))
        else:
            raise ModelError(f"layer {layer.name!r}: activation {name!r} cannot be written as ONNX")
        return node("Mul", x, gate)

    def with_rank(self, layer, tensor, rank):
        """``tensor`` reshaped to ``rank`` dimensions (the trailing ones it
        drops or adds are 1)."""
        if self.rank(tensor) == rank:
            return tensor
        shape = self.graph.shapes[tensor][:rank] if rank <= 4 else None
        if shape is None:
            raise ModelError(f"layer {layer.name!r}: cannot write a rank-{rank} view of {tensor!r}")
        return self.node(layer, "Reshape", [tensor, self.const(layer, "shape", shape, np.int64)])
