"""Slice (any axes, negative and clamped indices, negative steps) and
Split, whose outputs are one Slice each, all reading the same input."""

import numpy as np

from ..errors import ModelError
from .nd import Axis, IndexMap, Rearrange
from .registry import OpEntry


class Slice(Rearrange):
    """ONNX Slice: along each of ``axes`` (default 0, 1, ...), indices
    starts, starts + steps, ... up to ``ends`` (exclusive), counted from the
    end where negative and clamped to the dim."""
    op = "Slice"

    def __init__(self, name, inputs, starts, ends, axes=None, steps=None):
        super().__init__(name, inputs)
        self.starts, self.ends = [int(s) for s in starts], [int(e) for e in ends]
        self.axes = list(range(len(self.starts))) if axes is None else [int(a) for a in axes]
        self.steps = [1] * len(self.starts) if steps is None else [int(s) for s in steps]
        if not len(self.starts) == len(self.ends) == len(self.axes) == len(self.steps):
            raise ModelError(f"Slice node {name!r}: starts, ends, axes and steps differ in length")
        if 0 in self.steps:
            raise ModelError(f"Slice node {name!r}: steps {self.steps} must not be 0")
        self.picks = None

    def describe(self):
        return "Slice " + ", ".join(f"{k}: {s}::{t}x{n}" for k, (s, t, n) in enumerate(self.picks)
                                    if (s, t, n) != (0, 1, self.in_dims[0][k]))

    def infer(self, in_dims):
        dims = in_dims[0]
        rank = len(dims)
        if any(not -rank <= a < rank for a in self.axes) or len({a % rank for a in self.axes}) != len(self.axes):
            raise ModelError(f"Slice node {self.name!r}: axes {self.axes} do not fit a {list(dims)} input")
        picks = [(0, 1, d) for d in dims]
        for axis, start, end, step in zip(self.axes, self.starts, self.ends, self.steps):
            picks[axis % rank] = _pick(start, end, step, dims[axis % rank])
        self.picks = picks
        return tuple(count for _, _, count in picks)

    def index_map(self):
        inp, out = self.spaces()
        return IndexMap(out, inp, [Axis(k, start, step) for k, (start, step, _) in enumerate(self.picks)])

    def reference(self, x):
        x = x.reshape(self.in_dims[0])
        for axis, (start, step, count) in enumerate(self.picks):
            x = np.take(x, start + step * np.arange(count), axis=axis)
        return x.reshape(self.out_shape)

    def to_onnx(self, writer):
        dims = self.in_dims[0]
        cut = [k for k, pick in enumerate(self.picks) if pick != (0, 1, dims[k])] or [0]
        starts = [self.picks[k][0] for k in cut]
        # an end before index 0 (a negative step down to the first element) is written past -dim, as
        # -1 would count from the end
        ends = [start + step * count if start + step * count >= 0 else -dims[k] - 1
                for k, (start, step, count) in ((k, self.picks[k]) for k in cut)]
        steps = [self.picks[k][1] for k in cut]
        inputs = [writer.const(self, what, values, np.int64)
                  for what, values in (("starts", starts), ("ends", ends), ("axes", cut), ("steps", steps))]
        writer.node(self, "Slice", [self.inputs[0], *inputs])


def _pick(start, end, step, dim):
    """(first index, step, count) of ONNX's slice start:end:step of a dim."""
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return start, step, max(0, -(-(end - start) // step))


def _slice(node):
    x = node.tensor(0)
    values = [node.constant(i, what).reshape(-1).tolist() if node.has(i) else None
              for i, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps"))]
    return Slice(node.out, x, *values)


def _split(node):
    """One Slice per output read by something."""
    x = node.tensor(0)
    dims = node.shape(x)
    axis = node.axis(node.attr("axis", 0), len(dims))
    outputs = node.outputs
    if node.opset < 13:
        sizes = node.attr("split")
    else:
        sizes = node.constant(1, "split").reshape(-1).tolist() if node.has(1) else None
    parts = node.attr("num_outputs") if node.opset >= 18 else None
    if sizes is not None and parts is not None:
        node.fail("split and num_outputs cannot both be given")
    if sizes is None:
        parts = parts or len(outputs)
        if parts != len(outputs):
            node.fail(f"num_outputs {parts} differs from the {len(outputs)} outputs")
        if node.opset >= 18 and node.attr("num_outputs") is not None:
            chunk = -(-dims[axis] // parts)     # equal parts, the last smaller
        elif dims[axis] % parts:
            node.fail(f"axis {axis} of {list(dims)} does not split into {parts} equal parts")
        else:
            chunk = dims[axis] // parts
        sizes = [min(chunk, dims[axis] - k * chunk) for k in range(parts)]
    sizes = [int(s) for s in sizes]
    if len(sizes) != len(outputs) or sum(sizes) != dims[axis] or min(sizes) < 1:
        node.fail(f"sizes {sizes} do not split axis {axis} of {list(dims)} into {len(outputs)} non-empty parts")
    starts = np.cumsum([0] + sizes)
    return [Slice(name, x, [starts[k]], [starts[k + 1]], [axis]) if node.used(k) else None
            for k, name in enumerate(outputs)]


OP = OpEntry(layers=(Slice,), onnx={"Slice": _slice, "Split": _split}, sources=("nd",))
