"""Elementwise layers: Add/Sub/Mul/Div (with broadcast), standalone
activations (and plain copies), per-channel scale and shift."""


import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import (OUT, In, Launch, Layer, Param, activation_args, activation_name, apply_activation, box_args,
                   flat_launch, plane_launch)
from .registry import OpEntry

OPS = {"Add": 1, "Sub": 2, "Mul": 3, "Div": 4}
REVERSED = {"Sub": 5, "Div": 6}
NUMPY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
B_TENSOR, B_CHANNEL, B_SCALAR = 0, 1, 2
ACTIVATION_OPS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def flat_box_launch(target, kernel, out_shape, box, args):
    """A launch over the elements of ``box``, with the box geometry
    arguments every elementwise kernel takes: 1-D on CPUs; on GPUs a plane
    grid (base.plane_launch, CLNN_PLANE_GRID in eltwise.cl)."""
    _, _, h, w = out_shape
    count = box.count(w)
    args = {**args, "H": h, "W": w, **box_args(box), "count": count}
    if target.kind == "gpu":
        return Launch(kernel, *plane_launch(target, box, w), args, ("-DCLNN_PLANE_GRID",))
    return Launch(kernel, *flat_launch(target, count), args)


def broadcast_mode(full, operand, name):
    """How an operand of outside shape ``operand`` broadcasts onto a tensor
    of outside shape ``full``: B_TENSOR (same shape, or batch 1), B_CHANNEL
    (one value per channel) or B_SCALAR."""
    operand, full = tuple(operand), tuple(full)
    if len(operand) > len(full):
        raise ModelError(f"node {name!r}: operand of shape {list(operand)} has more dimensions than the "
                         f"{len(full)}-D input")
    aligned = (1,) * (len(full) - len(operand)) + operand
    if all(d == 1 for d in aligned):
        return B_SCALAR
    if aligned[1:] == full[1:] and aligned[0] in (1, full[0]):
        return B_TENSOR
    if len(full) > 1 and aligned[1] == full[1] and all(d == 1 for i, d in enumerate(aligned) if i != 1):
        return B_CHANNEL
    raise ModelError(f"cannot broadcast an operand of shape {list(operand)} onto {list(full)}; "
                     "supported are the same shape, batch 1, one value per channel, or a scalar")


class Binary(Layer):
    """out = act(a OP b). ``b`` is a second input tensor, or a constant
    (``constant=``); ``reverse`` computes b OP a."""
    applies_activation = True

    def __init__(self, name, inputs, op, constant=None, reverse=False, activation=None):
        if op not in OPS:
            raise ModelError(f"node {name!r}: unsupported elementwise op {op!r}")
        super().__init__(name, inputs)
        self.op = op
        self.constant = None if constant is None else np.asarray(constant, dtype=np.float32)
        self.reverse = reverse
        self.activation = activation
        self.mode = None

    @property
    def arity(self):
        return 1 if self.constant is not None else 2

    def describe(self):
        text = f"{self.op}{' const' if self.constant is not None else ''}"
        if self.activation:
            text += f" {activation_name(self.activation)}"
        return text

    def infer(self, in_dims):
        operand = self.constant.shape if self.constant is not None else in_dims[1]
        self.mode = broadcast_mode(in_dims[0], operand, self.name)
        return in_dims[0]

    def weights(self):
        return {"b": self.constant} if self.constant is not None else {}

    def _store(self, name, value):
        self.constant = value

    def params(self, target):
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

    def residual_operands(self):
        if (self.op != "Add" or self.constant is not None or self.mode != B_TENSOR
                or self.in_dims[0] != self.in_dims[1] or len(set(self.inputs)) != 2):
            return None
        return self.inputs

    def input_box(self, out_box, index):
        if index == 0:
            return out_box
        shape = self.in_shapes[1]
        if self.mode == B_TENSOR:
            return out_box if shape[0] > 1 else Box(0, 1, out_box.c0, out_box.c1, out_box.h0, out_box.h1)
        return Box.whole(shape)

    def launches(self, target, box):
        if self.constant is not None:
            operand = Param("b")
        else:
            operand = In(1, broadcast_batch=self.in_shapes[1][0] == 1 < self.out_shape[0])
        code = REVERSED[self.op] if self.reverse and self.op in REVERSED else OPS[self.op]
        args = {"out": OUT, "a": In(0), "b": operand, "op": code, "bmode": self.mode,
                **activation_args(self.activation)}
        return [flat_box_launch(target, "clnn_eltwise_box", self.out_shape, box, args)]

    def to_onnx(self, writer):
        x = self.inputs[0]
        rank = writer.rank(x)
        if self.constant is None:
            other = writer.with_rank(self, self.inputs[1], rank)
        elif self.mode == B_SCALAR:
            other = writer.const(self, "operand", self.constant.reshape(()))
        elif self.mode == B_CHANNEL:
            other = writer.const(self, "operand", self.constant.reshape((self.constant.size,) + (1,) * (rank - 2)))
        else:
            other = writer.const(self, "operand", self.constant.reshape((-1,) + tuple(self.out_dims[1:])))
        y = writer.node(self, self.op, [other, x] if self.reverse else [x, other])
        writer.activation(self, y, self.activation)


class Activation(Layer):
    """A standalone activation (where it could not be fused into its
    producer); with ``activation=None``, a plain copy."""
    op = "Activation"

    def __init__(self, name, inputs, activation):
        super().__init__(name, inputs)
        activation_args(activation)  # validates
        self.activation = activation

    def describe(self):
        return activation_name(self.activation) if self.activation else "Copy"

    def standalone_activation(self):
        return self.activation

    def infer(self, in_dims):
        return in_dims[0]

    def reference(self, x):
        return apply_activation(x.astype(np.float64), self.activation)

    def launches(self, target, box):
        args = {"out": OUT, "a": In(0), "b": In(0), "op": 0, "bmode": B_TENSOR, **activation_args(self.activation)}
        return [flat_box_launch(target, "clnn_eltwise_box", self.out_shape, box, args)]

    def to_onnx(self, writer):
        if self.activation is None:
            writer.node(self, "Identity", [self.inputs[0]])
        else:
            writer.activation(self, self.inputs[0], self.activation)


class ScaleShift(Layer):
    """out = act(x * scale[c] + shift[c]): BatchNormalization where no
    convolution precedes it to fold into."""
    op = "ScaleShift"
    applies_activation = True

    def __init__(self, name, inputs, scale, shift, activation=None):
        super().__init__(name, inputs)
        self.scale = np.ascontiguousarray(scale, dtype=np.float32).reshape(-1)
        self.shift = np.ascontiguousarray(shift, dtype=np.float32).reshape(-1)
        self.activation = activation

    def infer(self, in_dims):
        channels = in_dims[0][1] if len(in_dims[0]) > 1 else 1
        if channels != self.scale.size or self.shift.size != self.scale.size:
            raise ModelError(f"node {self.name!r}: {self.scale.size} scales for {channels} channels")
        return in_dims[0]

    def weights(self):
        return {"scale": self.scale, "shift": self.shift}

    def reference(self, x):
        out = x.astype(np.float64) * self.scale.reshape(1, -1, 1, 1) + self.shift.reshape(1, -1, 1, 1)
        return apply_activation(out, self.activation)

    def scale_and_shift(self):
        return self.scale.astype(np.float64), self.shift.astype(np.float64)

    def launches(self, target, box):
        args = {"out": OUT, "a": In(0), "scale": Param("scale"), "shift": Param("shift"),
                **activation_args(self.activation)}
        return [flat_box_launch(target, "clnn_scale_shift_box", self.out_shape, box, args)]

    def to_onnx(self, writer):
        shape = (self.scale.size,) + (1,) * (writer.rank(self.inputs[0]) - 2)
        y = writer.node(self, "Mul", [self.inputs[0], writer.const(self, "scale", self.scale.reshape(shape))])
        y = writer.node(self, "Add", [y, writer.const(self, "shift", self.shift.reshape(shape))])
        writer.activation(self, y, self.activation)


# ONNX ------------------------------------------------------------------------------------

def _binary(node):
    if node.is_constant(0) and node.is_constant(1):
        node.fail("both operands are constants; fold them before importing")
    for tensor_at, constant_at in ((0, 1), (1, 0)):
        if node.is_constant(constant_at):
            x = node.tensor(tensor_at)
            return Binary(node.out, x, node.op, constant=node.constant(constant_at, "the operand"),
                          reverse=constant_at == 0)
    a, b = node.tensor(0), node.tensor(1)
    shapes = node.shape(a), node.shape(b)
    if len(shapes[0]) != len(shapes[1]):
        node.fail(f"operands of shapes {list(shapes[0])} and {list(shapes[1])} must have the same rank")
    out = np.broadcast_shapes(*shapes)
    if out not in shapes:
        node.fail(f"operands of shapes {list(shapes[0])} and {list(shapes[1])} broadcast to {list(out)}; clnn "
                  "needs one of them to have the output's shape")
    # clnn's first operand has the output's shape: swap them where it is the second
    if out != shapes[0]:
        return Binary(node.out, (b, a), node.op, reverse=True)
    return Binary(node.out, (a, b), node.op)


def _activation(name):
    def convert(node):
        return Activation(node.out, node.tensor(0), name)
    return convert


def _leaky_relu(node):
    return Activation(node.out, node.tensor(0), ("leaky_relu", node.attr("alpha", 0.01)))


def _clip(node):
    bounds = []
    for index, default in ((1, -np.inf), (2, np.inf)):
        value = node.constant(index, "the bound") if node.has(index) else np.array(default)
        if value.size != 1:
            node.fail(f"bounds must be scalars, got shape {list(value.shape)}")
        bounds.append(float(value.reshape(-1)[0]))
    low, high = min(bounds), bounds[1]     # a min above the max clips everything to the max
    return Activation(node.out, node.tensor(0), ("clip", low, high))


def _batch_norm(node):
    x = node.tensor(0)
    if node.attr("training_mode", 0):
        node.fail("training_mode=1 is not supported (inference only)")
    node.ignore("momentum")
    gamma, beta, mean, var = (node.constant(i, what).astype(np.float64).reshape(-1)
                              for i, what in enumerate(("scale", "B", "mean", "var"), start=1))
    channels = node.shape(x)[1]
    if {gamma.size, beta.size, mean.size, var.size} != {channels}:
        node.fail(f"scale, B, mean and var must hold one value per channel ({channels})")
    scale = gamma / np.sqrt(var + node.attr("epsilon", 1e-5))
    return ScaleShift(node.out, x, scale, beta - mean * scale)


OP = OpEntry(layers=(Binary, Activation, ScaleShift), sources=("eltwise",), onnx={
    **{op: _binary for op in OPS}, **{op: _activation(name) for op, name in ACTIVATION_OPS.items()},
    "LeakyRelu": _leaky_relu, "Clip": _clip, "BatchNormalization": _batch_norm})
