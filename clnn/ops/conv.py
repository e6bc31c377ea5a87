"""Conv2d: any kernel size, stride, dilation, padding and groups, with
optional bias, fused activation and fused residual add."""

import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import (OUT, Attrs, In, Launch, Layer, Param, activation_args, apply_activation, ceil_div,
                   grid_launch, i32)

# GPU tiles (TM x TN outputs per work-group, RM x RN per work-item) and CPU
# blocking (MR channels x 16 pixels per micro-kernel, PB panels per
# work-item, KC rows of im2col packed at a time); see kernels/conv_*.cl.
GPU_TILES = {"TM": 64, "TN": 64, "TK": 16, "RM": 4, "RN": 4}
# where 64 x 64 tiles would leave compute units idle (deep layers at batch 1
# have few pixels), 32 x 32 tiles give four times the work-groups
GPU_SMALL_TILES = {"TM": 32, "TN": 32, "TK": 16, "RM": 2, "RN": 2}
GPU_WORK_GROUPS_PER_UNIT = 2
CPU_BLOCKS = {"MR": 6, "PB": 96, "KC": 256}
# work-items per CPU core that the panel count per work-item must leave
CPU_ITEMS_PER_CORE = 4


def _pair(value, name, layer):
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ModelError(f"Conv node {layer!r}: {name} must have 2 values, got {value}")
    return value


def pads4(pads, layer):
    """(top, left, bottom, right) from an int, a pair or ONNX's 4 values
    (top, left, bottom, right)."""
    if isinstance(pads, int):
        return (pads,) * 4
    pads = tuple(int(p) for p in pads)
    if len(pads) == 2:
        return pads + pads
    if len(pads) != 4 or min(pads) < 0:
        raise ModelError(f"node {layer!r}: pads must be 1, 2 or 4 non-negative values, got {pads}")
    return pads


def options(params):
    return ("-cl-mad-enable",) + tuple(f"-D{k}={v}" for k, v in sorted(params.items()))


def conv_reference(x, w, bias, attrs, groups):
    """float64 numpy convolution of NCHW x with OIHW w."""
    n, c, h, wd = x.shape
    m, cin_g, kh, kw = w.shape
    (sh, sw), (dh, dw) = attrs.stride, attrs.dilation
    pt, pl, pb, pr = attrs.pads
    oh, ow = attrs.out_size(h, wd)
    xp = np.zeros((n, c, h + pt + pb + sh, wd + pl + pr + sw))
    xp[:, :, pt:pt + h, pl:pl + wd] = x
    out = np.zeros((n, m, oh, ow))
    mg = m // groups
    for g in range(groups):
        wg = w[g * mg:(g + 1) * mg].astype(np.float64)
        xg = xp[:, g * cin_g:(g + 1) * cin_g]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out[:, g * mg:(g + 1) * mg] += np.einsum("mc,nchw->nmhw", wg[:, :, i, j], patch, optimize=True)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


class Conv2d(Layer):
    op = "Conv"

    def __init__(self, name, inputs, weight, bias=None, stride=1, pads=0, dilation=1, groups=1,
                 activation=None, auto_pad=None):
        """``inputs``: the input tensor, then optionally a tensor of the
        output's shape added before the activation (a fused residual)."""
        if isinstance(inputs, str):
            inputs = (inputs,)
        super().__init__(name, inputs)
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        if self.weight.ndim != 4:
            raise ModelError(f"Conv node {name!r}: weight must be 4-D (OIHW), got shape {self.weight.shape}")
        self.bias = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
        if self.bias is not None and self.bias.shape[0] != self.weight.shape[0]:
            raise ModelError(f"Conv node {name!r}: {self.bias.shape[0]} biases for {self.weight.shape[0]} "
                             "output channels")
        self.groups = int(groups)
        self.attrs = Attrs(kernel=self.weight.shape[2:], stride=_pair(stride, "strides", name),
                           dilation=_pair(dilation, "dilations", name), pads=pads4(pads, name))
        self.auto_pad = auto_pad
        self.activation = activation
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise ModelError(f"Conv node {name!r}: {self.weight.shape[0]} output channels do not split "
                             f"into {self.groups} groups")
        if min(self.attrs.stride + self.attrs.dilation) < 1:
            raise ModelError(f"Conv node {name!r}: strides and dilations must be >= 1")

    @property
    def arity(self):
        return len(self.inputs)

    @property
    def has_residual(self):
        return len(self.inputs) == 2

    def describe(self):
        (kh, kw), sh = self.attrs.kernel, self.attrs.stride[0]
        text = f"{self.op} {self.weight.shape[0]} {kh}x{kw}/{sh}"
        if self.groups > 1:
            text += f" g{self.groups}"
        if self.has_residual:
            text += " +res"
        if self.activation:
            name = self.activation if isinstance(self.activation, str) else self.activation[0]
            text += f" {name}"
        return text

    def infer(self, in_shapes):
        n, c, h, w = in_shapes[0]
        m, cin_g = self.weight.shape[:2]
        if c != cin_g * self.groups:
            raise ModelError(f"Conv node {self.name!r}: input has {c} channels, weights expect "
                             f"{cin_g * self.groups} ({cin_g} per group x {self.groups} groups)")
        if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            self.attrs.pads = same_pads(self.attrs, h, w, self.auto_pad)
        oh, ow = self.attrs.out_size(h, w)
        if self.has_residual and tuple(in_shapes[1]) != (n, m, oh, ow):
            raise ModelError(f"Conv node {self.name!r}: residual of shape {in_shapes[1]} cannot be added to "
                             f"an output of shape {(n, m, oh, ow)}")
        return (n, m, oh, ow)

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

    def granule(self, dim):
        return 4 if dim == "c" else 1

    def _ktab(self):
        _, _, h, w = self.in_shapes[0]
        cin_g, kh, kw = self.weight.shape[1:]
        dh, dw = self.attrs.dilation
        ci, i, j = np.meshgrid(np.arange(cin_g), np.arange(kh), np.arange(kw), indexing="ij")
        table = np.stack([ci * h * w, i * dh, j * dw, np.zeros_like(ci)], axis=-1)
        return np.ascontiguousarray(table.reshape(-1, 4), dtype=np.int32)

    def params(self, profile):
        m = self.weight.shape[0]
        bias = self.bias if self.bias is not None else np.zeros(1, np.float32)
        if self.groups > 1:
            return {"w": self.weight, "bias": bias}
        flat = self.weight.reshape(m, -1)
        if profile.kind == "gpu":
            packed = np.ascontiguousarray(flat.T)
        else:
            mr = CPU_BLOCKS["MR"]
            panels = np.zeros((ceil_div(m, mr) * mr, flat.shape[1]), np.float32)
            panels[:m] = flat
            packed = np.ascontiguousarray(panels.reshape(-1, mr, flat.shape[1]).transpose(0, 2, 1))
        return {"w": packed, "bias": bias, "ktab": self._ktab()}

    def launches(self, profile, box):
        n, c, h, w = self.in_shapes[0]
        _, m, oh, ow = self.out_shape
        (kh, kw), (sh, sw), (dh, dw) = self.attrs.kernel, self.attrs.stride, self.attrs.dilation
        pt, pl = self.attrs.pads[:2]
        bc, bh = box.c1 - box.c0, box.h1 - box.h0
        residual = In(1) if self.has_residual else OUT
        tail = [*activation_args(self.activation), np.int32(self.bias is not None),
                np.int32(self.has_residual)]
        if self.groups > 1:
            args = [OUT, In(0), Param("w"), Param("bias"), residual,
                    *i32(m, self.weight.shape[1], h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl,
                         m // self.groups, box.n0, box.c0, box.h0, bc, bh, box.n1 - box.n0), *tail]
            size, local = grid_launch(profile, (ow, bc * bh, box.n1 - box.n0))
            return [Launch("conv_direct", "clnn_conv_direct", size, local, args)]
        k = self.weight[0].size
        pixels = (box.n1 - box.n0) * bh * ow
        args = [OUT, In(0), Param("w"), Param("bias"), residual, Param("ktab"),
                *i32(m, k, h, w, ow, sh, sw, pt, pl, box.n0, box.c0, box.h0, bc, bh, oh, pixels), *tail]
        if profile.kind == "gpu":
            t = GPU_TILES
            if ceil_div(pixels, t["TN"]) * ceil_div(bc, t["TM"]) < GPU_WORK_GROUPS_PER_UNIT * profile.compute_units:
                t = GPU_SMALL_TILES
            wg = (t["TN"] // t["RN"], t["TM"] // t["RM"])
            size = (ceil_div(pixels, t["TN"]) * wg[0], ceil_div(bc, t["TM"]) * wg[1])
            return [Launch("conv_gemm", "clnn_conv_gemm_tiled", size, wg, args, options(t))]
        b = CPU_BLOCKS
        panels = ceil_div(box.c1, b["MR"]) - box.c0 // b["MR"]
        blocks = ceil_div(pixels, 16)
        groups = min(panels, ceil_div(CPU_ITEMS_PER_CORE * profile.compute_units, blocks))
        per_item = min(b["PB"], ceil_div(panels, groups))
        size = (blocks, ceil_div(panels, per_item))
        return [Launch("conv_cpu", "clnn_conv_gemm_cpu", size, (1, 1), args + [np.int32(per_item)],
                       options(b))]


def same_pads(attrs, h, w, mode):
    """ONNX auto_pad SAME_*: the output is ceil(input / stride), the padding
    split evenly with the odd one at the end (UPPER) or the start (LOWER)."""
    pads = []
    for size, k, s, d in zip((h, w), attrs.kernel, attrs.stride, attrs.dilation):
        total = max((ceil_div(size, s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small = total // 2
        pads.append((small, total - small) if mode == "SAME_UPPER" else (total - small, small))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
