"""Pad in constant, edge, reflect and wrap modes, with negative pads (which
crop): one N-D copy whose indices outside the input follow the mode."""

import numpy as np

from ..errors import ModelError
from .nd import Axis, IndexMap, Rearrange
from .registry import OpEntry

MODES = ("constant", "edge", "reflect", "wrap")


class Pad(Rearrange):
    """``pads``: ONNX's (begin of each dim..., end of each dim...);
    negative pads crop, and the other pads then work on what is left, as in
    onnxruntime."""
    op = "Pad"

    def __init__(self, name, inputs, pads, mode="constant", value=0.0):
        super().__init__(name, inputs)
        self.pads = [int(p) for p in pads]
        self.mode, self.value = str(mode), float(value)
        if self.mode not in MODES:
            raise ModelError(f"Pad node {name!r}: mode {mode!r} is not one of {', '.join(MODES)}")

    def describe(self):
        return f"Pad {self.mode} {self.pads}"

    def infer(self, in_dims):
        dims = in_dims[0]
        rank = len(dims)
        if len(self.pads) != 2 * rank:
            raise ModelError(f"Pad node {self.name!r}: {len(self.pads)} pads for a rank-{rank} input; it takes "
                             f"{2 * rank}")
        kept = [d - max(-b, 0) - max(-e, 0) for d, b, e in zip(dims, self.pads[:rank], self.pads[rank:])]
        if min(kept, default=1) < 1:
            raise ModelError(f"Pad node {self.name!r}: pads {self.pads} crop all of {list(dims)}")
        if self.mode == "reflect" and any(max(b, e) >= k for b, e, k in zip(self.pads[:rank], self.pads[rank:], kept)):
            raise ModelError(f"Pad node {self.name!r}: reflect pads {self.pads} must be smaller than the dims "
                             f"{kept} they reflect")
        return tuple(d + b + e for d, b, e in zip(dims, self.pads[:rank], self.pads[rank:]))

    def _window(self, k):
        """(first kept index, kept length, pad before) along dim k."""
        rank = len(self.in_dims[0])
        begin, end = self.pads[k], self.pads[rank + k]
        low = max(-begin, 0)
        return low, self.in_dims[0][k] - low - max(-end, 0), max(begin, 0)

    def index_map(self):
        inp, out = self.spaces()
        axes = []
        for k in range(len(self.in_dims[0])):
            low, length, before = self._window(k)
            axes.append(Axis(k, -before, 1, low, length))
        return IndexMap(out, inp, axes, self.mode)

    def reference(self, x):
        x = x.reshape(self.in_dims[0]).astype(np.float64)
        windows = [self._window(k) for k in range(x.ndim)]
        x = x[tuple(slice(low, low + length) for low, length, _ in windows)]
        widths = [(before, out - before - length) for (_, length, before), out in zip(windows, self.out_dims)]
        extra = {"constant_values": self.value} if self.mode == "constant" else {}
        return np.pad(x, widths, mode=self.mode, **extra).reshape(self.out_shape)

    def to_onnx(self, writer):
        pads = writer.const(self, "pads", self.pads, np.int64)
        value = writer.const(self, "value", np.float32(self.value))
        writer.node(self, "Pad", [self.inputs[0], pads, value], mode=self.mode)


def _from_onnx(node):
    x = node.tensor(0)
    rank = len(node.shape(x))
    mode = node.attr("mode", "constant")
    if mode not in MODES or mode == "wrap" and node.opset < 19:
        node.fail(f"mode {mode!r} is not one of {', '.join(MODES[:3])} (and wrap from opset 19 on)")
    pads = node.constant(1, "pads").reshape(-1).tolist()
    value = 0.0
    if node.has(2):
        constant = node.constant(2, "constant_value")
        if constant.size != 1:
            node.fail(f"constant_value must be a scalar, got shape {list(constant.shape)}")
        value = float(constant.reshape(-1)[0])
    if node.has(3):
        axes = [node.axis(int(a), rank) for a in node.constant(3, "axes").reshape(-1)]
        if len(set(axes)) != len(axes) or len(pads) != 2 * len(axes):
            node.fail(f"pads {pads} do not fit axes {axes}")
        full = [0] * (2 * rank)
        for k, axis in enumerate(axes):
            full[axis], full[rank + axis] = pads[k], pads[len(axes) + k]
        pads = full
    return Pad(node.out, x, pads, mode, value)


OP = OpEntry(layers=(Pad,), onnx={"Pad": _from_onnx}, sources=("nd",))
