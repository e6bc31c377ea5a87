"""Flatten, Reshape, Squeeze and Unsqueeze: free, the output is a view of
the input's memory (a view that moves the batch, such as ShuffleNet's
channel shuffle, makes its readers read the whole storage)."""

import numpy as np

from ..box import MAX_RANK
from ..errors import ModelError
from .base import Layer
from .registry import OpEntry


class Reshape(Layer):
    """Regroups the elements of its input: into (product of the dims before
    ``axis``, product of the rest) for Flatten, or any shape of rank 0 to 6
    holding the same elements."""
    op = "Reshape"
    is_view = True
    split_dims = ()

    def __init__(self, name, inputs, shape=None, allowzero=False, axis=1):
        """``shape``: the output shape (0 keeps a dimension unless
        ``allowzero``, -1 infers one); None flattens at ``axis``."""
        super().__init__(name, inputs)
        self.target = None if shape is None else [int(s) for s in shape]
        self.allowzero = bool(allowzero)
        self.axis = int(axis)
        if self.target is None:
            self.op = "Flatten"

    def infer(self, in_dims):
        dims = in_dims[0]
        total = int(np.prod(dims))
        if self.target is None:
            if not -len(dims) <= self.axis <= len(dims):
                raise ModelError(f"Flatten node {self.name!r}: axis {self.axis} is out of range for {list(dims)}")
            axis = self.axis + len(dims) if self.axis < 0 else self.axis
            return (int(np.prod(dims[:axis])), int(np.prod(dims[axis:])))
        shape = [dims[i] if s == 0 and not self.allowzero and i < len(dims) else s
                 for i, s in enumerate(self.target)]
        if shape.count(-1) == 1:
            known = int(np.prod([s for s in shape if s != -1]))
            if known <= 0 or total % known:
                raise ModelError(f"Reshape node {self.name!r}: cannot reshape {list(dims)} to {self.target}")
            shape[shape.index(-1)] = total // known
        if shape.count(-1) > 1 or int(np.prod(shape)) != total or min(shape, default=1) < 1:
            raise ModelError(f"Reshape node {self.name!r}: cannot reshape {list(dims)} to {self.target}")
        if len(shape) > MAX_RANK:
            raise ModelError(f"Reshape node {self.name!r}: rank {len(shape)} is above the largest, {MAX_RANK}")
        return tuple(shape)

    def flops(self):
        return 0

    def bytes(self):
        return 0

    def reference(self, x):
        return x.reshape(self.out_shape)

    def to_onnx(self, writer):
        x = self.inputs[0]
        if self.target is None:
            writer.node(self, "Flatten", [x], axis=self.axis)
            return
        writer.node(self, "Reshape", [x, writer.const(self, "shape", self.out_dims, np.int64)])


def _flatten(node):
    x = node.tensor(0)
    rank = len(node.shape(x))
    axis = node.attr("axis", 1)
    if not -rank <= axis <= rank:
        node.fail(f"axis {axis} is out of range for a rank-{rank} input")
    return Reshape(node.out, x, axis=axis + rank if axis < 0 else axis)


def _reshape(node):
    x = node.tensor(0)
    shape = [int(s) for s in node.constant(1, "the shape").reshape(-1)]
    allowzero = bool(node.attr("allowzero", 0))
    if allowzero and 0 in shape:
        node.fail("allowzero=1 with a 0 in the shape makes an empty tensor, which clnn does not run")
    return Reshape(node.out, x, shape, allowzero)


def _axes(node):
    """The axes of Squeeze and Unsqueeze: an attribute before opset 13, an
    input since (None where absent)."""
    if node.opset < 13:
        axes = node.attr("axes")
    else:
        axes = node.constant(1, "axes").reshape(-1).tolist() if node.has(1) else None
    return None if axes is None else [int(a) for a in axes]


def _squeeze(node):
    x = node.tensor(0)
    dims = node.shape(x)
    axes = _axes(node)
    if axes is None:
        axes = [k for k, d in enumerate(dims) if d == 1]
    axes = {node.axis(a, len(dims)) for a in axes}
    if any(dims[a] != 1 for a in axes):
        node.fail(f"axes {sorted(axes)} of {list(dims)} are not all 1")
    return Reshape(node.out, x, [d for k, d in enumerate(dims) if k not in axes])


def _unsqueeze(node):
    x = node.tensor(0)
    dims = list(node.shape(x))
    axes = _axes(node)
    if not axes:
        node.fail("axes are required")
    rank = len(dims) + len(axes)
    axes = sorted(node.axis(a, rank) for a in axes)
    if len(set(axes)) != len(axes):
        node.fail(f"axes {axes} name an axis twice")
    for a in axes:
        dims.insert(a, 1)
    return Reshape(node.out, x, dims)


OP = OpEntry(layers=(Reshape,), onnx={"Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze,
                                      "Unsqueeze": _unsqueeze})
