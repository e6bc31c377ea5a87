"""Softmax over the channel axis (the last axis of a 2-D tensor)."""

import numpy as np

from ..errors import ModelError
from .base import OUT, In, Launch, Layer, flat_launch
from .registry import OpEntry


class Softmax(Layer):
    op = "Softmax"
    split_dims = ("n", "h")

    def __init__(self, name, inputs, axis=1):
        super().__init__(name, inputs)
        if axis != 1:
            raise ModelError(f"Softmax node {name!r}: only the channel axis (1) is supported, got {axis}")

    def infer(self, in_dims):
        if len(in_dims[0]) < 2:
            raise ModelError(f"Softmax node {self.name!r}: input must have a channel axis, got {list(in_dims[0])}")
        return in_dims[0]

    def flops(self):
        return 5 * int(np.prod(self.out_shape))

    def reference(self, x):
        x = x.astype(np.float64)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def input_box(self, out_box, index):
        return out_box.with_range("c", 0, self.in_shapes[0][1])

    def launches(self, target, box):
        _, c, h, w = self.out_shape
        count = (box.n1 - box.n0) * (box.h1 - box.h0) * w
        args = {"out": OUT, "in": In(0), "C": c, "H": h, "W": w, "n0": box.n0, "h0": box.h0,
                "bh": box.h1 - box.h0, "count": count}
        size, local = flat_launch(target, count)
        return [Launch("clnn_softmax_channels", size, local, args)]

    def to_onnx(self, writer):
        # before opset 13 Softmax normalises over every axis from ``axis`` on,
        # which is the channel axis alone only where there are no others
        if writer.opset < 13 and np.prod(self.out_dims[2:]) != 1:
            raise ModelError(f"Softmax {self.name!r}: a softmax over the channels of a {list(self.out_dims)} "
                             f"tensor needs opset 13 or later, not {writer.opset}")
        writer.node(self, "Softmax", [self.inputs[0]], axis=1)


def _from_onnx(node):
    x = node.tensor(0)
    shape = node.shape(x)
    raw = node.attr("axis", 1 if node.opset < 13 else -1)
    axis = node.axis(raw, len(shape))
    # before opset 13 Softmax normalises over all axes from ``axis`` on
    if axis != 1 or (node.opset < 13 and np.prod(shape[2:]) != 1):
        node.fail(f"softmax over axis {raw} of a {list(shape)} tensor in opset {node.opset} is not supported; "
                  "clnn normalises over the channel axis (1) only")
    return Softmax(node.out, x)


OP = OpEntry(layers=(Softmax,), onnx={"Softmax": _from_onnx}, sources=("softmax",))
