"""MaxPool, AveragePool and their global forms."""

import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import (OUT, Attrs, In, Launch, Layer, box_args, grid_launch, onnx_attrs_1d, onnx_spatial_rank, onnx_window,
                   pads4, pair)
from .registry import OpEntry

# windows up to this many elements are built into the kernel (unrolled); a
# bigger one (a global pool over a large map) would only lengthen the build
MAX_FIXED_WINDOW = 64


class Pool(Layer):
    def __init__(self, name, inputs, kind, kernel=None, stride=None, pads=0, dilation=1,
                 ceil_mode=False, count_include_pad=False):
        """``kind``: "max" or "avg"; ``kernel=None`` pools globally."""
        super().__init__(name, inputs)
        if kind not in ("max", "avg"):
            raise ModelError(f"node {name!r}: pool kind must be max or avg, got {kind!r}")
        self.kind = kind
        self.is_global = kernel is None
        self.op = ("Global" if self.is_global else "") + ("MaxPool" if kind == "max" else "AveragePool")
        self.count_include_pad = bool(count_include_pad)
        self.attrs = None
        if not self.is_global:
            kernel = pair(kernel, "kernel_shape", name)
            self.attrs = Attrs(kernel=kernel, stride=pair(stride if stride is not None else 1, "strides", name),
                               dilation=pair(dilation, "dilations", name), pads=pads4(pads, name),
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

    def window(self):
        """The pooling window over the bound input (a global pool's covers it)."""
        return Attrs(kernel=tuple(self.in_shapes[0][2:])) if self.is_global else self.attrs

    def infer(self, in_dims):
        dims = in_dims[0]
        if len(dims) != 4 and not (len(dims) == 3 and (self.is_global or self.attrs.one_dimensional)):
            raise ModelError(f"{self.op} node {self.name!r}: input must be (N, C, H, W), or (N, C, L) for a (k, 1) "
                             f"window, got shape {list(dims)}")
        n, c, h, w = tuple(dims) + (1,) * (4 - len(dims))
        window = Attrs(kernel=(h, w)) if self.is_global else self.attrs
        return (n, c, *window.out_size(h, w))[:len(dims)]

    def flops(self):
        kh, kw = self.window().kernel
        return int(np.prod(self.out_shape)) * kh * kw

    def reference(self, x):
        n, c, h, w = x.shape
        _, _, oh, ow = self.out_shape
        a = self.window()
        (kh, kw), (sh, sw), (dh, dw) = a.kernel, a.stride, a.dilation
        pt, pl, pb, pr = a.pads
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
                    # taps inside the padded input: a ceil_mode window may pass its end
                    taps = (len(range(hs, min(hs + dh * (kh - 1) + 1, h + pb), dh))
                            * len(range(ws, min(ws + dw * (kw - 1) + 1, w + pr), dw)))
                    area = taps if self.count_include_pad else len(rows) * len(cols)
                    out[:, :, i, j] = window.sum(axis=(2, 3)) / area
        return out

    def input_box(self, out_box, index):
        lo, hi = self.window().input_rows(out_box.h0, out_box.h1, self.in_shapes[0][2])
        return Box(out_box.n0, out_box.n1, out_box.c0, out_box.c1, lo, hi)

    def launches(self, target, box):
        _, _, h, w = self.in_shapes[0]
        _, _, oh, ow = self.out_shape
        a = self.window()
        (kh, kw), (sh, sw), (dh, dw) = a.kernel, a.stride, a.dilation
        pt, pl, pb, pr = a.pads
        args = {"out": OUT, "in": In(0), "is_max": self.kind == "max", "count_pad": self.count_include_pad,
                "H": h, "W": w, "OH": oh, "OW": ow, "KH": kh, "KW": kw, "sh": sh, "sw": sw, "dh": dh, "dw": dw,
                "pad_top": pt, "pad_left": pl, "pad_bottom": pb, "pad_right": pr, **box_args(box),
                "bn": box.n1 - box.n0}
        if target.kind == "cpu":
            # one work-item per channel and batch item, the window built in (kernels/pool.cl)
            fixed = not self.is_global and kh * kw <= MAX_FIXED_WINDOW
            window = (f"-DCLNN_POOL_KH={kh}", f"-DCLNN_POOL_KW={kw}", f"-DCLNN_POOL_SW={sw}") if fixed else ()
            return [Launch("clnn_pool_rows_cpu", (box.c1 - box.c0, box.n1 - box.n0), (1, 1), args, window)]
        size, local = grid_launch(target, (ow, (box.c1 - box.c0) * (box.h1 - box.h0), box.n1 - box.n0))
        fixed = (f"-DCLNN_POOL_KH={kh}", f"-DCLNN_POOL_KW={kw}") if kh * kw <= MAX_FIXED_WINDOW else ()
        return [Launch("clnn_pool_box", size, local, args, fixed)]

    def to_onnx(self, writer):
        x = self.inputs[0]
        if self.is_global:
            writer.node(self, self.op, [x])
            return
        a = self.attrs
        attrs = {"kernel_shape": list(a.kernel), "strides": list(a.stride), "pads": list(a.pads),
                 "ceil_mode": int(a.ceil_mode)}
        if a.dilation != (1, 1):
            if self.kind == "avg" and writer.opset < 19:
                raise ModelError(f"AveragePool {self.name!r}: dilations need opset 19 or later, not {writer.opset}")
            attrs["dilations"] = list(a.dilation)
        if self.kind == "avg":
            attrs["count_include_pad"] = int(self.count_include_pad)
        if len(self.in_dims[0]) == 3:   # a (k, 1) window over (N, C, L): ONNX's 1-D pool
            attrs = onnx_attrs_1d(attrs)
        writer.node(self, self.op, [x], **attrs)


def _pool(kind):
    def convert(node):
        x = node.tensor(0)
        spatial = onnx_spatial_rank(node, x)
        kernel = node.ints("kernel_shape", spatial)
        window = onnx_window(node, kernel, node.shape(x)[2:])
        extra = {}
        if kind == "max" and node.attr("storage_order", 0):
            node.fail("storage_order 1 is not supported")
        if kind == "avg":
            extra["count_include_pad"] = bool(node.attr("count_include_pad", 0))
        kernel = kernel + (1,) * (2 - spatial)
        return Pool(node.out, x, kind, kernel, ceil_mode=bool(node.attr("ceil_mode", 0)), **window, **extra)
    return convert


def _global_pool(kind):
    def convert(node):
        x = node.tensor(0)
        onnx_spatial_rank(node, x)
        return Pool(node.out, x, kind)
    return convert


OP = OpEntry(layers=(Pool,), sources=("pool",), onnx={
    "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalMaxPool": _global_pool("max"), "GlobalAveragePool": _global_pool("avg")})
