"""Flatten and Reshape: free, the output is a view of the input's memory."""

import numpy as np

from ..box import MAX_RANK
from ..errors import ModelError
from .base import Layer
from .registry import OpEntry


class Reshape(Layer):
    """Regroups the elements of its input: (N, C, H, W) -> (N, C*H*W) for
    Flatten, or any shape of rank 1 to 6 holding the same elements."""
    op = "Reshape"
    is_view = True
    split_dims = ()

    def __init__(self, name, inputs, shape=None, allowzero=False):
        """``shape``: the output shape (0 keeps a dimension unless
        ``allowzero``, -1 infers one); None flattens everything after the
        batch."""
        super().__init__(name, inputs)
        self.target = None if shape is None else [int(s) for s in shape]
        self.allowzero = bool(allowzero)
        if self.target is None:
            self.op = "Flatten"

    def infer(self, in_dims):
        dims = in_dims[0]
        total = int(np.prod(dims))
        if self.target is None:
            return (dims[0], total // dims[0]) if dims else (1, 1)
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
            writer.node(self, "Flatten", [x], axis=1)
            return
        writer.node(self, "Reshape", [x, writer.const(self, "shape", self.out_dims, np.int64)])


def _flatten(node):
    x = node.tensor(0)
    axis = node.attr("axis", 1)
    if node.axis(axis, len(node.shape(x))) != 1:
        node.fail(f"axis {axis} is not supported; only axis 1 (keep the batch) is")
    return Reshape(node.out, x)


def _reshape(node):
    x = node.tensor(0)
    shape = [int(s) for s in node.constant(1, "the shape").reshape(-1)]
    allowzero = bool(node.attr("allowzero", 0))
    if allowzero and 0 in shape:
        node.fail("allowzero=1 with a 0 in the shape makes an empty tensor, which clnn does not run")
    return Reshape(node.out, x, shape, allowzero)


OP = OpEntry(layers=(Reshape,), onnx={"Flatten": _flatten, "Reshape": _reshape})
