"""LRN across channels, with ONNX's semantics."""

import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import OUT, In, Launch, Layer, grid_launch, i32

MAX_FIXED_SIZE = 32


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
        bc, bh, bn = box.c1 - box.c0, box.h1 - box.h0, box.n1 - box.n0
        args = [OUT, In(0), *i32(c, self.size), np.float32(self.alpha), np.float32(self.beta),
                np.float32(self.bias), *i32(h, w, box.n0, box.c0, box.h0, bc, bh, bn)]
        size, local = grid_launch(profile, (w, bc * bh, bn))
        # the window unrolls when built in; a huge one would only lengthen the build
        fixed = (f"-DCLNN_LRN_SIZE={self.size}",) if self.size <= MAX_FIXED_SIZE else ()
        if np.float32(self.beta) == np.float32(0.75):
            fixed += ("-DCLNN_LRN_BETA_3_4",)
        return [Launch("lrn", "clnn_lrn_channels", size, local, args, fixed)]
