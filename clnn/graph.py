"""Graph: a DAG of layers with named inputs and outputs.

Tensors have an outside shape of rank 0 to 6 (``dims``), as ONNX sees them,
and are stored NCHW (``shapes``, see clnn.box.to4d), which is what boxes,
kernels and copies address.

A graph owns copies of the layers it is built from: binding shapes and the
fusion passes change only those copies, never the caller's objects, so one
list of layers can build several graphs.
"""

import copy
from dataclasses import dataclass

import numpy as np

from .box import to4d
from .errors import ModelError
from .passes import optimize


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as onnxruntime describes it."""
    name: str
    shape: tuple
    type: str = "tensor(float)"

    @property
    def dtype(self):
        return np.float32


class Graph:
    def __init__(self, inputs, layers, outputs, name="model", fuse=True):
        """``inputs``: {name: shape} (batch first); ``layers``: layers in any
        order, each producing the tensor of its name; ``outputs``: names of
        the tensors to return. ``fuse`` runs the graph passes (BatchNorm
        folding, activation and residual fusion)."""
        self.name = name
        if not inputs:
            raise ModelError(f"model {name!r} has no inputs")
        self.input_names = list(inputs)
        self.output_names = list(outputs)
        self._input_dims = {k: tuple(int(d) for d in v) for k, v in inputs.items()}
        # {input or output name: name of its batch dimension, or None}: the
        # tensors whose batch an ONNX file left symbolic; empty for fixed models
        self.symbolic_batch = {}
        # what an ONNX file said about itself (onnxruntime's ModelMetadata fields)
        self.metadata = {"producer_name": "clnn", "graph_name": name}
        self._build([copy.copy(layer) for layer in layers])
        if fuse:
            self._build(optimize(self.layers, self.output_names))

    def _build(self, layers):
        self.dims = dict(self._input_dims)
        self.layers = self._sorted(layers)
        self.producer = {}
        for layer in self.layers:
            self.dims[layer.name] = layer.bind([self.dims[t] for t in layer.inputs])
            self.producer[layer.name] = layer
        self.shapes = {k: to4d(v) for k, v in self.dims.items()}
        for out in self.output_names:
            if out not in self.dims:
                raise ModelError(f"model output {out!r} is produced by no node")
        self.consumers = {t: [] for t in self.dims}
        for layer in self.layers:
            for t in layer.inputs:
                self.consumers[t].append(layer)
        claimed = set()
        for layer in self.layers:
            layer.decide_in_place(self, claimed)

    def _sorted(self, layers):
        """Topological order; every layer's output is the tensor named after it."""
        names = [layer.name for layer in layers]
        duplicates = {n for n in names if names.count(n) > 1} | (set(names) & set(self.input_names))
        if duplicates:
            raise ModelError(f"tensor names defined twice: {sorted(duplicates)}")
        pending, done, order = list(layers), set(self.input_names), []
        while pending:
            ready = [layer for layer in pending if all(t in done for t in layer.inputs)]
            if not ready:
                layer = pending[0]
                missing = [t for t in layer.inputs if t not in done and t not in names]
                if missing:
                    raise ModelError(f"{layer.op} node {layer.name!r} reads {missing[0]!r}, which no node "
                                     "or model input produces")
                raise ModelError(f"the graph has a cycle through {layer.op} node {layer.name!r}")
            for layer in ready:
                pending.remove(layer)
                done.add(layer.name)
                order.append(layer)
        return order

    # description ---------------------------------------------------------------
    @property
    def inputs(self):
        return [TensorInfo(n, self.dims[n]) for n in self.input_names]

    @property
    def outputs(self):
        return [TensorInfo(n, self.dims[n]) for n in self.output_names]

    @property
    def batch(self):
        return self.shapes[self.input_names[0]][0]

    def layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def flops(self):
        return sum(layer.flops() for layer in self.layers)

    def param_count(self):
        return sum(layer.param_count() for layer in self.layers)

    def summary_text(self):
        """The summary table: layers, output shapes, parameters, MFLOP."""
        rows = [("layer", "op", "output", "params", "MFLOP")]
        for layer in self.layers:
            shape = "x".join(map(str, layer.out_dims))
            rows.append((layer.name, layer.describe(), shape, f"{layer.param_count():,}",
                         f"{layer.flops() / 1e6:.2f}"))
        rows.append(("total", "", "", f"{self.param_count():,}", f"{self.flops() / 1e6:.2f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [f"model {self.name!r}: inputs " + ", ".join(
            f"{i.name} {'x'.join(map(str, i.shape))}" for i in self.inputs)]
        for k, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
            if k == 0 or k == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def summary(self):
        """Print the summary table (``summary_text`` returns it)."""
        print(self.summary_text())

    def load_state_dict(self, state):
        """Set constants from {"<layer>.<constant>": array}, torch's naming
        (``conv1.weight``, ``fc3.bias``); shapes must match."""
        for key, value in state.items():
            layer_name, _, constant = key.rpartition(".")
            try:
                layer = self.layer(layer_name)
            except KeyError:
                raise ModelError(f"{key!r}: model {self.name!r} has no layer {layer_name!r}") from None
            layer.assign(constant, value)

    def reference(self, feeds):
        """Run the model with every layer's numpy reference (for tests)."""
        values = {k: np.asarray(v, dtype=np.float32).reshape(self.shapes[k]) for k, v in feeds.items()}
        for layer in self.layers:
            values[layer.name] = layer.reference(*[values[t] for t in layer.inputs]).astype(np.float32)
        return [values[n].reshape(self.dims[n]) for n in self.output_names]


def single_layer(layer):
    """A graph holding just (a copy of) this bound layer, its inputs fed
    from outside: what a layer is measured alone in."""
    alone = copy.copy(layer)
    alone.inputs = tuple(f"in{i}" for i in range(len(layer.inputs)))
    return Graph(dict(zip(alone.inputs, layer.in_dims)), [alone], [alone.name], name=layer.name, fuse=False)
