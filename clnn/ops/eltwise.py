"""Elementwise layers: Add/Sub/Mul/Div (with broadcast), standalone
activations, per-channel scale and shift, and plain copies."""

import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import OUT, In, Launch, Layer, Param, activation_args, apply_activation, flat_launch, i32

OPS = {"Add": 1, "Sub": 2, "Mul": 3, "Div": 4}
REVERSED = {"Sub": 5, "Div": 6}
NUMPY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
B_TENSOR, B_CHANNEL, B_SCALAR = 0, 1, 2


def _box_args(box, shape):
    _, _, h, w = shape
    count = box.count(w)
    return count, i32(h, w, box.n0, box.c0, box.h0, box.c1 - box.c0, box.h1 - box.h0, count)


def broadcast_mode(shape4, rank, operand_shape, name):
    """How an operand of ``operand_shape`` broadcasts onto a tensor held as
    ``shape4`` (seen with ``rank``): B_TENSOR (same shape, or batch 1),
    B_CHANNEL (one value per channel) or B_SCALAR."""
    operand = tuple(operand_shape)
    if len(operand) > rank:
        raise ModelError(f"node {name!r}: operand of shape {operand} has more dimensions than the "
                         f"{rank}-D input")
    aligned = (1,) * (rank - len(operand)) + operand
    full = tuple(shape4[:rank])
    if all(d == 1 for d in aligned):
        return B_SCALAR
    if aligned[1:] == full[1:] and aligned[0] in (1, full[0]):
        return B_TENSOR
    if aligned[1] == full[1] and all(d == 1 for i, d in enumerate(aligned) if i != 1):
        return B_CHANNEL
    raise ModelError(f"node {name!r}: cannot broadcast an operand of shape {operand} onto {full}; "
                     "supported are the same shape, batch 1, one value per channel, or a scalar")


class Binary(Layer):
    """out = act(a OP b). ``b`` is a second input tensor, or a constant
    (``constant=``); ``reverse`` computes b OP a."""

    constant_attributes = {"b": "constant"}

    def __init__(self, name, inputs, op, constant=None, reverse=False, activation=None, rank=4):
        if op not in OPS:
            raise ModelError(f"node {name!r}: unsupported elementwise op {op!r}")
        inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
        super().__init__(name, inputs)
        self.op = op
        self.constant = None if constant is None else np.asarray(constant, dtype=np.float32)
        self.reverse = reverse
        self.activation = activation
        self.rank = rank
        self.mode = None

    @property
    def arity(self):
        return 1 if self.constant is not None else 2

    def describe(self):
        return f"{self.op}{' const' if self.constant is not None else ''}"

    def infer(self, in_shapes):
        a = in_shapes[0]
        operand = self.constant.shape if self.constant is not None else in_shapes[1]
        rank = self.rank if self.constant is not None else 4
        self.mode = broadcast_mode(a, rank, operand, self.name)
        return a

    def weights(self):
        return {"b": self.constant} if self.constant is not None else {}

    def params(self, profile):
        if self.constant is None:
            return {}
        return {"b": np.ascontiguousarray(self.constant.reshape(-1), dtype=np.float32)}

    def _operand4(self, b):
        if self.mode == B_SCALAR:
            return b.reshape(1, 1, 1, 1)
        if self.mode == B_CHANNEL:
            return b.reshape(1, -1, 1, 1)
        return b.reshape((-1,) + tuple(self.out_shape[1:]))

    def reference(self, a, b=None):
        b = self._operand4(self.constant if b is None else b).astype(np.float64)
        a = a.astype(np.float64)
        out = NUMPY[self.op](b, a) if self.reverse else NUMPY[self.op](a, b)
        return apply_activation(out, self.activation)

    def input_box(self, out_box, index):
        if index == 0:
            return out_box
        shape = self.in_shapes[1]
        if self.mode == B_TENSOR:
            return out_box if shape[0] > 1 else Box(0, 1, out_box.c0, out_box.c1, out_box.h0, out_box.h1)
        return Box.whole(shape)

    def launches(self, profile, box):
        count, geometry = _box_args(box, self.out_shape)
        if self.constant is not None:
            operand = [Param("b"), np.int32(0), np.int32(0)]
        else:
            operand = [In(1, broadcast_batch=self.in_shapes[1][0] == 1 < self.out_shape[0])]
        code = REVERSED[self.op] if self.reverse and self.op in REVERSED else OPS[self.op]
        args = [OUT, In(0), *operand, *i32(code, self.mode), *activation_args(self.activation), *geometry]
        size, local = flat_launch(profile, count)
        return [Launch("eltwise", "clnn_eltwise_box", size, local, args)]


class Activation(Layer):
    """A standalone activation (where it could not be fused into its producer)."""
    op = "Activation"

    def __init__(self, name, inputs, activation):
        super().__init__(name, (inputs,) if isinstance(inputs, str) else inputs)
        activation_args(activation)  # validates
        self.activation = activation

    def describe(self):
        return self.activation if isinstance(self.activation, str) else self.activation[0]

    def infer(self, in_shapes):
        return in_shapes[0]

    def reference(self, x):
        return apply_activation(x.astype(np.float64), self.activation)

    def launches(self, profile, box):
        count, geometry = _box_args(box, self.out_shape)
        args = [OUT, In(0), In(0), *i32(0, B_TENSOR), *activation_args(self.activation), *geometry]
        size, local = flat_launch(profile, count)
        return [Launch("eltwise", "clnn_eltwise_box", size, local, args)]


class Copy(Activation):
    """Copies its input (into a Concat's output where it cannot be written in place)."""
    op = "Copy"

    def __init__(self, name, inputs):
        super().__init__(name, inputs, None)

    def describe(self):
        return "Copy"


class ScaleShift(Layer):
    """out = act(x * scale[c] + shift[c]): BatchNormalization where no
    convolution precedes it to fold into."""
    op = "ScaleShift"

    def __init__(self, name, inputs, scale, shift, activation=None):
        super().__init__(name, (inputs,) if isinstance(inputs, str) else inputs)
        self.scale = np.ascontiguousarray(scale, dtype=np.float32).reshape(-1)
        self.shift = np.ascontiguousarray(shift, dtype=np.float32).reshape(-1)
        self.activation = activation

    def infer(self, in_shapes):
        if in_shapes[0][1] != self.scale.size or self.shift.size != self.scale.size:
            raise ModelError(f"node {self.name!r}: {self.scale.size} scales for {in_shapes[0][1]} channels")
        return in_shapes[0]

    def weights(self):
        return {"scale": self.scale, "shift": self.shift}

    def reference(self, x):
        out = x.astype(np.float64) * self.scale.reshape(1, -1, 1, 1) + self.shift.reshape(1, -1, 1, 1)
        return apply_activation(out, self.activation)

    def launches(self, profile, box):
        count, geometry = _box_args(box, self.out_shape)
        args = [OUT, In(0), Param("scale"), Param("shift"), *activation_args(self.activation), *geometry]
        size, local = flat_launch(profile, count)
        return [Launch("eltwise", "clnn_scale_shift_box", size, local, args)]
