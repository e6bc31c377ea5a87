"""ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
ReduceL2, ReduceSumSquare, ReduceLogSum and ReduceLogSumExp over any axes
(the global pools that torch's exporters write as ReduceMean)."""

import numpy as np

from ..errors import ModelError
from .base import OUT, In, Layer, Param
from .nd import Rows, Space, rows_launch
from .registry import OpEntry

# term each element adds, how terms combine, what is done with the total (kernels/clnn_rows.h, reduce.cl)
X, ABS, SQUARE, EXP = 0, 1, 2, 3
ADD, MUL, MAX, MIN = 0, 1, 2, 3
NONE, MEAN, SQRT, LOG, LOG_PLUS_MAX = 0, 1, 2, 3, 4

OPS = {
    "ReduceSum": ((X, ADD, NONE), lambda x, axes: x.sum(axis=axes, keepdims=True)),
    "ReduceMean": ((X, ADD, MEAN), lambda x, axes: x.mean(axis=axes, keepdims=True)),
    "ReduceMax": ((X, MAX, NONE), lambda x, axes: x.max(axis=axes, keepdims=True)),
    "ReduceMin": ((X, MIN, NONE), lambda x, axes: x.min(axis=axes, keepdims=True)),
    "ReduceProd": ((X, MUL, NONE), lambda x, axes: x.prod(axis=axes, keepdims=True)),
    "ReduceL1": ((ABS, ADD, NONE), lambda x, axes: np.abs(x).sum(axis=axes, keepdims=True)),
    "ReduceL2": ((SQUARE, ADD, SQRT), lambda x, axes: np.sqrt((x * x).sum(axis=axes, keepdims=True))),
    "ReduceSumSquare": ((SQUARE, ADD, NONE), lambda x, axes: (x * x).sum(axis=axes, keepdims=True)),
    "ReduceLogSum": ((X, ADD, LOG), lambda x, axes: np.log(x.sum(axis=axes, keepdims=True))),
    "ReduceLogSumExp": ((EXP, ADD, LOG_PLUS_MAX),
                        lambda x, axes: np.log(np.exp(x).sum(axis=axes, keepdims=True))),
}
# opsets from which the axes are an input instead of an attribute
AXES_INPUT_FROM = {op: 13 if op == "ReduceSum" else 18 for op in OPS}


class Reduce(Layer):
    """``op`` (an ONNX Reduce* op type) over ``axes`` (None: all), keeping
    them as 1s where ``keepdims``."""

    def __init__(self, name, inputs, op, axes=None, keepdims=True):
        super().__init__(name, inputs)
        if op not in OPS:
            raise ModelError(f"node {name!r}: unknown reduction {op!r}")
        self.op = op
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.keepdims = bool(keepdims)
        self.rows = None

    def describe(self):
        return f"{self.op} {list(self.rows.axes)}"

    def infer(self, in_dims):
        dims = in_dims[0]
        axes = range(len(dims)) if self.axes is None else self.axes
        if any(not -len(dims) <= a < len(dims) for a in axes) or len({a % len(dims) for a in axes}) != len(axes):
            raise ModelError(f"{self.op} node {self.name!r}: axes {list(axes)} do not fit a {list(dims)} input")
        self.rows = Rows(dims, [a % len(dims) for a in axes])
        if self.keepdims:
            return self.rows.kept
        return tuple(d for k, d in enumerate(dims) if k not in self.rows.axes)

    def flops(self):
        return int(np.prod(self.in_shapes[0]))

    def reference(self, x):
        x = x.astype(np.float64).reshape(self.in_dims[0])
        return OPS[self.op][1](x, self.rows.axes).reshape(self.out_shape)

    def input_box(self, out_box, index):
        ranges = Space(self.rows.kept, self.out_shape).ranges(out_box)
        ranges = [(0, d) if k in self.rows.axes else r for k, (r, d) in enumerate(zip(ranges, self.rows.dims))]
        return self.rows.space.box(ranges)

    def params(self, target):
        return {"rows": self.rows.table()}

    def launches(self, target, box):
        term, comb, post = OPS[self.op][0]
        args = {"out": OUT, "in": In(0), "rows": Param("rows"), "term": term, "comb": comb, "post": post}
        return [rows_launch(target, "clnn_reduce", self.out_shape, box, args, self.rows)]

    def to_onnx(self, writer):
        axes = list(self.rows.axes)
        keepdims = int(self.keepdims)
        if writer.opset >= AXES_INPUT_FROM[self.op]:
            writer.node(self, self.op, [self.inputs[0], writer.const(self, "axes", axes, np.int64)], keepdims=keepdims)
        else:
            writer.node(self, self.op, [self.inputs[0]], axes=axes, keepdims=keepdims)


def _from_onnx(node):
    x = node.tensor(0)
    rank = len(node.shape(x))
    keepdims = node.attr("keepdims", 1)
    if node.opset >= AXES_INPUT_FROM[node.op]:
        axes = node.constant(1, "axes").reshape(-1).tolist() if node.has(1) else []
        if node.attr("noop_with_empty_axes", 0) and not axes:
            return x
    else:
        axes = list(node.attr("axes", []))
    axes = [node.axis(int(a), rank) for a in axes]
    if len(set(axes)) != len(axes):
        node.fail(f"axes {axes} name an axis twice")
    return Reduce(node.out, x, node.op, axes or None, keepdims)


OP = OpEntry(layers=(Reduce,), onnx={op: _from_onnx for op in OPS}, sources=("reduce",))
