"""Gather of a tensor at constant indices along one axis, as exporters
write a selection: ``x[:, 0]`` (a ViT's class token) is Gather of the
scalar index 0, which drops the axis; ``qkv[1]`` the same on axis 0. One
index, or indices stepping evenly (a strided slice, regrouped into the
indices' shape where they have several dims, as dynamo writes as_strided),
are an index map; other index patterns are refused."""

import numpy as np

from .nd import Space
from .registry import OpEntry
from .reshape import Reshape
from .slice import Slice


class Gather(Slice):
    """Slice of indices start, start + step, ... (``count`` of them) along
    ``axis``; with ``drop`` (a scalar index) the axis leaves the output."""
    op = "Gather"

    def __init__(self, name, inputs, axis, start, step=1, count=1, drop=False):
        end = start + step * count
        super().__init__(name, inputs, [start], [end if end >= 0 else -(1 << 62)], [axis], [step])
        self.axis, self.drop = int(axis), bool(drop)

    def describe(self):
        return f"Gather axis {self.axis}" if self.drop else super().describe()

    def infer(self, in_dims):
        dims = super().infer(in_dims)
        return dims[:self.axis] + dims[self.axis + 1:] if self.drop else dims

    def spaces(self):
        inp, out = super().spaces()
        if self.drop:   # the output walked with the dropped axis kept, of extent 1
            dims = self.out_dims[:self.axis] + (1,) + self.out_dims[self.axis:]
            out = Space(dims, self.out_shape)
        return inp, out

    def to_onnx(self, writer):
        start, step, count = self.picks[self.axis]
        indices = np.array(start) if self.drop else start + step * np.arange(count)
        writer.node(self, "Gather", [self.inputs[0], writer.const(self, "indices", indices, np.int64)],
                    axis=self.axis)


def _gather(node):
    x = node.tensor(0)
    dims = node.shape(x)
    axis = node.axis(node.attr("axis", 0), len(dims))
    indices = np.asarray(node.constant(1, "indices"))
    if indices.dtype.kind not in "iu":
        node.fail(f"indices must be integers, got {indices.dtype}")
    size = dims[axis]
    flat = indices.reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < -size or flat.max() >= size):
        node.fail(f"indices {flat.tolist()} are out of range for axis {axis} of size {size}")
    flat = np.where(flat < 0, flat + size, flat)
    if indices.ndim == 0:
        return Gather(node.out, x, axis, int(flat[0]), drop=True)
    steps = np.diff(flat)
    if flat.size == 0 or (steps.size and (steps[0] == 0 or np.any(steps != steps[0]))):
        node.fail(f"indices {flat[:8].tolist()}{'...' if flat.size > 8 else ''} are not supported; clnn gathers one "
                  "index or indices stepping evenly along the axis")
    name = node.out if indices.ndim == 1 else f"{node.out}/gathered"
    gathered = Gather(name, x, axis, int(flat[0]), int(steps[0]) if steps.size else 1, int(flat.size))
    if indices.ndim == 1:
        return gathered
    # indices of several dims (dynamo's as_strided over a flattened tensor): the gathered axis regrouped
    return Reshape(node.out, node.add_layer(gathered), dims[:axis] + indices.shape + dims[axis + 1:])


OP = OpEntry(layers=(Gather,), onnx={"Gather": _gather}, sources=("nd",))
