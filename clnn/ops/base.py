"""What every layer provides, and the launch description it hands the executor.

A layer knows its output shape, its cost, a numpy reference, which input box
each output box needs, and how to launch its kernel(s) for any box of its
output. Launches name tensors symbolically (``In(i)``, ``OUT``, ``Param``);
the executor binds them to the buffers of the context the slice runs in, so
layers never see devices, contexts or backends.
"""

from dataclasses import dataclass, field

import numpy as np

from ..box import Box
from ..errors import ModelError

ACTIVATIONS = {None: 0, "relu": 1, "leaky_relu": 2, "clip": 3, "sigmoid": 4, "tanh": 5}


@dataclass(frozen=True)
class In:
    """Input tensor ``index`` of the layer: expands to buffer, offset, batch
    stride (0 with ``broadcast_batch``, for a batch-1 operand)."""
    index: int
    broadcast_batch: bool = False


@dataclass(frozen=True)
class Out:
    """The layer's output tensor: expands to buffer, offset, batch stride;
    ``channel_offset`` moves it by whole channels (a Concat copying an input
    into its place)."""
    channel_offset: int = 0


OUT = Out()


@dataclass(frozen=True)
class Param:
    """A constant buffer of the layer (weights): expands to the buffer."""
    name: str


@dataclass
class Launch:
    source: str                 # kernels/<source>.cl
    kernel: str                 # clnn_<op>_<variant>
    global_size: tuple
    local_size: object          # tuple or None
    args: list
    options: tuple = ()


@dataclass(frozen=True)
class Profile:
    """What kernels are tuned for: the device kind and its limits."""
    kind: str                   # "cpu" or "gpu" (accelerators take the gpu kernels)
    compute_units: int = 1
    local_mem: int = 32768
    max_work_group: int = 256

    @classmethod
    def of(cls, device):
        handle = device.handle
        local_mem = getattr(handle, "local_mem_size", 32768)
        max_wg = getattr(handle, "max_work_group_size", 256)
        return cls("cpu" if device.kind == "cpu" else "gpu", device.compute_units, int(local_mem),
                   int(max_wg))


# Fixed work-group sizes: PoCL compiles a kernel anew for every local size,
# so a size chosen by the driver per launch would recompile per shape.
FLAT_LOCAL = {"cpu": 64, "gpu": 256}


def flat_launch(profile, count):
    """(global, local) of a 1-D launch over ``count`` work-items."""
    local = FLAT_LOCAL[profile.kind]
    return (ceil_div(max(count, 1), local) * local,), (local,)


def grid_launch(profile, sizes):
    """(global, local) of a 3-D launch over (columns, channels x rows, batch)
    work-items, as kernels decode them with CLNN_GRID_ELEMENT."""
    local = (16, 4, 1) if profile.kind == "cpu" else (32, 8, 1)
    return tuple(ceil_div(max(s, 1), l) * l for s, l in zip(sizes, local)), local


def i32(*values):
    return [np.int32(v) for v in values]


def activation_args(activation):
    """(id, alpha, beta) arguments of a fused activation spec such as
    None, "relu", ("leaky_relu", 0.1) or ("clip", 0.0, 6.0)."""
    name, *values = (activation,) if not isinstance(activation, tuple) else activation
    if name not in ACTIVATIONS:
        raise ModelError(f"unsupported activation {name!r}")
    values = list(values) + [0.0] * (2 - len(values))
    return [np.int32(ACTIVATIONS[name]), np.float32(values[0]), np.float32(values[1])]


def apply_activation(x, activation):
    """numpy reference of a fused activation."""
    name, *values = (activation,) if not isinstance(activation, tuple) else activation
    if name is None:
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x >= 0, x, values[0] * x)
    if name == "clip":
        return np.clip(x, values[0], values[1])
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    raise ModelError(f"unsupported activation {name!r}")


def ceil_div(a, b):
    return -(-a // b)


class Layer:
    """Base of every layer. Subclasses set ``op`` and ``split_dims`` and
    implement ``infer``, ``reference``, ``launches`` and, where an output box
    needs less than all of an input, ``input_box``."""

    op = ""
    split_dims = ("n", "c", "h")
    # a layer whose output is a view of its input (Flatten, Reshape) has no kernel
    is_view = False

    def __init__(self, name, inputs):
        self.name = name
        self.inputs = tuple(inputs)
        self.in_shapes = None
        self.out_shape = None
        self.activation = None

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"

    # shapes -----------------------------------------------------------------
    def bind(self, in_shapes, in_ranks=None):
        """Check the input shapes (4-D, with their ranks as seen outside) and
        fix the output shape."""
        self.in_shapes = [tuple(s) for s in in_shapes]
        self.in_ranks = list(in_ranks) if in_ranks is not None else [4] * len(self.in_shapes)
        if len(self.in_shapes) != self.arity:
            raise ModelError(f"{self.op} node {self.name!r} takes {self.arity} inputs, got {len(self.in_shapes)}")
        self.out_shape = tuple(int(d) for d in self.infer(self.in_shapes))
        if any(d <= 0 for d in self.out_shape):
            raise ModelError(f"{self.op} node {self.name!r}: inputs {self.in_shapes} give an empty output "
                             f"{self.out_shape}")
        return self.out_shape

    arity = 1

    def infer(self, in_shapes):
        raise NotImplementedError

    def out_rank(self, in_ranks):
        """Rank of the output as the outside sees it (inside, all are 4-D)."""
        return in_ranks[0]

    def describe(self):
        """A short text of the op and its main attributes, for summaries."""
        return self.op

    # cost ---------------------------------------------------------------------
    def flops(self):
        """Floating-point operations of the whole layer (a multiply-add is 2)."""
        return int(np.prod(self.out_shape))

    def param_count(self):
        return sum(int(np.prod(p.shape)) for p in self.weights().values())

    def bytes(self):
        """Bytes read and written by the whole layer."""
        moved = sum(int(np.prod(s)) for s in self.in_shapes) + int(np.prod(self.out_shape))
        return 4 * (moved + self.param_count())

    # data ---------------------------------------------------------------------
    def weights(self):
        """The layer's constants as the model holds them (for export, counts)."""
        return {}

    def assign(self, name, value):
        """Replace the constant ``name`` (as ``weights()`` names it) by an
        array of the same shape."""
        current = self.weights().get(name)
        if current is None:
            raise ModelError(f"layer {self.name!r} has no constant {name!r}; it has {sorted(self.weights())}")
        value = np.asarray(value, dtype=np.float32)
        if value.shape != current.shape:
            raise ModelError(f"layer {self.name!r}: {name} must have shape {current.shape}, got {value.shape}")
        setattr(self, self.constant_attributes.get(name, name), np.ascontiguousarray(value))

    # attribute holding each constant, where it differs from the constant's name
    constant_attributes = {}

    def params(self, profile):
        """The constants as the kernels for ``profile`` want them laid out."""
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.weights().items()}

    def reference(self, *inputs):
        raise NotImplementedError

    # slicing ------------------------------------------------------------------
    def input_box(self, out_box, index):
        """The box of input ``index`` that computing ``out_box`` reads."""
        return out_box

    def launches(self, profile, out_box):
        raise NotImplementedError

    def splittable(self, dim):
        return dim in self.split_dims and Box.whole(self.out_shape).range(dim)[1] > 1

    def in_place_inputs(self):
        """(input index, channel offset) of inputs that are written straight
        into this layer's output (a Concat's); none for other layers."""
        return []

    def written_boxes(self, out_box):
        """The parts of ``out_box`` this layer's kernels write for that slice
        (all of it, except where producers wrote parts in place)."""
        return [out_box]

    def granule(self, dim):
        """Slice boundaries along ``dim`` are rounded to multiples of this."""
        return 1


def whole_channels(layer, out_box, index):
    """Input box for layers that read every input channel of the rows they
    compute (convolution-like layers fix rows themselves)."""
    shape = layer.in_shapes[index]
    return Box(out_box.n0, out_box.n1, 0, shape[1], out_box.h0, out_box.h1)


@dataclass
class Attrs:
    """Parsed attributes shared by sliding-window layers (conv, pool)."""
    kernel: tuple
    stride: tuple = (1, 1)
    dilation: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)          # top, left, bottom, right
    ceil_mode: bool = False
    extra: dict = field(default_factory=dict)

    def out_size(self, h, w):
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        pt, pl, pb, pr = self.pads
        rounding = ceil_div if self.ceil_mode else (lambda a, b: a // b)
        oh = rounding(h + pt + pb - dh * (kh - 1) - 1, sh) + 1
        ow = rounding(w + pl + pr - dw * (kw - 1) - 1, sw) + 1
        if self.ceil_mode:  # the last window must start inside the input or the top/left pad
            oh -= (oh - 1) * sh >= h + pt
            ow -= (ow - 1) * sw >= w + pl
        return oh, ow

    def input_rows(self, h0, h1, in_h):
        """Input rows read by output rows h0..h1 (clipped to the input)."""
        kh, sh, dh, pt = self.kernel[0], self.stride[0], self.dilation[0], self.pads[0]
        lo = h0 * sh - pt
        hi = (h1 - 1) * sh - pt + dh * (kh - 1) + 1
        return min(max(lo, 0), in_h), min(max(hi, 0), in_h)
