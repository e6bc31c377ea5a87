"""Flatten and Reshape: free, the output is a view of the input's memory."""

import numpy as np

from ..errors import ModelError
from .base import Layer


class Reshape(Layer):
    """Keeps the batch and regroups the rest: (N, C, H, W) -> (N, C*H*W) for
    Flatten, or any (N, ...) of rank 2 to 4 holding the same elements."""
    op = "Reshape"
    is_view = True

    def __init__(self, name, inputs, shape=None):
        """``shape``: the output shape (0 keeps a dimension, -1 infers one);
        None flattens everything after the batch."""
        super().__init__(name, (inputs,) if isinstance(inputs, str) else inputs)
        self.target = None if shape is None else [int(s) for s in shape]
        if self.target is None:
            self.op = "Flatten"

    def describe(self):
        return self.op

    def _resolve(self, in_shape4, in_rank):
        if self.target is None:
            return (in_shape4[0], int(np.prod(in_shape4[1:])))
        outside = in_shape4[:in_rank]
        shape = [outside[i] if s == 0 else s for i, s in enumerate(self.target)]
        total = int(np.prod(in_shape4))
        if shape.count(-1) == 1:
            known = int(np.prod([s for s in shape if s != -1]))
            if known <= 0 or total % known:
                raise ModelError(f"Reshape node {self.name!r}: cannot reshape {outside} to {self.target}")
            shape[shape.index(-1)] = total // known
        if shape.count(-1) > 1 or int(np.prod(shape)) != total or min(shape) < 1:
            raise ModelError(f"Reshape node {self.name!r}: cannot reshape {outside} to {self.target}")
        if not 2 <= len(shape) <= 4 or shape[0] != in_shape4[0]:
            raise ModelError(f"Reshape node {self.name!r}: only reshapes that keep the batch "
                             f"({in_shape4[0]}) and give rank 2 to 4 are supported, not {outside} -> {shape}")
        return tuple(shape)

    def infer(self, in_shapes):
        shape = self._resolve(in_shapes[0], self.in_ranks[0])
        self._out_rank = len(shape)
        return tuple(shape) + (1,) * (4 - len(shape))

    def out_rank(self, in_ranks):
        return self._out_rank

    def flops(self):
        return 0

    def bytes(self):
        return 0

    def reference(self, x):
        return x.reshape(self.out_shape)
