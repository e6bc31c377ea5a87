"""LayerNormalization (ConvNeXt, transformers) and InstanceNormalization:
normalise groups of elements by their own mean and variance, then scale
and shift by constants."""

import numpy as np

from ..errors import ModelError
from ..host import page_aligned
from .base import OUT, In, Param
from .nd import Groupwise, Rows
from .registry import OpEntry


class _Normalization(Groupwise):
    """Shared by both: subclasses say which axes form a group
    (``group_axes``) and how the constants index (``scale_steps``)."""

    def __init__(self, name, inputs, scale, bias, epsilon=1e-5):
        super().__init__(name, inputs)
        self.scale = page_aligned(scale)
        self.bias = page_aligned(bias)
        self.epsilon = float(epsilon)

    def infer(self, in_dims):
        dims = in_dims[0]
        self.rows = Rows(dims, self.group_axes(dims), self.scale_steps(dims))
        return dims

    def weights(self):
        return {"scale": self.scale, "bias": self.bias}

    def flops(self):
        return 8 * int(np.prod(self.out_shape))

    def reference(self, x):
        x = x.astype(np.float64).reshape(self.in_dims[0])
        axes = self.rows.axes
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        shape = self.constant_shape(self.in_dims[0])
        out = (x - mean) / np.sqrt(var + self.epsilon) * self.scale.reshape(shape) + self.bias.reshape(shape)
        return out.reshape(self.out_shape)

    def params(self, target):
        return {**super().params(target), "scale": self.scale.reshape(-1), "bias": self.bias.reshape(-1)}

    def launches(self, target, box):
        args = {"out": OUT, "in": In(0), "rows": Param("rows"), "scale": Param("scale"), "bias": Param("bias"),
                "epsilon": self.epsilon}
        return [self.rows_launch(target, "clnn_norm", box, args)]


class LayerNorm(_Normalization):
    """Normalises over every axis from ``axis`` on; scale and bias have
    the shape of those axes."""
    op = "LayerNormalization"

    def __init__(self, name, inputs, scale, bias, axis=-1, epsilon=1e-5):
        super().__init__(name, inputs, scale, bias, epsilon)
        self.axis = int(axis)

    def group_axes(self, dims):
        if not -len(dims) <= self.axis < len(dims):
            raise ModelError(f"{self.op} node {self.name!r}: axis {self.axis} is out of range for a {list(dims)} "
                             "input")
        axis = self.axis % len(dims)
        if self.scale.shape != tuple(dims[axis:]) or self.bias.shape != self.scale.shape:
            raise ModelError(f"{self.op} node {self.name!r}: scale {list(self.scale.shape)} and bias "
                             f"{list(self.bias.shape)} must have the normalised shape {list(dims[axis:])}")
        return range(axis, len(dims))

    def constant_shape(self, dims):
        return self.scale.shape

    def scale_steps(self, dims):
        axis = self.axis % len(dims)
        inner = np.cumprod((1,) + tuple(dims[:axis:-1]))[::-1]    # row-major steps over dims[axis:]
        return (0,) * axis + tuple(int(s) for s in inner)

    def to_onnx(self, writer):
        if writer.opset < 17:
            raise ModelError(f"{self.op} {self.name!r}: LayerNormalization needs opset 17 or later, not "
                             f"{writer.opset}")
        writer.node(self, self.op, [self.inputs[0], writer.const(self, "scale", self.scale),
                                    writer.const(self, "bias", self.bias)], axis=self.axis, epsilon=self.epsilon)


class InstanceNorm(_Normalization):
    """Normalises each channel of each batch item over its spatial axes;
    scale and bias hold one value per channel."""
    op = "InstanceNormalization"

    def group_axes(self, dims):
        if len(dims) < 3:
            raise ModelError(f"{self.op} node {self.name!r}: input must be (N, C, spatial...), got {list(dims)}")
        if self.scale.shape != (dims[1],) or self.bias.shape != self.scale.shape:
            raise ModelError(f"{self.op} node {self.name!r}: scale {list(self.scale.shape)} and bias "
                             f"{list(self.bias.shape)} must hold one value per channel ({dims[1]})")
        return range(2, len(dims))

    def constant_shape(self, dims):
        return (1, dims[1]) + (1,) * (len(dims) - 2)

    def scale_steps(self, dims):
        return (0, 1) + (0,) * (len(dims) - 2)

    def to_onnx(self, writer):
        writer.node(self, self.op, [self.inputs[0], writer.const(self, "scale", self.scale),
                                    writer.const(self, "bias", self.bias)], epsilon=self.epsilon)


def _layer_norm(node):
    x = node.tensor(0)
    dims = node.shape(x)
    axis = node.attr("axis", -1)
    shape = tuple(dims[node.axis(axis, len(dims)):])
    node.ignore("stash_type")   # the precision of the mean and variance: clnn computes them in float32
    scale = _constant(node, 1, "Scale", shape)
    bias = _constant(node, 2, "B", shape) if node.has(2) else np.zeros(shape, np.float32)
    return LayerNorm(node.out, x, scale, bias, axis, node.attr("epsilon", 1e-5))


def _instance_norm(node):
    x = node.tensor(0)
    dims = node.shape(x)
    if len(dims) < 3:
        node.fail(f"input must be (N, C, spatial...), got {list(dims)}")
    return InstanceNorm(node.out, x, _constant(node, 1, "scale", (dims[1],)), _constant(node, 2, "B", (dims[1],)),
                        node.attr("epsilon", 1e-5))


def _constant(node, index, what, shape):
    """Input ``index``, a constant broadcast to ``shape``."""
    value = node.constant(index, what).astype(np.float32)
    try:
        return np.ascontiguousarray(np.broadcast_to(value, shape))
    except ValueError:
        node.fail(f"{what} of shape {list(value.shape)} does not broadcast to {list(shape)}")


OP = OpEntry(layers=(LayerNorm, InstanceNorm), sources=("norm",),
             onnx={"LayerNormalization": _layer_norm, "InstanceNormalization": _instance_norm})
