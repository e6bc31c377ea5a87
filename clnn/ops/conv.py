"""Conv2d: any kernel size, stride, dilation, padding and groups, with
optional bias, fused activation and fused residual add; ONNX Conv.

Ungrouped convolutions run as an implicit GEMM (``gemm_launches``, which
Dense shares), on GPUs 3x3 stride-1 ones with enough channels as Winograd
(winograd.py), on CPUs the GEMM and Winograd of conv_cpu.py; depthwise
ones on CPUs by conv_depthwise.py, other grouped ones by the CPU GEMM (its
panels group by group); grouped ones on GPUs as a direct loop.
GPU tiles and the CPU blocking come from the target's tuning
(clnn.ops.tuning)."""

import copy

import numpy as np

from ..box import Box
from ..errors import ModelError
from ..host import page_aligned
from . import conv_cpu, conv_depthwise, winograd
from .base import (OUT, Attrs, In, Launch, Layer, Param, Scratch, activation_args, activation_name,
                   apply_activation, box_args, flat_launch, grid_launch, onnx_attrs_1d, onnx_spatial_rank,
                   onnx_window, pads4, pair)
from .gemm import plan_gemm
from .registry import OpEntry


def conv_reference(x, w, bias, attrs, groups):
    """float64 numpy convolution of NCHW x with OIHW w."""
    n, c, h, wd = x.shape
    m, cin_g, kh, kw = w.shape
    (sh, sw), (dh, dw) = attrs.stride, attrs.dilation
    pt, pl, pb, pr = attrs.pads
    oh, ow = attrs.out_size(h, wd)
    xp = np.zeros((n, c, h + pt + pb + sh, wd + pl + pr + sw))
    xp[:, :, pt:pt + h, pl:pl + wd] = x
    # one matrix product per kernel tap, batched over items and groups (a
    # loop over groups made depthwise convolutions take seconds)
    wg = w.astype(np.float64).reshape(groups, m // groups, cin_g, kh, kw)
    xg = xp.reshape(n, groups, cin_g, *xp.shape[2:])
    out = np.zeros((n, groups, m // groups, oh * ow))
    for i in range(kh):
        for j in range(kw):
            patch = xg[..., i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            out += np.matmul(wg[..., i, j], patch.reshape(n, groups, cin_g, oh * ow))
    out = out.reshape(n, m, oh, ow)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


# the implicit GEMM, shared with Dense ------------------------------------------------

def ktab(cin, in_h, in_w, kh, kw, dilation=(1, 1)):
    """For every k of the GEMM (input channel, kernel row, kernel column):
    the channel's offset and the row and column displacements."""
    ci, i, j = np.meshgrid(np.arange(cin), np.arange(kh), np.arange(kw), indexing="ij")
    table = np.stack([ci * in_h * in_w, i * dilation[0], j * dilation[1], np.zeros_like(ci)], axis=-1)
    return np.ascontiguousarray(table.reshape(-1, 4), dtype=np.int32)


def gemm_params(target, flat_weight, bias, table, groups=1):
    """Weights (M, K) packed as the GEMM kernel for ``target`` reads them
    (grouped: on CPUs only, K one group's)."""
    packed = page_aligned(flat_weight.T if target.kind == "gpu" else
                          conv_cpu.pack_panels(target, flat_weight, groups))
    return {"w": packed, "bias": bias if bias is not None else np.zeros(1, np.float32), "ktab": table}


def gemm_launches(target, box, in_shape, out_shape, k, attrs, has_bias, residual, activation, groups=1):
    """The launches of the implicit GEMM computing ``box`` of an output of
    ``out_shape`` from an input of ``in_shape``; ``k`` is the GEMM's inner
    size (one group's), ``residual`` an In or None; ``groups`` > 1 on CPUs
    only."""
    _, c, h, w = in_shape
    _, m, oh, ow = out_shape
    (sh, sw), (pt, pl) = attrs.stride, attrs.pads[:2]
    pixels = (box.n1 - box.n0) * (box.h1 - box.h0) * ow
    finish = {"out": OUT, "bias": Param("bias"), "res": residual or OUT, "OW": ow, "OH": oh, **box_args(box),
              "P": pixels, **activation_args(activation), "has_bias": has_bias, "has_res": residual is not None}
    args = {**finish, "in": In(0), "ktab": Param("ktab"), "M": m, "K": k, "H": h, "W": w, "sh": sh, "sw": sw,
            "pt": pt, "pl": pl}
    if target.kind == "gpu":
        return _gpu_gemm_launches(target, box, pixels, k, args, finish)
    return [conv_cpu.gemm_launch(target, box, attrs, dict(args, in_gs=c // groups * h * w), groups)]


def _gpu_gemm_launches(target, box, pixels, k, args, finish):
    """The GPU GEMM in the tile that clnn.ops.gemm plans, K split into
    slices where the tiles alone would leave compute units idle; then the
    reduction of the slices' partial sums (``finish``: its arguments)."""
    bc = box.c1 - box.c0
    plan = plan_gemm(target, bc, pixels, k)
    part = Scratch(0, 4 * plan.slices * bc * pixels if plan.slices > 1 else 4)
    size, local = plan.groups(bc, pixels)
    options = plan.tile.options() + target.tuning.build_options
    found = [Launch("clnn_conv_gemm_tiled", size, local, dict(args, wt=Param("w"), part=part, kc=plan.kc), options)]
    if plan.slices > 1:
        size, local = flat_launch(target, bc * pixels)
        found.append(Launch("clnn_conv_gemm_reduce", size, local, dict(finish, part=part, slices=plan.slices),
                            options))
    return found


# the layer ---------------------------------------------------------------------------

class Conv2d(Layer):
    op = "Conv"
    applies_activation = True

    def __init__(self, name, inputs, weight, bias=None, stride=1, pads=0, dilation=1, groups=1,
                 activation=None, auto_pad=None):
        """``inputs``: the input tensor, then optionally a tensor of the
        output's shape added before the activation (a fused residual)."""
        super().__init__(name, inputs)
        self.weight = page_aligned(weight)
        if self.weight.ndim != 4:
            raise ModelError(f"Conv node {name!r}: weight must be 4-D (OIHW), got shape {self.weight.shape}")
        self.bias = None if bias is None else page_aligned(np.reshape(bias, -1))
        if self.bias is not None and self.bias.shape[0] != self.weight.shape[0]:
            raise ModelError(f"Conv node {name!r}: {self.bias.shape[0]} biases for {self.weight.shape[0]} "
                             "output channels")
        self.groups = int(groups)
        # as declared; ``attrs`` holds the padding worked out for the input bound
        self.declared = Attrs(kernel=self.weight.shape[2:], stride=pair(stride, "strides", name),
                              dilation=pair(dilation, "dilations", name), pads=pads4(pads, name))
        self.attrs = self.declared
        self.auto_pad = auto_pad
        self.activation = activation
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise ModelError(f"Conv node {name!r}: {self.weight.shape[0]} output channels do not split "
                             f"into {self.groups} groups")
        if min(self.declared.stride + self.declared.dilation) < 1:
            raise ModelError(f"Conv node {name!r}: strides and dilations must be >= 1")

    @property
    def arity(self):
        return len(self.inputs)

    @property
    def has_residual(self):
        return len(self.inputs) == 2

    def describe(self):
        (kh, kw), sh = self.declared.kernel, self.declared.stride[0]
        text = f"{self.op} {self.weight.shape[0]} {kh}x{kw}/{sh}"
        if self.groups > 1:
            text += f" g{self.groups}"
        if self.has_residual:
            text += " +res"
        if self.activation:
            text += f" {activation_name(self.activation)}"
        return text

    def infer(self, in_dims):
        dims = in_dims[0]
        if len(dims) != 4 and not (len(dims) == 3 and self.declared.one_dimensional):
            raise ModelError(f"Conv node {self.name!r}: input must be (N, C, H, W), or (N, C, L) for a (k, 1) "
                             f"window, got shape {list(dims)}")
        n, c, h, w = tuple(dims) + (1,) * (4 - len(dims))
        m, cin_g = self.weight.shape[:2]
        if c != cin_g * self.groups:
            raise ModelError(f"Conv node {self.name!r}: input has {c} channels, weights expect "
                             f"{cin_g * self.groups} ({cin_g} per group x {self.groups} groups)")
        self.attrs = (self.declared.same_pads(h, w, self.auto_pad) if self.auto_pad in ("SAME_UPPER", "SAME_LOWER")
                      else self.declared)
        oh, ow = self.attrs.out_size(h, w)
        out = (n, m, oh, ow)[:len(dims)]
        if self.has_residual and tuple(in_dims[1]) != out:
            raise ModelError(f"Conv node {self.name!r}: residual of shape {list(in_dims[1])} cannot be added "
                             f"to an output of shape {list(out)}")
        return out

    def flops(self):
        n, m, oh, ow = self.out_shape
        return 2 * n * m * oh * ow * self.weight[0].size

    def weights(self):
        found = {"weight": self.weight}
        if self.bias is not None:
            found["bias"] = self.bias
        return found

    def reference(self, x, residual=None):
        out = conv_reference(x, self.weight, self.bias, self.attrs, self.groups)
        if residual is not None:
            out = out + residual
        return apply_activation(out, self.activation)

    # fusion ----------------------------------------------------------------------------
    def with_residual(self, tensor):
        if self.activation or self.has_residual:
            return None
        fused = copy.copy(self)
        fused.inputs = self.inputs + (tensor,)
        return fused

    def with_scale_shift(self, scale, shift):
        if self.activation or self.has_residual or scale.size != self.weight.shape[0]:
            return None
        scale, shift = scale.astype(np.float64), shift.astype(np.float64)
        fused = copy.copy(self)
        fused.weight = (self.weight * scale.reshape(-1, 1, 1, 1)).astype(np.float32)
        bias = self.bias.astype(np.float64) if self.bias is not None else 0.0
        fused.bias = (bias * scale + shift).astype(np.float32)
        return fused

    # slicing -----------------------------------------------------------------------
    def input_box(self, out_box, index):
        if index == 1:
            return out_box
        _, c, h, _ = self.in_shapes[0]
        lo, hi = self.attrs.input_rows(out_box.h0, out_box.h1, h)
        if self.groups == 1:
            c_lo, c_hi = 0, c
        else:
            per_group_out = self.weight.shape[0] // self.groups
            cin_g = self.weight.shape[1]
            c_lo = out_box.c0 // per_group_out * cin_g
            c_hi = ((out_box.c1 - 1) // per_group_out + 1) * cin_g
        return Box(out_box.n0, out_box.n1, c_lo, c_hi, lo, hi)

    def kernel_input_box(self, out_box, index, target):
        """Winograd (GPU or CPU) reads the input rows of whole tiles (clipped
        to the input)."""
        if index == 1 or not (winograd.chosen(self, target) or conv_cpu.winograd_tile(self, target)):
            return self.input_box(out_box, index)
        h0, h1 = winograd.tile_rows(out_box.h0, out_box.h1, self.out_shape[2])
        lo, hi = self.attrs.input_rows(h0, h1, self.in_shapes[0][2])
        return self.input_box(out_box, index).with_range("h", lo, hi)

    def granule(self, dim):
        # channels: a CPU panel's worth; rows: whole 4-row Winograd tiles, so
        # that a row split reads no more than the window's halo
        if dim == "c" or (dim == "h" and winograd.eligible(self)):
            return 4
        return 1

    def runs_gemm(self, target):
        """Whether ``target`` runs this layer as the implicit GEMM: ungrouped
        ones not taken by Winograd, on CPUs grouped ones too, but depthwise
        ones that conv_depthwise takes."""
        if winograd.chosen(self, target) or conv_cpu.winograd_tile(self, target):
            return False
        return self.groups == 1 or (target.kind == "cpu" and not conv_depthwise.chosen(self, target))

    def params(self, target):
        bias = self.bias if self.bias is not None else np.zeros(1, np.float32)
        if self.runs_gemm(target):
            _, _, h, w = self.in_shapes[0]
            table = ktab(self.weight.shape[1], h, w, *self.weight.shape[2:], self.attrs.dilation)
            return gemm_params(target, self.weight.reshape(self.weight.shape[0], -1), self.bias, table, self.groups)
        if self.groups > 1:
            return {"w": self.weight, "bias": bias}
        if winograd.chosen(self, target):
            return {"u": winograd.transform_weights(self.weight, target.tuning.winograd), "bias": bias}
        return {"u": page_aligned(conv_cpu.winograd_weights(self, target)), "bias": bias}

    def launches(self, target, box):
        residual = In(1) if self.has_residual else None
        if winograd.chosen(self, target):  # ungrouped 3x3 stride 1 on a GPU
            return winograd.launches(self, target, box)
        if conv_cpu.winograd_tile(self, target):
            return [conv_cpu.winograd_launch(self, target, box)]
        if conv_depthwise.chosen(self, target):
            return [conv_depthwise.launch(self, target, box)]
        if self.runs_gemm(target):
            return gemm_launches(target, box, self.in_shapes[0], self.out_shape, self.weight[0].size, self.attrs,
                                 self.bias is not None, residual, self.activation, self.groups)
        _, _, h, w = self.in_shapes[0]
        _, m, oh, ow = self.out_shape
        (kh, kw), (sh, sw), (dh, dw) = self.attrs.kernel, self.attrs.stride, self.attrs.dilation
        args = {"out": OUT, "in": In(0), "w": Param("w"), "bias": Param("bias"), "res": residual or OUT,
                "M": m, "cin_g": self.weight.shape[1], "H": h, "W": w, "OH": oh, "OW": ow, "KH": kh, "KW": kw,
                "sh": sh, "sw": sw, "dh": dh, "dw": dw, "pt": self.attrs.pads[0], "pl": self.attrs.pads[1],
                "m_per_group": m // self.groups, **box_args(box), "bn": box.n1 - box.n0,
                **activation_args(self.activation), "has_bias": self.bias is not None,
                "has_res": self.has_residual}
        size, local = grid_launch(target, (ow, (box.c1 - box.c0) * (box.h1 - box.h0), box.n1 - box.n0))
        return [Launch("clnn_conv_direct", size, local, args)]

    # ONNX ----------------------------------------------------------------------------
    def to_onnx(self, writer):
        a = self.attrs
        weight = self.weight
        attrs = {"kernel_shape": list(a.kernel), "strides": list(a.stride), "pads": list(a.pads),
                 "dilations": list(a.dilation), "group": self.groups}
        if len(self.in_dims[0]) == 3:   # a (k, 1) window over (N, C, L): ONNX's 1-D Conv
            weight, attrs = weight[..., 0], onnx_attrs_1d(attrs)
        weights = [writer.const(self, "weight", weight)] + (
            [writer.const(self, "bias", self.bias)] if self.bias is not None else [])
        y = writer.node(self, "Conv", [self.inputs[0], *weights], **attrs)
        if self.has_residual:
            y = writer.node(self, "Add", [y, self.inputs[1]])
        writer.activation(self, y, self.activation)


def _from_onnx(node):
    x = node.tensor(0)
    spatial = onnx_spatial_rank(node, x)
    weight = node.constant(1, "the weight")
    if weight.ndim != spatial + 2:
        node.fail(f"the weight of shape {list(weight.shape)} does not match the rank-{spatial + 2} input; clnn runs "
                  "1-D and 2-D convolutions")
    bias = node.constant(2, "the bias") if node.has(2) else None
    kernel = node.ints("kernel_shape", spatial, weight.shape[2:])
    if kernel != weight.shape[2:]:
        node.fail(f"kernel_shape {list(kernel)} differs from the weight's {list(weight.shape[2:])}")
    groups, channels = node.attr("group", 1), node.shape(x)[1]
    if groups < 1 or channels % groups:
        node.fail(f"group {groups} does not divide {channels} input channels")
    window = onnx_window(node, kernel, node.shape(x)[2:])
    if spatial == 1:    # (N, C, L) is stored as (N, C, L, 1): a (k, 1) window over it
        weight = weight[..., None]
    return Conv2d(node.out, x, weight, bias, groups=groups, **window)


OP = OpEntry(layers=(Conv2d,), onnx={"Conv": _from_onnx},
             sources=("conv_gemm", "conv_cpu", "conv_direct", "winograd", "conv_winograd_cpu", "conv_depthwise_cpu"))
