"""Elementwise layers: binary ops with numpy broadcasting (Add, Sub, Mul,
Div, Pow, Max, Min, PRelu; n-ary Sum, Max, Min, Mean; Clip with tensor
bounds), standalone activations (and plain copies), per-channel scale and
shift."""

import numpy as np

from ..box import Box
from ..errors import ModelError
from ..host import page_aligned
from .base import (OUT, In, Launch, Layer, Out, Param, activation_args, activation_name, apply_activation, box_args,
                   flat_launch, plane_launch)
from .registry import OpEntry

# the op codes of kernels/eltwise.cl
OPS = {"Add": 1, "Sub": 2, "Mul": 3, "Div": 4, "Pow": 7, "Max": 9, "Min": 10, "PRelu": 11}
# the codes computing b OP a, for a fast kernel that needs the operands swapped
SWAPPED = {"Add": 1, "Sub": 5, "Mul": 3, "Div": 6, "Pow": 8, "Max": 9, "Min": 10}
NUMPY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power,
         "Max": np.maximum, "Min": np.minimum, "PRelu": lambda x, slope: np.where(x < 0, x * slope, x)}
# ops folded over their operands in turn: a layer's op -> the op of each step
VARIADIC = {"Add": "Add", "Mul": "Mul", "Max": "Max", "Min": "Min", "Mean": "Add"}
B_TENSOR, B_CHANNEL, B_SCALAR = 0, 1, 2
DIMS = 6    # the strided kernel's dimensions (clnn.box.MAX_RANK)
# the kernels that find their element with CLNN_BOX_OFFSET, and so may run
# on a plane grid (clnn_eltwise_strided needs the column split: flat)
PLANE_GRID_KERNELS = ("clnn_eltwise_box", "clnn_scale_shift_box")


def flat_box_launch(target, kernel, out_shape, box, args):
    """A launch over the elements of ``box``, with the box geometry
    arguments every elementwise kernel takes: on GPUs, for the kernels of
    PLANE_GRID_KERNELS, a plane grid where it fits (base.plane_launch,
    CLNN_PLANE_GRID in eltwise.cl); else 1-D."""
    _, _, h, w = out_shape
    count = box.count(w)
    args = {**args, "H": h, "W": w, **box_args(box), "count": count}
    if target.kind == "gpu" and kernel in PLANE_GRID_KERNELS:
        grid = plane_launch(target, box, w)
        if grid is not None:
            return Launch(kernel, *grid, args, ("-DCLNN_PLANE_GRID",))
    return Launch(kernel, *flat_launch(target, count), args)


def aligned(dims, rank):
    """``dims`` with 1s in front up to ``rank`` (numpy's broadcasting)."""
    return (1,) * (rank - len(dims)) + tuple(dims)


class Binary(Layer):
    """out = act(o0 OP o1 OP o2 ...), folded left to right over operands that
    are input tensors or constants, broadcast against each other as numpy
    does: the output has their broadcast shape, of rank up to 6.

    The usual form is a OP b: ``inputs`` a and b, or input a and a
    ``constant`` b (the first operand with ``reverse``). ``operands`` gives
    any order and mix: indices into ``inputs`` and constant arrays. Add, Mul,
    Max, Min and Mean take two or more operands; Clip takes x, min and max
    (it computes Min(Max(x, min), max)); the others take two.
    """
    applies_activation = True

    def __init__(self, name, inputs, op, constant=None, reverse=False, activation=None, operands=None):
        if op not in OPS and op not in VARIADIC and op != "Clip":
            raise ModelError(f"node {name!r}: unsupported elementwise op {op!r}")
        super().__init__(name, inputs)
        self.op = op
        self.activation = activation
        if operands is None:
            operands = list(range(len(self.inputs)))
            if constant is not None:
                operands.insert(0 if reverse else len(operands), np.asarray(constant, dtype=np.float32))
        self.operands = [int(o) if isinstance(o, (int, np.integer)) else np.asarray(o, dtype=np.float32)
                         for o in operands]
        count = len(self.operands)
        wanted = "3" if op == "Clip" else "2 or more" if op in VARIADIC else "2"
        if count < 2 or (op == "Clip" and count != 3) or (op not in VARIADIC and op != "Clip" and count != 2):
            raise ModelError(f"{op} node {name!r} takes {wanted} operands, got {count}")
        if sorted(o for o in self.operands if isinstance(o, int)) != list(range(len(self.inputs))):
            raise ModelError(f"{op} node {name!r}: operands {self._refs()} must use each of its "
                             f"{len(self.inputs)} inputs once")

    @property
    def arity(self):
        return len(self.inputs)

    def describe(self):
        text = self.op + (" const" if len(self.inputs) < len(self.operands) else "")
        if self.activation:
            text += f" {activation_name(self.activation)}"
        return text

    # operands ----------------------------------------------------------------------------
    def _constant_names(self):
        """{operand position: name} of the constant operands, as weights() names them."""
        positions = [i for i, o in enumerate(self.operands) if not isinstance(o, int)]
        names = ["b"] if len(positions) == 1 else [f"b{k}" for k in range(len(positions))]
        return dict(zip(positions, names))

    def _refs(self):
        """The operands as kernels name them: input indices and constant names."""
        names = self._constant_names()
        return [names.get(i, o) for i, o in enumerate(self.operands)]

    def _steps(self):
        """[(op, right operand)] folded onto the first operand in turn; Mean
        ends dividing by its operand count (the constant "count")."""
        refs = self._refs()
        if self.op == "Clip":
            return [("Max", refs[1]), ("Min", refs[2])]
        steps = [(VARIADIC.get(self.op, self.op), ref) for ref in refs[1:]]
        return steps + [("Div", "count")] if self.op == "Mean" else steps

    def _dims(self, ref):
        """The outside shape of an operand (a ref of _refs, or OUT)."""
        if isinstance(ref, Out):
            return self.out_dims
        if isinstance(ref, int):
            return self.in_dims[ref]
        if ref == "count":
            return ()
        return self.weights()[ref].shape

    def infer(self, in_dims):
        shapes = [tuple(in_dims[o]) if isinstance(o, int) else o.shape for o in self.operands]
        try:
            out = np.broadcast_shapes(*shapes)
        except ValueError:
            raise ModelError(f"{self.op} node {self.name!r}: operands of shapes {[list(s) for s in shapes]} do not "
                             "broadcast together") from None
        if self.op == "PRelu" and out != shapes[0]:
            raise ModelError(f"PRelu node {self.name!r}: a slope of shape {list(shapes[1])} does not broadcast to "
                             f"the input's shape {list(shapes[0])}")
        return out

    def flops(self):
        return len(self._steps()) * int(np.prod(self.out_shape))

    def weights(self):
        return {name: self.operands[i] for i, name in self._constant_names().items()}

    def _store(self, name, value):
        position = {n: i for i, n in self._constant_names().items()}[name]
        self.operands[position] = value

    def params(self, target):
        found = {name: np.ascontiguousarray(value.reshape(-1), dtype=np.float32)
                 for name, value in self.weights().items()}
        if self.op == "Mean":
            found["count"] = np.array([len(self.operands)], np.float32)
        return found

    def _fold(self, inputs, scalars=False):
        """The result in float64 of the operands, the input tensors being
        ``inputs`` (of their outside shapes; ``scalars``: constants are
        scalars, as 0-D arrays, so that any shape of inputs works)."""
        constants = dict(self.weights(), count=np.array(len(self.operands)))
        values = [np.asarray(inputs[ref] if isinstance(ref, int) else constants[ref], np.float64)
                  for ref in self._refs() + (["count"] if self.op == "Mean" else [])]
        if scalars:
            values = [v.reshape(()) if v.size == 1 else v for v in values]
        out = values[0]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for (op, _), value in zip(self._steps(), values[1:]):
                out = NUMPY[op](out, value)
        return apply_activation(out, self.activation)

    def reference(self, *inputs):
        inputs = [x.reshape(dims) for x, dims in zip(inputs, self.in_dims)]
        return np.broadcast_to(self._fold(inputs), self.out_dims).reshape(self.out_shape)

    # fusion --------------------------------------------------------------------------------
    def residual_operands(self):
        if (self.op != "Add" or len(self.operands) != 2 or len(self.inputs) != 2 or len(set(self.inputs)) != 2
                or any(d != self.out_dims for d in self.in_dims)):
            return None
        return tuple(self.inputs[o] for o in self.operands)

    def pointwise(self):
        """f(*inputs) in float64 where this layer maps inputs of its output's
        shape element by element with scalar constants (for
        clnn.passes.recognise_activations); else None."""
        if any(d != self.out_dims for d in self.in_dims) or any(w.size != 1 for w in self.weights().values()):
            return None
        return lambda *inputs: self._fold(inputs, scalars=True)

    def as_activation(self, tensor, activation):
        return _as_activation(self, tensor, activation)

    # slicing -------------------------------------------------------------------------------
    def input_box(self, out_box, index):
        """The part of input ``index`` that the output box reads: along each
        of its first three dimensions, the box's range of the output
        dimension it lies along, or all of it where that is past the third
        (inside the output's rows) or where it broadcasts (size 1)."""
        dims = self.in_dims[index]
        lead = len(self.out_dims) - len(dims)
        ranges = []
        for j in range(3):
            if j >= len(dims) or dims[j] == 1:
                ranges.append((0, 1))
            elif lead + j < 3:
                ranges.append(out_box.range("nch"[lead + j]))
            else:
                ranges.append((0, dims[j]))
        return Box(*ranges[0], *ranges[1], *ranges[2])

    def _as_full(self, ref):
        """The argument reading operand ``ref`` as clnn_eltwise_box's a: one
        of the output's shape, maybe broadcast over the batch; else None."""
        out, dims = self.out_dims, self._dims(ref)
        if isinstance(ref, Out):
            return OUT
        if isinstance(ref, str):   # a constant is read with batch stride 0
            full = aligned(dims, max(len(out), 1))
            return Param(ref) if full[0] == 1 and full[1:] == aligned(out, len(full))[1:] else None
        if dims == out:
            return In(ref)
        if len(dims) == len(out) and dims[0] == 1 and dims[1:] == out[1:]:
            return In(ref, broadcast_batch=True)
        return None

    def _as_operand(self, ref):
        """(argument, bmode) reading operand ``ref`` as clnn_eltwise_box's b,
        or None."""
        full = self._as_full(ref)
        if full is not None:
            return full, B_TENSOR
        out, dims = self.out_dims, self._dims(ref)
        value = Param(ref) if isinstance(ref, str) else In(ref)
        if int(np.prod(dims)) == 1:
            return value, B_SCALAR
        # one value per channel, contiguous: a constant, or a tensor of the output's rank
        if (len(out) >= 2 and aligned(dims, len(out))[1] == out[1] == int(np.prod(dims))
                and (isinstance(ref, str) or len(dims) == len(out))):
            return value, B_CHANNEL
        return None

    def _strides(self, ref, prefix):
        """clnn_eltwise_strided's stride arguments for operand ``ref``."""
        dims = self._dims(ref)
        lead = len(self.out_dims) - len(dims)
        strides, step = [0] * DIMS, 1
        for j in reversed(range(len(dims))):
            if dims[j] > 1:
                strides[lead + j] = step
            step *= dims[j]
        first = -1
        if not isinstance(ref, str) and dims and dims[0] > 1:   # a tensor's first dimension steps by its _ns
            first, strides[lead] = lead, 0
        return {**{f"{prefix}_s{d}": s for d, s in enumerate(strides)}, f"{prefix}_bd": first}

    def _step_launch(self, target, box, op, left, right, activation):
        act = activation_args(activation)
        a, b = self._as_full(left), self._as_operand(right)
        if a is not None and b is not None:
            args = {"out": OUT, "a": a, "b": b[0], "op": OPS[op], "bmode": b[1], **act}
            return flat_box_launch(target, "clnn_eltwise_box", self.out_shape, box, args)
        a, b = self._as_full(right), self._as_operand(left)
        if op in SWAPPED and a is not None and b is not None:
            args = {"out": OUT, "a": a, "b": b[0], "op": SWAPPED[op], "bmode": b[1], **act}
            return flat_box_launch(target, "clnn_eltwise_box", self.out_shape, box, args)
        padded = tuple(self.out_dims) + (1,) * (DIMS - len(self.out_dims))
        args = {"out": OUT, "op": OPS[op], **act, "D4": padded[4], "D5": padded[5],
                **self._strides(left, "a"), **self._strides(right, "b")}
        for name, ref in (("a", left), ("b", right)):
            args[name] = OUT if isinstance(ref, Out) else Param(ref) if isinstance(ref, str) else In(ref)
        return flat_box_launch(target, "clnn_eltwise_strided", self.out_shape, box, args)

    def launches(self, target, box):
        steps = self._steps()
        found, left = [], self._refs()[0]
        for k, (op, right) in enumerate(steps):
            last = k == len(steps) - 1
            found.append(self._step_launch(target, box, op, left, right, self.activation if last else None))
            left = OUT  # later steps fold onto what the earlier ones wrote
        return found

    # ONNX ----------------------------------------------------------------------------------
    def to_onnx(self, writer):
        constants = self.weights()
        names = [self.inputs[ref] if isinstance(ref, int) else writer.const(self, ref, constants[ref])
                 for ref in self._refs()]
        if self.op in ("Mean", "Max", "Min") or (self.op == "Add" and len(names) > 2):
            y = writer.node(self, "Sum" if self.op == "Add" else self.op, names)
        else:
            y = names[0]
            for (op, _), name in zip(self._steps(), names[1:]):
                y = writer.node(self, op, [y, name])
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

    def pointwise(self):
        return lambda x: apply_activation(x, self.activation)

    def as_activation(self, tensor, activation):
        return _as_activation(self, tensor, activation)

    def launches(self, target, box):
        args = {"out": OUT, "a": In(0), "b": In(0), "op": 0, "bmode": B_TENSOR, **activation_args(self.activation)}
        return [flat_box_launch(target, "clnn_eltwise_box", self.out_shape, box, args)]

    def to_onnx(self, writer):
        if self.activation is None:
            writer.node(self, "Identity", [self.inputs[0]])
        else:
            writer.activation(self, self.inputs[0], self.activation)


def _as_activation(layer, tensor, activation):
    """A layer named like ``layer`` computing ``activation`` of ``tensor``
    (what clnn.passes.recognise_activations puts in the place of a group of
    elementwise layers)."""
    return Activation(layer.name, tensor, activation)


class ScaleShift(Layer):
    """out = act(x * scale[c] + shift[c]): BatchNormalization where no
    convolution precedes it to fold into."""
    op = "ScaleShift"
    applies_activation = True

    def __init__(self, name, inputs, scale, shift, activation=None):
        super().__init__(name, inputs)
        self.scale = page_aligned(np.reshape(scale, -1))
        self.shift = page_aligned(np.reshape(shift, -1))
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

def _operands(node, indices):
    """(tensors, operands) of the inputs at ``indices``: operands are
    constants (arrays) and indices into the tensors read."""
    tensors, operands = [], []
    for index in indices:
        if node.is_constant(index):
            operands.append(np.asarray(node.constant(index, f"input {index}"), dtype=np.float32))
        else:
            operands.append(len(tensors))
            tensors.append(node.tensor(index))
    if not tensors:
        node.fail("all operands are constants; fold them before importing")
    return tensors, operands


def _binary(node):
    tensors, operands = _operands(node, (0, 1))
    return Binary(node.out, tensors, node.op, operands=operands)


def _variadic(node):
    """Sum, Max, Min, Mean of one or more operands."""
    count = len(node.proto.input)
    if count == 1:
        return node.constant(0, "the input") if node.is_constant(0) else node.tensor(0)
    tensors, operands = _operands(node, range(count))
    return Binary(node.out, tensors, "Add" if node.op == "Sum" else node.op, operands=operands)


def _prelu(node):
    x = node.tensor(0)
    if node.is_constant(1):
        slope = np.asarray(node.constant(1, "the slope"), dtype=np.float32)
        if slope.size == 1 and slope.ndim <= len(node.shape(x)):
            return Activation(node.out, x, ("leaky_relu", float(slope.reshape(-1)[0])))
        return Binary(node.out, [x], "PRelu", operands=[0, slope])
    return Binary(node.out, [x, node.tensor(1)], "PRelu")


# ONNX activations: op -> (activation, its parameters as (attribute, default)),
# the defaults being ONNX's (float32) ones
ACTIVATION_OPS = {
    "Relu": ("relu",), "Sigmoid": ("sigmoid",), "Tanh": ("tanh",), "HardSwish": ("hard_swish",),
    "Softplus": ("softplus",), "Softsign": ("softsign",), "Mish": ("mish",), "Erf": ("erf",), "Exp": ("exp",),
    "Log": ("log",), "Sqrt": ("sqrt",), "Neg": ("neg",), "Abs": ("abs",), "Reciprocal": ("reciprocal",),
    "Floor": ("floor",), "Ceil": ("ceil",), "LeakyRelu": ("leaky_relu", ("alpha", 0.01)),
    "HardSigmoid": ("hard_sigmoid", ("alpha", 0.2), ("beta", 0.5)), "Elu": ("elu", ("alpha", 1.0)),
    "Selu": ("selu", ("alpha", 1.67326319217681884765625), ("gamma", 1.05070102214813232421875)),
    "Celu": ("celu", ("alpha", 1.0)), "ThresholdedRelu": ("thresholded_relu", ("alpha", 1.0)),
}


def _activation(name, *attributes):
    def convert(node):
        values = tuple(float(np.float32(node.attr(attribute, default))) for attribute, default in attributes)
        if name == "celu" and values[0] == 0:
            node.fail("alpha 0 is not allowed (Celu divides by it)")
        return Activation(node.out, node.tensor(0), (name, *values) if values else name)
    return convert


def _gelu(node):
    approximate = node.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        node.fail(f"approximate {approximate!r} is not 'none' or 'tanh'")
    return Activation(node.out, node.tensor(0), "gelu" if approximate == "none" else "gelu_tanh")


def _clip(node):
    """Clip with constant bounds is an activation; with a bound computed by
    the model, Max and then Min of it."""
    x = node.tensor(0)
    present = [index for index in (1, 2) if node.has(index)]
    for index in present:
        dims = node.shape(node.tensor(index)) if not node.is_constant(index) else node.constant(index, "a bound").shape
        if int(np.prod(dims)) != 1 or len(dims) > len(node.shape(x)):
            node.fail(f"bounds must be scalars, got shape {list(dims)}")
    if all(node.is_constant(index) for index in present):
        bounds = [float(np.asarray(node.constant(index, "the bound")).reshape(-1)[0]) if node.has(index) else default
                  for index, default in ((1, -np.inf), (2, np.inf))]
        return Activation(node.out, x, ("clip", *bounds))
    tensors, operands = _operands(node, (0, *present))
    op = "Clip" if len(present) == 2 else "Max" if present == [1] else "Min"
    return Binary(node.out, tensors, op, operands=operands)


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
    **{op: _binary for op in ("Add", "Sub", "Mul", "Div", "Pow")},
    **{op: _variadic for op in ("Sum", "Max", "Min", "Mean")},
    **{op: _activation(*spec) for op, spec in ACTIVATION_OPS.items()},
    "PRelu": _prelu, "Gelu": _gelu, "Clip": _clip, "BatchNormalization": _batch_norm})
