"""What every layer provides, and the launch description it hands the executor.

A layer knows its output shape, its cost, a numpy reference, which input box
each output box needs, and how to launch its kernel(s) for any box of its
output. Launches name their kernel and its arguments by the parameter names
of the kernel's source (clnn.sources checks them), and name tensors
symbolically (``In(i)``, ``OUT``, ``Param``, work buffers ``Scratch``); the
executor binds them to the buffers of the context the slice runs in, so
layers never see devices, contexts or backends. A ``Target`` tells them the
device kind, its limits and the kernel parameters (clnn.ops.tuning).

Tensors have an outside shape of rank 0 to 6 (``in_dims``, ``out_dims``), as
ONNX sees them, and are stored NCHW (``in_shapes``, ``out_shape``: the 4-D
view of clnn.box.to4d) that boxes and kernels address.
"""

import copy
import math
from dataclasses import dataclass, replace

import numpy as np

from ..box import Box, to4d
from ..errors import ModelError
from ..host import page_aligned
from ..sources import signature
from .tuning import DEFAULT, Tuning, tuning_for

# Fused activations: spec name -> the code clnn_act (kernels/clnn_common.h)
# switches on. A spec is a name, or a tuple of the name and its parameters
# (ACTIVATION_PARAMS of them, passed to the kernels as alpha and beta).
ACTIVATIONS = {None: 0, "relu": 1, "leaky_relu": 2, "clip": 3, "sigmoid": 4, "tanh": 5, "hard_sigmoid": 6,
               "hard_swish": 7, "silu": 8, "gelu": 9, "gelu_tanh": 10, "elu": 11, "selu": 12, "celu": 13,
               "softplus": 14, "softsign": 15, "mish": 16, "thresholded_relu": 17, "erf": 18, "exp": 19, "log": 20,
               "sqrt": 21, "neg": 22, "abs": 23, "reciprocal": 24, "floor": 25, "ceil": 26}
ACTIVATION_PARAMS = {"leaky_relu": 1, "clip": 2, "hard_sigmoid": 2, "elu": 1, "selu": 2, "celu": 1,
                     "thresholded_relu": 1}


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


@dataclass(frozen=True)
class Scratch:
    """A work buffer of at least ``nbytes`` on the device a launch runs on,
    for a buffer parameter (split-K partial sums, Winograd's transformed
    tiles). The executor keeps one buffer per device and ``index``, as large
    as the largest launch on that device asks for: a device's launches run
    one after another on its in-order queue, so they can share it."""
    index: int
    nbytes: int


@dataclass
class Launch:
    kernel: str                 # clnn_<op>_<variant>, defined in one of kernels/*.cl
    global_size: tuple
    local_size: object          # tuple or None
    args: dict                  # {kernel parameter name: value, In, Out, Param or Scratch}
    options: tuple = ()

    @property
    def source(self):
        """The kernels/<source>.cl that defines the kernel."""
        return signature(self.kernel).source

    def flat_args(self, tensor, buffer):
        """The kernel's argument list, checked against its signature;
        ``tensor`` and ``buffer`` map In/Out and Param values to buffers
        (see clnn.sources.Signature.flat)."""
        return signature(self.kernel).flat(self.args, tensor, buffer)


@dataclass(frozen=True)
class Target:
    """What a layer's kernels are chosen and tuned for: the device kind, its
    limits, and the kernel parameters (clnn.ops.tuning.Tuning); hashable,
    so compiled weights can be cached by it."""
    kind: str                   # "cpu" or "gpu" (accelerators take the gpu kernels)
    compute_units: int = 1
    local_mem: int = 32768
    max_work_group: int = 256
    tuning: Tuning = DEFAULT
    vector_width: int = 8       # floats per vector of the CPU kernels: 8 (AVX2) or 16 (AVX-512)

    @classmethod
    def of(cls, device, tuning=None):
        """The target of ``device``, with ``tuning`` or the device's own
        (clnn.ops.tuning.tuning_for)."""
        return cls("cpu" if device.kind == "cpu" else "gpu", device.compute_units, device.local_mem_size,
                   device.max_work_group_size, tuning or tuning_for(device),
                   16 if device.native_vector_width >= 16 else 8)

    def tuned(self, prefix, defaults):
        """``defaults`` ({name: value}) with the tuning's op parameters
        named ``prefix.name`` applied (Tuning.op_params)."""
        found = dict(defaults)
        for key, value in self.tuning.op_params:
            group, _, name = key.rpartition(".")
            if group == prefix and name in found:
                found[name] = value
        return found


# Fixed work-group sizes: PoCL compiles a kernel anew for every local size,
# so a size chosen by the driver per launch would recompile per shape.
FLAT_LOCAL = {"cpu": 64, "gpu": 256}


def flat_launch(target, count):
    """(global, local) of a 1-D launch over ``count`` work-items."""
    local = FLAT_LOCAL[target.kind]
    return (ceil_div(max(count, 1), local) * local,), (local,)


def grid_launch(target, sizes):
    """(global, local) of a 3-D launch over (columns, channels x rows, batch)
    work-items, as kernels decode them with CLNN_GRID_ELEMENT. On GPUs the
    work-group is as wide as the rows (up to 32) and fills up with
    channel-rows, so that narrow maps (7 columns) leave few work-items idle."""
    if target.kind == "cpu":
        local = (16, 4, 1)
    else:
        width = min(pow2_at_least(sizes[0]), 32)
        local = (width, FLAT_LOCAL["gpu"] // width, 1)
    return tuple(ceil_div(max(s, 1), step) * step for s, step in zip(sizes, local)), local


# work-groups a launch may have along its second and third dimensions (CUDA's
# grid, which NVIDIA's OpenCL shares); the first takes 2^31 - 1
GRID_YZ_LIMIT = 65535


def plane_launch(target, box, width):
    """(global, local) of a GPU launch over ``box`` (rows ``width`` wide) as
    (the box's rows of one plane, its channels, its batch items): the
    contiguous run of a plane's rows is dimension 0, so work-items find
    their element without division (CLNN_PLANE_GRID in eltwise.cl). None
    where the channels or batch items are too many for such a grid (a long
    1-D or 2-D tensor stores its elements along them)."""
    run, channels, items = (box.h1 - box.h0) * width, box.c1 - box.c0, box.n1 - box.n0
    wide = min(pow2_at_least(run), FLAT_LOCAL["gpu"])
    deep = min(FLAT_LOCAL["gpu"] // wide, pow2_at_least(channels))
    if ceil_div(channels, deep) > GRID_YZ_LIMIT or items > GRID_YZ_LIMIT:
        return None
    return (ceil_div(run, wide) * wide, ceil_div(channels, deep) * deep, items), (wide, deep, 1)


def pow2_at_least(n):
    """The smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(int(n) - 1, 0).bit_length()


def box_args(box):
    """The box arguments most kernels take: origin and extent."""
    return {"n0": box.n0, "c0": box.c0, "h0": box.h0, "bc": box.c1 - box.c0, "bh": box.h1 - box.h0}


def _activation_parts(activation):
    """(name, [parameters]) of a spec, checked."""
    name, *values = (activation,) if not isinstance(activation, tuple) else activation
    if name not in ACTIVATIONS:
        raise ModelError(f"unsupported activation {name!r}")
    if len(values) != ACTIVATION_PARAMS.get(name, 0):
        raise ModelError(f"activation {name!r} takes {ACTIVATION_PARAMS.get(name, 0)} parameters, got {values}")
    return name, [float(v) for v in values]


def activation_args(activation):
    """{act, alpha, beta} arguments of a fused activation spec such as
    None, "relu", ("leaky_relu", 0.1) or ("clip", 0.0, 6.0)."""
    name, values = _activation_parts(activation)
    values += [0.0] * (2 - len(values))
    return {"act": ACTIVATIONS[name], "alpha": values[0], "beta": values[1]}


def activation_name(activation):
    return activation if not isinstance(activation, tuple) else activation[0]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _positive_or(x, other):
    return np.where(x > 0, x, other)


def _erf(x):
    # the C library's erf per element: scipy.special's would add 30 MB to every
    # process (the fusion passes probe the GELU reference at every load)
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=np.float64)


# float64 numpy references of the activations, as ONNX defines them
_REFERENCES = {
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x, a: np.where(x >= 0, x, a * x),
    "clip": lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "hard_sigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
    "hard_swish": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    "elu": lambda x, a: _positive_or(x, a * np.expm1(x)),
    "selu": lambda x, a, g: g * _positive_or(x, a * np.expm1(x)),
    "celu": lambda x, a: _positive_or(x, a * np.expm1(x / a)),
    "softplus": lambda x: np.logaddexp(0, x),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "mish": lambda x: x * np.tanh(np.logaddexp(0, x)),
    "thresholded_relu": lambda x, a: np.where(x > a, x, 0),
    "erf": _erf, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "neg": np.negative, "abs": np.abs,
    "reciprocal": lambda x: 1 / x, "floor": np.floor, "ceil": np.ceil,
}

# activations without parameters that a graph may spell as several
# elementwise nodes (x * Sigmoid(x), x * 0.5 * (1 + Erf(x / sqrt 2)), ...):
# clnn.passes recognises them by their values
COMPOSITE_ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "hard_swish", "mish", "sigmoid", "relu", "softplus",
                         "softsign", "reciprocal", "neg", "abs")


def apply_activation(x, activation):
    """numpy reference of a fused activation."""
    if activation is None:
        return x
    name, values = _activation_parts(activation)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _REFERENCES[name](x, *values)


def ceil_div(a, b):
    return -(-a // b)


class Layer:
    """Base of every layer. Subclasses set ``op`` and ``split_dims`` and
    implement ``infer``, ``reference``, ``launches`` and, where an output box
    needs less than all of an input, ``input_box``.

    A Model binds its own copy of each layer (``bind``); nothing here writes
    into the objects a caller built the model from. The graph passes ask
    layers what they can absorb (``with_activation``, ``with_residual``,
    ``with_scale_shift``) instead of testing their types.
    """

    op = ""
    split_dims = ("n", "c", "h")
    # a layer whose output is a view of its input (Flatten, Reshape) has no kernel
    is_view = False
    arity = 1
    # its kernels can apply a fused activation to what they write
    applies_activation = False

    def __init__(self, name, inputs):
        self.name = name
        self.inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
        self.in_dims = self.out_dims = None
        self.in_shapes = self.out_shape = None
        self.activation = None

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"

    # shapes -----------------------------------------------------------------
    def bind(self, in_dims):
        """Check the inputs' outside shapes and fix the output's."""
        self.in_dims = [tuple(int(d) for d in s) for s in in_dims]
        if len(self.in_dims) != self.arity:
            raise ModelError(f"{self.op} node {self.name!r} takes {self.arity} inputs, got {len(self.in_dims)}")
        self.out_dims = tuple(int(d) for d in self.infer(self.in_dims))
        if any(d <= 0 for d in self.out_dims):
            raise ModelError(f"{self.op} node {self.name!r}: inputs {self.in_dims} give an empty output "
                             f"{self.out_dims}")
        self.in_shapes = [to4d(s) for s in self.in_dims]
        self.out_shape = to4d(self.out_dims)
        return self.out_dims

    def infer(self, in_dims):
        """The output's outside shape for inputs of outside shapes ``in_dims``."""
        raise NotImplementedError

    def describe(self):
        """A short text of the op and its main attributes, for summaries."""
        text = self.op
        if self.activation:
            text += f" {activation_name(self.activation)}"
        return text

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
        self._store(name, page_aligned(value))

    def _store(self, name, value):
        """Keep constant ``name`` (already checked); layers that hold it under
        another attribute or shape override this."""
        setattr(self, name, value)

    def params(self, target):
        """The constants as the kernels for ``target`` want them laid out."""
        return {k: page_aligned(v) for k, v in self.weights().items()}

    def reference(self, *inputs):
        """float64 numpy result for inputs of the storage shapes."""
        raise NotImplementedError

    # fusion -------------------------------------------------------------------
    def with_activation(self, activation):
        """A copy computing ``activation`` of this layer's output, or None
        where this layer cannot apply one (or already applies one)."""
        if not self.applies_activation or self.activation:
            return None
        fused = copy.copy(self)
        fused.activation = activation
        return fused

    def with_residual(self, tensor):
        """A copy adding ``tensor`` (of the output's shape) before its
        activation, or None where it cannot."""
        return None

    def with_scale_shift(self, scale, shift):
        """A copy computing ``out * scale[c] + shift[c]`` per output channel,
        or None where it cannot fold that into its own constants."""
        return None

    def standalone_activation(self):
        """The activation this layer applies, where that is all it does (so
        its producer may apply it instead); else None."""
        return None

    def residual_operands(self):
        """(a, b) where this layer is a + b of two tensors of one shape (then
        its activation), so the producer of either may add the other; else
        None."""
        return None

    def scale_and_shift(self):
        """(scale, shift) as float64 where this layer maps each channel by
        x * scale[c] + shift[c] (then its activation), so the producer of its
        input may fold it in; else None."""
        return None

    def pointwise(self):
        """f(*inputs) on float64 arrays where this layer maps inputs of its
        output's shape element by element, the same function everywhere (so
        that a group of such layers can be recognised as one activation);
        else None."""
        return None

    def as_activation(self, tensor, activation):
        """A layer of this one's name computing ``activation`` of ``tensor``,
        to replace a group of pointwise layers ending here; None where this
        layer cannot tell."""
        return None

    # slicing ------------------------------------------------------------------
    def input_box(self, out_box, index):
        """The box of input ``index`` (storage shape) that computing
        ``out_box`` reads."""
        return out_box

    def kernel_input_box(self, out_box, index, target):
        """The box of input ``index`` that the kernels for ``target`` read
        to compute ``out_box``: ``input_box``, unless they read more (the
        executor copies this box; the planner prices ``input_box``)."""
        return self.input_box(out_box, index)

    def launches(self, target, out_box):
        raise NotImplementedError

    def splittable(self, dim):
        return dim in self.split_dims and Box.whole(self.out_shape).range(dim)[1] > 1

    def in_place_inputs(self):
        """(input index, channel offset) of inputs that are written straight
        into this layer's output (a Concat's); none for other layers."""
        return []

    def decide_in_place(self, graph, taken):
        """Choose which inputs producers write in place (see Concat)."""

    def written_boxes(self, out_box):
        """The parts of ``out_box`` this layer's kernels write for that slice
        (all of it, except where producers wrote parts in place)."""
        return [out_box]

    def granule(self, dim):
        """Slice boundaries along ``dim`` are rounded to multiples of this."""
        return 1

    # ONNX ---------------------------------------------------------------------
    def to_onnx(self, writer):
        """Write ONNX nodes computing this layer (see clnn.onnx_export)."""
        raise ModelError(f"layer {self.name!r} ({type(self).__name__}) cannot be written as ONNX")


def whole_channels(layer, out_box, index):
    """Input box for layers that read every input channel of the rows they
    compute (convolution-like layers fix rows themselves)."""
    shape = layer.in_shapes[index]
    return Box(out_box.n0, out_box.n1, 0, shape[1], out_box.h0, out_box.h1)


@dataclass(frozen=True)
class Attrs:
    """Parsed attributes shared by sliding-window layers (conv, pool)."""
    kernel: tuple
    stride: tuple = (1, 1)
    dilation: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)          # top, left, bottom, right
    ceil_mode: bool = False

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

    @property
    def one_dimensional(self):
        """Whether this is a (k, 1) window with no left or right padding:
        the 1-D window it is over the rows of an (N, C, L) tensor's (L, 1)
        storage."""
        return self.kernel[1] == 1 and self.pads[1] == self.pads[3] == 0

    def input_rows(self, h0, h1, in_h):
        """Input rows read by output rows h0..h1 (clipped to the input)."""
        kh, sh, dh, pt = self.kernel[0], self.stride[0], self.dilation[0], self.pads[0]
        lo = h0 * sh - pt
        hi = (h1 - 1) * sh - pt + dh * (kh - 1) + 1
        return min(max(lo, 0), in_h), min(max(hi, 0), in_h)

    def same_pads(self, h, w, mode):
        """These attributes with ONNX auto_pad SAME_* padding for an h x w
        input: the output is ceil(input / stride), the padding split evenly
        with the odd one at the end (UPPER) or the start (LOWER)."""
        pads = []
        for size, k, s, d in zip((h, w), self.kernel, self.stride, self.dilation):
            total = max((ceil_div(size, s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            pads.append((small, total - small) if mode == "SAME_UPPER" else (total - small, small))
        return replace(self, pads=(pads[0][0], pads[1][0], pads[0][1], pads[1][1]))


AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def onnx_window(node, kernel, size):
    """Strides, dilations and pads (top, left, bottom, right) of an ONNX Conv
    or pool node with a window of ``kernel`` over an input of spatial
    ``size``; SAME pads are worked out. A 1-D window (k,) comes back as the
    (k, 1) window it is over the (L, 1) rows of an (N, C, L) tensor's
    storage."""
    spatial = len(kernel)
    stride = node.ints("strides", spatial, (1,) * spatial)
    dilation = node.ints("dilations", spatial, (1,) * spatial)
    pads = node.ints("pads", 2 * spatial, (0,) * 2 * spatial)
    mode = node.attr("auto_pad", "NOTSET")
    if mode not in AUTO_PADS:
        node.fail(f"auto_pad {mode!r} is not one of {', '.join(AUTO_PADS)}")
    if mode != "NOTSET" and any(pads):
        node.fail(f"pads {list(pads)} cannot be given with auto_pad {mode}")
    if spatial == 1:
        kernel, size, stride, dilation = (tuple(kernel) + (1,), tuple(size) + (1,), stride + (1,),
                                          dilation + (1,))
        pads = (pads[0], 0, pads[1], 0)
    if mode.startswith("SAME"):
        pads = Attrs(kernel=kernel, stride=stride, dilation=dilation).same_pads(*size, mode).pads
    return {"stride": stride, "dilation": dilation, "pads": pads}


def onnx_spatial_rank(node, tensor):
    """1 or 2: the spatial axes of an (N, C, L) or (N, C, H, W) input."""
    dims = node.shape(tensor)
    if len(dims) not in (3, 4):
        node.fail(f"input {tensor!r} has shape {list(dims)}; clnn supports 1-D (N, C, L) and 2-D (N, C, H, W) "
                  "windows here")
    return len(dims) - 2


def onnx_attrs_1d(attrs):
    """ONNX window attributes of a (k, 1) window (kernel_shape, strides,
    dilations, pads, output_padding) as those of the 1-D window it is."""
    per_axis = ("kernel_shape", "strides", "dilations", "output_padding")
    return {k: v[:1] if k in per_axis else (v[::2] if k == "pads" else v) for k, v in attrs.items()}


def onnx_need_rank(node, tensor, rank):
    if len(node.shape(tensor)) != rank:
        node.fail(f"input {tensor!r} has shape {list(node.shape(tensor))}; clnn supports rank {rank} here")


def pair(value, name, layer):
    """(h, w) from an int or two values."""
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ModelError(f"node {layer!r}: {name} must have 2 values, got {value}")
    return value


def pads4(pads, layer):
    """(top, left, bottom, right) from an int, a pair or ONNX's 4 values
    (top, left, bottom, right)."""
    if isinstance(pads, (int, np.integer)):
        return (int(pads),) * 4
    pads = tuple(int(p) for p in pads)
    if len(pads) == 2:
        return pads + pads
    if len(pads) != 4 or min(pads) < 0:
        raise ModelError(f"node {layer!r}: pads must be 1, 2 or 4 non-negative values, got {pads}")
    return pads
