"""Expand: a tensor broadcast to a constant shape (numpy's rules), as an
index map whose broadcast dims step 0 through the input (EdgeNeXt's
normalisation expands a norm over the channels it divides)."""

import numpy as np

from ..errors import ModelError
from .nd import Axis, IndexMap, Rearrange, Space
from .registry import OpEntry


class Expand(Rearrange):
    op = "Expand"

    def __init__(self, name, inputs, shape):
        super().__init__(name, inputs)
        self.shape = tuple(int(d) for d in shape)

    def infer(self, in_dims):
        try:
            return np.broadcast_shapes(in_dims[0], self.shape)
        except ValueError:
            raise ModelError(f"Expand node {self.name!r}: cannot expand {list(in_dims[0])} to "
                             f"{list(self.shape)}") from None

    def _aligned(self):
        dims = self.in_dims[0]
        return (1,) * (len(self.out_dims) - len(dims)) + tuple(dims)

    def index_map(self):
        aligned = self._aligned()
        inp, out = Space(aligned, self.in_shapes[0]), Space(self.out_dims, self.out_shape)
        return IndexMap(out, inp, [Axis(k, 0, 0 if a == 1 else 1) for k, a in enumerate(aligned)])

    def reference(self, x):
        return np.broadcast_to(x.reshape(self.in_dims[0]), self.out_dims).reshape(self.out_shape)

    def to_onnx(self, writer):
        writer.node(self, "Expand", [self.inputs[0], writer.const(self, "shape", self.shape, np.int64)])


def _expand(node):
    return Expand(node.out, node.tensor(0), node.constant(1, "the shape").reshape(-1).tolist())


OP = OpEntry(layers=(Expand,), onnx={"Expand": _expand}, sources=("nd",))
