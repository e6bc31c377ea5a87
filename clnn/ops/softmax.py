"""Softmax over the channel axis (the last axis of a 2-D tensor)."""

import numpy as np

from ..errors import ModelError
from .base import OUT, In, Launch, Layer, flat_launch, i32


class Softmax(Layer):
    op = "Softmax"
    split_dims = ("n", "h")

    def __init__(self, name, inputs, axis=1):
        super().__init__(name, (inputs,) if isinstance(inputs, str) else inputs)
        if axis != 1:
            raise ModelError(f"Softmax node {name!r}: only the channel axis (1) is supported, got {axis}")

    def infer(self, in_shapes):
        return in_shapes[0]

    def flops(self):
        return 5 * int(np.prod(self.out_shape))

    def reference(self, x):
        x = x.astype(np.float64)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def input_box(self, out_box, index):
        return out_box.with_range("c", 0, self.in_shapes[0][1])

    def launches(self, profile, box):
        _, c, h, w = self.out_shape
        count = (box.n1 - box.n0) * (box.h1 - box.h0) * w
        args = [OUT, In(0), *i32(c, h, w, box.n0, box.h0, box.h1 - box.h0, count)]
        size, local = flat_launch(profile, count)
        return [Launch("softmax", "clnn_softmax_channels", size, local, args)]
