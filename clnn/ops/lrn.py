"""LRN across channels, with ONNX's semantics."""

import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import OUT, In, Launch, Layer, box_args, grid_launch, onnx_need_rank
from .registry import OpEntry

MAX_FIXED_SIZE = 32


class LRN(Layer):
    op = "LRN"

    def __init__(self, name, inputs, size, alpha=1e-4, beta=0.75, bias=1.0):
        super().__init__(name, inputs)
        self.size, self.alpha, self.beta, self.bias = int(size), float(alpha), float(beta), float(bias)
        if self.size < 1:
            raise ModelError(f"LRN node {name!r}: size must be >= 1, got {size}")

    def describe(self):
        return f"LRN {self.size}"

    def infer(self, in_dims):
        if len(in_dims[0]) < 2:
            raise ModelError(f"LRN node {self.name!r}: input must have a channel axis, got {list(in_dims[0])}")
        return in_dims[0]

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

    def launches(self, target, box):
        _, c, h, w = self.out_shape
        args = {"out": OUT, "in": In(0), "C": c, "size": self.size, "alpha": self.alpha, "beta": self.beta,
                "bias": self.bias, "H": h, "W": w, **box_args(box), "bn": box.n1 - box.n0}
        size, local = grid_launch(target, (w, (box.c1 - box.c0) * (box.h1 - box.h0), box.n1 - box.n0))
        # the window unrolls when built in; a huge one would only lengthen the build
        fixed = (f"-DCLNN_LRN_SIZE={self.size}",) if self.size <= MAX_FIXED_SIZE else ()
        if np.float32(self.beta) == np.float32(0.75):
            fixed += ("-DCLNN_LRN_BETA_3_4",)
        return [Launch("clnn_lrn_channels", size, local, args, fixed)]

    def to_onnx(self, writer):
        writer.node(self, "LRN", [self.inputs[0]], size=self.size, alpha=self.alpha, beta=self.beta, bias=self.bias)


def _from_onnx(node):
    x = node.tensor(0)
    onnx_need_rank(node, x, 4)
    size = node.attr("size")
    if size is None:
        node.fail("attribute size is required")
    return LRN(node.out, x, size, node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0))


OP = OpEntry(layers=(LRN,), onnx={"LRN": _from_onnx}, sources=("lrn",))
