"""Softmax and LogSoftmax along any axis (and, before opset 13, over every
axis from ``axis`` on, as ONNX then defined them)."""

import numpy as np

from ..errors import ModelError
from .base import OUT, In, Param
from .nd import Groupwise, Rows
from .registry import OpEntry


class Softmax(Groupwise):
    op = "Softmax"

    def __init__(self, name, inputs, axis=1, log=False, flatten=False):
        """Normalises along ``axis`` (and every axis after it where
        ``flatten``); ``log`` makes it LogSoftmax."""
        super().__init__(name, inputs)
        self.axis, self.log, self.flatten = int(axis), bool(log), bool(flatten)
        self.op = "LogSoftmax" if self.log else "Softmax"

    def describe(self):
        return f"{self.op} {list(self.rows.axes)}"

    def infer(self, in_dims):
        dims = in_dims[0]
        if not -len(dims) <= self.axis < len(dims):
            raise ModelError(f"{self.op} node {self.name!r}: axis {self.axis} is out of range for a {list(dims)} input")
        axis = self.axis % len(dims)
        self.rows = Rows(dims, range(axis, len(dims)) if self.flatten else [axis])
        return dims

    def flops(self):
        return 5 * int(np.prod(self.out_shape))

    def reference(self, x):
        x = x.astype(np.float64).reshape(self.in_dims[0])
        axes = self.rows.axes
        shifted = x - x.max(axis=axes, keepdims=True)
        total = np.exp(shifted).sum(axis=axes, keepdims=True)
        out = shifted - np.log(total) if self.log else np.exp(shifted) / total
        return out.reshape(self.out_shape)

    def launches(self, target, box):
        args = {"out": OUT, "in": In(0), "rows": Param("rows"), "log_out": int(self.log)}
        return [self.rows_launch(target, "clnn_softmax", box, args)]

    def to_onnx(self, writer):
        x, dims = self.inputs[0], self.out_dims
        # the axes that matter (extent-1 axes normalise nothing)
        real = [k for k in self.rows.axes if dims[k] > 1] or [self.rows.axes[0]]
        if writer.opset >= 13 and len(real) == 1:
            writer.node(self, self.op, [x], axis=real[0])
        elif writer.opset < 13 and all(dims[k] == 1 for k in range(real[0], len(dims)) if k not in real):
            writer.node(self, self.op, [x], axis=real[0])   # then it normalises over every axis from axis on
        elif writer.opset >= 13:    # several trailing axes (as before opset 13): the last of a 2-D view
            flat = writer.node(self, "Flatten", [x], axis=real[0])
            y = writer.node(self, self.op, [flat], axis=1)
            writer.node(self, "Reshape", [y, writer.const(self, "shape", dims, np.int64)])
        else:
            raise ModelError(f"{self.op} {self.name!r}: a softmax along axis {real[0]} of a {list(dims)} tensor "
                             f"needs opset 13 or later, not {writer.opset}")


def _from_onnx(node):
    x = node.tensor(0)
    rank = len(node.shape(x))
    flatten = node.opset < 13
    axis = node.axis(node.attr("axis", 1 if flatten else -1), rank)
    return Softmax(node.out, x, axis, log=node.op == "LogSoftmax", flatten=flatten)


OP = OpEntry(layers=(Softmax,), onnx={"Softmax": _from_onnx, "LogSoftmax": _from_onnx}, sources=("softmax",))
