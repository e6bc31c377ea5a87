"""ConvTranspose2d (ONNX ConvTranspose, 2-D and 1-D): strides, dilations,
pads, output_padding, output_shape, auto_pad and groups (depthwise too),
with optional bias and fused activation.

A direct kernel: every output element gathers the input elements whose
scatter reaches it (input row ih reaches output row ih * stride - pad +
kh * dilation), so any box of the output is computed independently and
slices need no reduction across devices."""

import copy

import numpy as np

from ..box import Box
from ..errors import ModelError
from ..host import page_aligned
from .base import (AUTO_PADS, OUT, In, Launch, Layer, Param, activation_args, activation_name, apply_activation,
                   box_args, ceil_div, grid_launch, pads4, pair)
from .registry import OpEntry

# output channels per work-item (where the channels of a group allow):
# each input value read serves that many; a Target's tuning parameters
# conv_transpose.cpu.CB and conv_transpose.gpu.CB (Tuning.op_params) override them
BLOCKS = {"cpu": {"CB": 8}, "gpu": {"CB": 4}}


def transposed_axis(in_len, kernel, stride, dilation, output_padding, begin, end, out_len, auto_pad):
    """(pad at the start, output length) along one axis, as onnxruntime
    works them out: from an explicit output length (the padding split with
    the odd one at the start, or at the end for SAME_UPPER), from auto_pad
    SAME (output = input * stride), VALID (no padding) or the pads."""
    full = (in_len - 1) * stride + (kernel - 1) * dilation + 1 + output_padding
    if out_len is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out_len = in_len * stride
    if out_len is not None:
        total = max(full - out_len, 0)
        return (total // 2 if auto_pad == "SAME_UPPER" else total - total // 2), out_len
    if auto_pad == "VALID":
        return 0, full
    return begin, full - begin - end


class ConvTranspose2d(Layer):
    op = "ConvTranspose"
    applies_activation = True

    def __init__(self, name, inputs, weight, bias=None, stride=1, pads=0, dilation=1, groups=1, output_padding=0,
                 output_size=None, auto_pad=None, activation=None):
        """``weight``: (input channels, output channels / groups, KH, KW), as
        ONNX and torch hold it; ``pads``: (top, left, bottom, right) cropped
        from the full output; ``output_size``: (OH, OW) instead of pads."""
        super().__init__(name, inputs)
        self.weight = page_aligned(weight)
        if self.weight.ndim != 4:
            raise ModelError(f"ConvTranspose node {name!r}: weight must be 4-D (C, M/group, KH, KW), got shape "
                             f"{self.weight.shape}")
        self.groups = int(groups)
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise ModelError(f"ConvTranspose node {name!r}: {self.weight.shape[0]} input channels do not split "
                             f"into {self.groups} groups")
        self.bias = None if bias is None else page_aligned(np.reshape(bias, -1))
        if self.bias is not None and self.bias.size != self.out_channels:
            raise ModelError(f"ConvTranspose node {name!r}: {self.bias.size} biases for {self.out_channels} output "
                             "channels")
        self.stride, self.dilation = pair(stride, "strides", name), pair(dilation, "dilations", name)
        self.pads, self.output_padding = pads4(pads, name), pair(output_padding, "output_padding", name)
        self.output_size = None if output_size is None else pair(output_size, "output_shape", name)
        self.auto_pad = auto_pad or "NOTSET"
        if self.auto_pad not in AUTO_PADS:
            raise ModelError(f"ConvTranspose node {name!r}: auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}")
        if min(self.stride + self.dilation) < 1 or min(self.output_padding) < 0:
            raise ModelError(f"ConvTranspose node {name!r}: strides and dilations must be >= 1, output_padding >= 0")
        self.activation = activation
        self.geometry = None    # ((pad top, OH), (pad left, OW)) once bound

    @property
    def out_channels(self):
        return self.weight.shape[1] * self.groups

    def describe(self):
        (kh, kw), sh = self.weight.shape[2:], self.stride[0]
        text = f"{self.op} {self.out_channels} {kh}x{kw}/{sh}"
        if self.groups > 1:
            text += f" g{self.groups}"
        if self.activation:
            text += f" {activation_name(self.activation)}"
        return text

    def infer(self, in_dims):
        dims = in_dims[0]
        one_d = len(dims) == 3 and self.weight.shape[3] == 1
        if len(dims) != 4 and not one_d:
            raise ModelError(f"ConvTranspose node {self.name!r}: input must be (N, C, H, W) or (N, C, L), got shape "
                             f"{list(dims)}")
        if dims[1] != self.weight.shape[0]:
            raise ModelError(f"ConvTranspose node {self.name!r}: input has {dims[1]} channels, weights expect "
                             f"{self.weight.shape[0]}")
        sizes = tuple(dims[2:]) + ((1,) if one_d else ())
        out = self.output_size or (None, None)
        self.geometry = tuple(
            transposed_axis(size, k, s, d, op, begin, end, o, self.auto_pad)
            for size, k, s, d, op, begin, end, o in zip(sizes, self.weight.shape[2:], self.stride, self.dilation,
                                                        self.output_padding, self.pads[:2], self.pads[2:], out))
        spatial = tuple(length for _, length in self.geometry)
        return (dims[0], self.out_channels) + (spatial[:1] if one_d else spatial)

    def flops(self):
        n, c, h, w = self.in_shapes[0]
        return 2 * n * h * w * c * self.weight[0].size

    def weights(self):
        found = {"weight": self.weight}
        if self.bias is not None:
            found["bias"] = self.bias
        return found

    def reference(self, x):
        n, c, h, w = x.shape
        cin_g, mg = c // self.groups, self.weight.shape[1]
        (kh, kw), (sh, sw), (dh, dw) = self.weight.shape[2:], self.stride, self.dilation
        (pt, oh), (pl, ow) = self.geometry
        full = np.zeros((n, self.out_channels, max((h - 1) * sh + (kh - 1) * dh + 1, pt + oh),
                         max((w - 1) * sw + (kw - 1) * dw + 1, pl + ow)))
        weight = self.weight.astype(np.float64)
        for g in range(self.groups):
            xg = x[:, g * cin_g:(g + 1) * cin_g].astype(np.float64)
            for i in range(kh):
                for j in range(kw):
                    part = np.einsum("cm,nchw->nmhw", weight[g * cin_g:(g + 1) * cin_g, :, i, j], xg)
                    full[:, g * mg:(g + 1) * mg, i * dh:i * dh + (h - 1) * sh + 1:sh,
                         j * dw:j * dw + (w - 1) * sw + 1:sw] += part
        out = full[:, :, pt:pt + oh, pl:pl + ow]
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, 1, 1)
        return apply_activation(out, self.activation)

    # fusion ----------------------------------------------------------------------------
    def with_scale_shift(self, scale, shift):
        if self.activation or scale.size != self.out_channels:
            return None
        scale, shift = scale.astype(np.float64), shift.astype(np.float64)
        fused = copy.copy(self)
        per_group = scale.reshape(self.groups, 1, -1, 1, 1)
        shape = self.weight.shape
        fused.weight = (self.weight.reshape(self.groups, -1, *shape[1:]) * per_group).reshape(shape).astype(np.float32)
        bias = self.bias.astype(np.float64) if self.bias is not None else 0.0
        fused.bias = (bias * scale + shift).astype(np.float32)
        return fused

    # slicing -------------------------------------------------------------------------
    def input_box(self, out_box, index):
        _, _, h, _ = self.in_shapes[0]
        kh, sh, dh = self.weight.shape[2], self.stride[0], self.dilation[0]
        pt = self.geometry[0][0]
        # input rows whose scatter reaches output rows h0..h1
        lo = max(ceil_div(out_box.h0 + pt - (kh - 1) * dh, sh), 0)
        hi = min((out_box.h1 - 1 + pt) // sh + 1, h)
        cin_g, mg = self.weight.shape[0] // self.groups, self.weight.shape[1]
        c_lo, c_hi = out_box.c0 // mg * cin_g, ((out_box.c1 - 1) // mg + 1) * cin_g
        return Box(out_box.n0, out_box.n1, c_lo, c_hi, lo, max(hi, lo))

    def channel_block(self, target):
        """Output channels per work-item: the tuned block where every block
        of the layer lies in one group, else 1."""
        block = target.tuned(f"conv_transpose.{target.kind}", BLOCKS[target.kind])["CB"]
        return block if self.groups == 1 or self.weight.shape[1] % block == 0 else 1

    def params(self, target):
        """Weights as the kernel reads them: (M / CB, KH, KW, C / groups, CB)
        for blocks of CB output channels, zero-padded to whole blocks."""
        c, mg, kh, kw = self.weight.shape
        block = self.channel_block(target)
        per_group = self.weight.reshape(self.groups, c // self.groups, mg, kh, kw)
        packed = per_group.transpose(0, 2, 3, 4, 1).reshape(self.out_channels, kh, kw, c // self.groups)
        padded = np.zeros((ceil_div(self.out_channels, block) * block, kh, kw, c // self.groups), np.float32)
        padded[:self.out_channels] = packed
        blocks = padded.reshape(-1, block, kh, kw, c // self.groups).transpose(0, 2, 3, 4, 1)
        return {"w": np.ascontiguousarray(blocks),
                "bias": self.bias if self.bias is not None else np.zeros(1, np.float32)}

    def launches(self, target, box):
        _, c, h, w = self.in_shapes[0]
        _, m, oh, ow = self.out_shape
        (kh, kw), (sh, sw), (dh, dw) = self.weight.shape[2:], self.stride, self.dilation
        block = self.channel_block(target)
        args = {"out": OUT, "in": In(0), "w": Param("w"), "bias": Param("bias"), "cin_g": c // self.groups,
                "m_per_group": self.weight.shape[1], "H": h, "W": w, "OH": oh, "OW": ow, "KH": kh, "KW": kw,
                "sh": sh, "sw": sw, "dh": dh, "dw": dw, "pt": self.geometry[0][0], "pl": self.geometry[1][0],
                **box_args(box), "bn": box.n1 - box.n0, **activation_args(self.activation),
                "has_bias": self.bias is not None}
        blocks = ceil_div(box.c1, block) - box.c0 // block     # whole blocks of the weights, over the box
        size, local = grid_launch(target, (ow, blocks * (box.h1 - box.h0), box.n1 - box.n0))
        return [Launch("clnn_conv_transpose_direct", size, local, args, (f"-DCB={block}",))]

    # ONNX ------------------------------------------------------------------------------
    def to_onnx(self, writer):
        """Explicit pads and output_padding giving the bound output size."""
        _, _, h, w = self.in_shapes[0]
        pads, output_padding = [0, 0, 0, 0], [0, 0]
        for axis, (size, k, s, d, (begin, length)) in enumerate(zip((h, w), self.weight.shape[2:], self.stride,
                                                                    self.dilation, self.geometry)):
            rest = (size - 1) * s + (k - 1) * d + 1 - begin - length
            pads[axis], pads[axis + 2], output_padding[axis] = begin, max(rest, 0), max(-rest, 0)
        weight, one_d = self.weight, len(self.in_dims[0]) == 3
        attrs = {"kernel_shape": list(weight.shape[2:]), "strides": list(self.stride), "pads": pads,
                 "dilations": list(self.dilation), "output_padding": output_padding, "group": self.groups}
        if one_d:   # the width axis of the 4-D view is 1 wide: write the op as ONNX's 1-D form
            weight = weight[..., 0]
            attrs = {k: (v[::2] if k == "pads" else v[:1]) if isinstance(v, list) else v for k, v in attrs.items()}
        inputs = [self.inputs[0], writer.const(self, "weight", weight)]
        if self.bias is not None:
            inputs.append(writer.const(self, "bias", self.bias))
        y = writer.node(self, "ConvTranspose", inputs, **attrs)
        writer.activation(self, y, self.activation)


def _from_onnx(node):
    x = node.tensor(0)
    dims = node.shape(x)
    if len(dims) not in (3, 4):
        node.fail(f"input of shape {list(dims)}: clnn runs 1-D and 2-D transposed convolutions only")
    spatial = len(dims) - 2
    weight = node.constant(1, "the weight")
    if weight.ndim != len(dims):
        node.fail(f"the weight of shape {list(weight.shape)} does not match the rank-{len(dims)} input")
    bias = node.constant(2, "the bias") if node.has(2) else None
    kernel = node.ints("kernel_shape", spatial, weight.shape[2:])
    if kernel != weight.shape[2:]:
        node.fail(f"kernel_shape {list(kernel)} differs from the weight's {list(weight.shape[2:])}")
    groups = node.attr("group", 1)
    if groups < 1 or dims[1] % groups or dims[1] != weight.shape[0]:
        node.fail(f"{dims[1]} input channels do not match the weight's {weight.shape[0]} in {groups} group(s)")
    stride = node.ints("strides", spatial, (1,) * spatial)
    dilation = node.ints("dilations", spatial, (1,) * spatial)
    pads = node.ints("pads", 2 * spatial, (0,) * 2 * spatial)
    output_padding = node.ints("output_padding", spatial, (0,) * spatial)
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_shape = node.attr("output_shape")
    if output_shape is not None:
        output_shape = list(output_shape)[-spatial:]
        if any(pads):
            node.fail("pads and output_shape cannot both be given (output_shape sets the padding)")
    if auto_pad != "NOTSET" and any(pads):
        node.fail(f"pads {list(pads)} cannot be given with auto_pad {auto_pad}")
    if auto_pad.startswith("SAME") and any(output_padding) and output_shape is None:
        node.fail("output_padding with auto_pad SAME_* is not supported (ONNX and onnxruntime disagree on its "
                  "output size)")
    if spatial == 1:    # (N, C, L) is stored as (N, C, L, 1): a (k, 1) window over it
        weight = weight[..., None]
        stride, dilation, output_padding = stride + (1,), dilation + (1,), output_padding + (0,)
        pads = (pads[0], 0, pads[1], 0)
        output_shape = None if output_shape is None else output_shape + [1]
    else:
        pads = (pads[0], pads[1], pads[2], pads[3])
    return ConvTranspose2d(node.out, x, weight, bias, stride, pads, dilation, groups, output_padding,
                           output_shape, auto_pad)


OP = OpEntry(layers=(ConvTranspose2d,), onnx={"ConvTranspose": _from_onnx}, sources=("conv_transpose",))
