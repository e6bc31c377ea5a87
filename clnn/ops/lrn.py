"""LRN across channels, with ONNX's semantics."""

import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import OUT, In, Launch, Layer, flat_launch, i32


class LRN(Layer):
    op = "LRN"

    def __init__(self, name, inputs, size, alpha=1e-4, beta=0.75, bias=1.0):
        super().__init__(name, (inputs,) if isinstance(inputs, str) else inputs)
        self.size, self.alpha, self.beta, self.bias = int(size), float(alpha), float(beta), float(bias)
        if self.size < 1:
            raise ModelError(f"LRN node {name!r}: size must be >= 1, got {size}")

    def describe(self):
        return f"LRN {self.size}"

    def infer(self, in_shapes):
        return in_shapes[0]

    def flops(self):
        return int(np.prod(self.out_shape)) * (2 * self.size + 4)

    def reference(self, x):
        x = x.astype(np.float64)
        c = x.shape[1]
        sq = np.zeros_like(x)
        for k in range(c):
            lo, hi = max(k - (self.size - 1) // 2, 0), min(k + self.size // 2, c - 1)
            sq[:, k] = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        return x / (self.bias + self.alpha / self.size * sq) ** self.beta

    def input_box(self, out_box, index):
        c = self.in_shapes[0][1]
        lo = max(out_box.c0 - (self.size - 1) // 2, 0)
        hi = min(out_box.c1 + self.size // 2, c)
        return Box(out_box.n0, out_box.n1, lo, hi, out_box.h0, out_box.h1)

    def launches(self, profile, box):
        _, c, h, w = self.out_shape
        count = box.count(w)
        args = [OUT, In(0), *i32(c, self.size), np.float32(self.alpha), np.float32(self.beta),
                np.float32(self.bias), *i32(h, w, box.n0, box.c0, box.h0, box.c1 - box.c0, box.h1 - box.h0,
                                            count)]
        size, local = flat_launch(profile, count)
        return [Launch("lrn", "clnn_lrn_channels", size, local, args)]
