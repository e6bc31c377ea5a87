"""A constant as a tensor: the output of a layer that reads nothing and
writes its value. The importer makes one where an op that clnn computes
from tensors (Concat) reads a constant the exporter wrote, such as the
class token that a vision transformer puts before its patches."""

import numpy as np

from .base import OUT, Layer, Param, activation_args
from .eltwise import DIMS, flat_box_launch
from .registry import OpEntry


class Constant(Layer):
    op = "Constant"
    arity = 0

    def __init__(self, name, value):
        super().__init__(name, ())
        self.value = np.ascontiguousarray(value, dtype=np.float32)

    def infer(self, in_dims):
        return self.value.shape

    def flops(self):
        return 0

    def weights(self):
        return {"value": self.value}

    def params(self, target):
        return {"value": self.value.reshape(-1)}

    def reference(self):
        return self.value.astype(np.float64).reshape(self.out_shape)

    def launches(self, target, box):
        # a strided copy (no op) of the value, whose first dimension has no batch stride of its own
        padded = tuple(self.out_dims) + (1,) * (DIMS - len(self.out_dims))
        strides = [int(np.prod(padded[d + 1:])) for d in range(DIMS)]
        args = {"out": OUT, "a": Param("value"), "b": Param("value"), "op": 0, **activation_args(None),
                "D4": padded[4], "D5": padded[5], "a_bd": -1, "b_bd": -1,
                **{f"{x}_s{d}": s for x in "ab" for d, s in enumerate(strides)}}
        return [flat_box_launch(target, "clnn_eltwise_strided", self.out_shape, box, args)]

    def to_onnx(self, writer):
        writer.node(self, "Identity", [writer.const(self, "value", self.value)])


OP = OpEntry(layers=(Constant,), onnx={}, sources=("eltwise",))
