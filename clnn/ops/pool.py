"""MaxPool, AveragePool and their global forms."""

import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import OUT, Attrs, In, Launch, Layer, grid_launch, i32
from .conv import _pair, pads4


class Pool(Layer):
    def __init__(self, name, inputs, kind, kernel=None, stride=None, pads=0, dilation=1,
                 ceil_mode=False, count_include_pad=False):
        """``kind``: "max" or "avg"; ``kernel=None`` pools globally."""
        super().__init__(name, (inputs,) if isinstance(inputs, str) else inputs)
        if kind not in ("max", "avg"):
            raise ModelError(f"node {name!r}: pool kind must be max or avg, got {kind!r}")
        self.kind = kind
        self.is_global = kernel is None
        self.op = ("Global" if self.is_global else "") + ("MaxPool" if kind == "max" else "AveragePool")
        self.count_include_pad = bool(count_include_pad)
        if not self.is_global:
            kernel = _pair(kernel, "kernel_shape", name)
            self.attrs = Attrs(kernel=kernel, stride=_pair(stride if stride is not None else 1, "strides", name),
                               dilation=_pair(dilation, "dilations", name), pads=pads4(pads, name),
                               ceil_mode=bool(ceil_mode))
            if min(kernel + self.attrs.stride + self.attrs.dilation) < 1:
                raise ModelError(f"{self.op} node {name!r}: kernel, strides and dilations must be >= 1")
            if max(self.attrs.pads) >= max(kernel):
                raise ModelError(f"{self.op} node {name!r}: pads {self.attrs.pads} must be smaller than the "
                                 f"kernel {kernel}")

    def describe(self):
        if self.is_global:
            return self.op
        (kh, kw), (sh, _) = self.attrs.kernel, self.attrs.stride
        return f"{self.op} {kh}x{kw}/{sh}"

    def infer(self, in_shapes):
        n, c, h, w = in_shapes[0]
        if self.is_global:
            self.attrs = Attrs(kernel=(h, w))
        oh, ow = self.attrs.out_size(h, w)
        return (n, c, oh, ow)

    def flops(self):
        kh, kw = self.attrs.kernel
        return int(np.prod(self.out_shape)) * kh * kw

    def reference(self, x):
        n, c, h, w = x.shape
        _, _, oh, ow = self.out_shape
        (kh, kw), (sh, sw), (dh, dw) = self.attrs.kernel, self.attrs.stride, self.attrs.dilation
        pt, pl, pb, pr = self.attrs.pads
        out = np.empty((n, c, oh, ow))
        x = x.astype(np.float64)
        for i in range(oh):
            for j in range(ow):
                hs, ws = i * sh - pt, j * sw - pl
                rows = [r for r in range(hs, hs + dh * (kh - 1) + 1, dh) if 0 <= r < h]
                cols = [q for q in range(ws, ws + dw * (kw - 1) + 1, dw) if 0 <= q < w]
                window = x[:, :, rows][:, :, :, cols]
                if self.kind == "max":
                    out[:, :, i, j] = window.max(axis=(2, 3))
                else:
                    area = ((min(hs + kh, h + pb) - hs) * (min(ws + kw, w + pr) - ws)
                            if self.count_include_pad else len(rows) * len(cols))
                    out[:, :, i, j] = window.sum(axis=(2, 3)) / area
        return out

    def input_box(self, out_box, index):
        lo, hi = self.attrs.input_rows(out_box.h0, out_box.h1, self.in_shapes[0][2])
        return Box(out_box.n0, out_box.n1, out_box.c0, out_box.c1, lo, hi)

    def launches(self, profile, box):
        _, _, h, w = self.in_shapes[0]
        _, _, oh, ow = self.out_shape
        (kh, kw), (sh, sw), (dh, dw) = self.attrs.kernel, self.attrs.stride, self.attrs.dilation
        pt, pl, pb, pr = self.attrs.pads
        bc, bh, bn = box.c1 - box.c0, box.h1 - box.h0, box.n1 - box.n0
        args = [OUT, In(0), *i32(self.kind == "max", self.count_include_pad, h, w, oh, ow, kh, kw, sh, sw,
                                 dh, dw, pt, pl, pb, pr, box.n0, box.c0, box.h0, bc, bh, bn)]
        size, local = grid_launch(profile, (ow, bc * bh, bn))
        return [Launch("pool", "clnn_pool_box", size, local, args)]
