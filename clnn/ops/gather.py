"""Gather of a tensor at constant indices along one axis, as exporters
write a selection: ``x[:, 0]`` (a ViT's class token) is Gather of the
scalar index 0, which drops the axis; ``qkv[1]`` the same on axis 0.
Constant indices of any pattern are an index map (regrouped into the
indices' shape where they have several dims, as dynamo writes
as_strided): a strided slice where they step evenly, else a list."""

import numpy as np

from ..errors import ModelError
from .nd import Axis, IndexMap, Rearrange, Space
from .registry import OpEntry
from .reshape import Reshape


class Gather(Rearrange):
    """Input indices ``indices`` (non-negative) along ``axis``, in their
    order; with ``drop`` (a scalar index) the axis leaves the output.
    Indices stepping evenly are a strided slice in the index map, others a
    list of indices it reads."""
    op = "Gather"

    def __init__(self, name, inputs, axis, indices, drop=False):
        super().__init__(name, inputs)
        self.axis, self.drop = int(axis), bool(drop)
        self.indices = tuple(int(i) for i in np.reshape(indices, -1))
        if not self.indices or min(self.indices) < 0 or (self.drop and len(self.indices) != 1):
            raise ModelError(f"Gather node {name!r}: indices {list(self.indices)[:8]} must be non-negative, one "
                             "if the axis is dropped, and at least one")

    def stepping(self):
        """(start, step) of indices that step evenly, or None."""
        steps = set(np.diff(self.indices).tolist()) or {1}
        return (self.indices[0], steps.pop()) if len(steps) == 1 and 0 not in steps else None

    def describe(self):
        return f"Gather axis {self.axis} at {len(self.indices)} indices"

    def infer(self, in_dims):
        dims = tuple(in_dims[0])
        if not 0 <= self.axis < len(dims) or max(self.indices) >= dims[self.axis]:
            raise ModelError(f"Gather node {self.name!r}: indices up to {max(self.indices)} along axis {self.axis} "
                             f"do not fit a {list(dims)} input")
        kept = dims[:self.axis] + (len(self.indices),) + dims[self.axis + 1:]
        return dims[:self.axis] + dims[self.axis + 1:] if self.drop else kept

    def spaces(self):
        inp, out = super().spaces()
        if self.drop:   # the output walked with the dropped axis kept, of extent 1
            dims = self.out_dims[:self.axis] + (1,) + self.out_dims[self.axis:]
            out = Space(dims, self.out_shape)
        return inp, out

    def index_map(self):
        inp, out = self.spaces()
        axes = [Axis(k) for k in range(len(inp.dims))]
        stepping = self.stepping()
        axes[self.axis] = Axis(self.axis, *stepping) if stepping else Axis(self.axis, indices=self.indices)
        return IndexMap(out, inp, axes)

    def reference(self, x):
        return np.take(x.reshape(self.in_dims[0]), self.indices, axis=self.axis).reshape(self.out_shape)

    def to_onnx(self, writer):
        indices = np.array(self.indices[0]) if self.drop else np.array(self.indices)
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
        return Gather(node.out, x, axis, flat, drop=True)
    if flat.size == 0:
        node.fail("indices are empty; clnn gathers at least one index")
    name = node.out if indices.ndim == 1 else f"{node.out}/gathered"
    gathered = Gather(name, x, axis, flat)
    if indices.ndim == 1:
        return gathered
    # indices of several dims (dynamo's as_strided over a flattened tensor): the gathered axis regrouped
    return Reshape(node.out, node.add_layer(gathered), dims[:axis] + indices.shape + dims[axis + 1:])


OP = OpEntry(layers=(Gather,), onnx={"Gather": _gather}, sources=("nd",))
