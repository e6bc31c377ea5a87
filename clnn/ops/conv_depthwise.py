"""How depthwise convolutions (one input channel per group, any channel
multiplier) run on CPUs: kernels/conv_depthwise_cpu.cl, which layers it
takes and how a box of the output is split over work-items.

The kernel computes OR output rows and CW columns per pass from a private
copy of the input rows they read; its window, strides and dilations are
built in. Small planes at stride 1 take its flat variant, whole rows as one
run of vectors (``flat``). A work-item takes ``cb`` channels of ``rb`` rows
of one batch item: as many whole channel planes as leave ITEMS_PER_CORE
work-items per compute unit, and fewer rows where the box has too few
planes for that.
"""

from .base import OUT, In, Launch, Param, activation_args, box_args, ceil_div

OR = 4                  # output rows per pass
CW_VECTORS = 8          # output columns per pass, in vectors
# more work-items than cores even out planes of unequal cost (edges, partial
# vectors) over the cores; PoCL hands work-groups to its threads as they free
ITEMS_PER_CORE = 8
# the private copy of a pass's input rows must fit in this (a window of
# large dilations would make it too big: the direct kernel serves those)
MOST_PRIVATE_BYTES = 16384
# small planes (stride 1, dilation 1) run the flat kernel, rows computed as
# one run at a padded pitch: where the output has at most FLAT_MOST_COLUMNS
# columns and a plane's padded input rows, (OH + KH - 1) x (OW + KW - 1),
# fit FLAT_FLOATS floats (each of its three private buffers holds that many).
# Measured with AVX2 on mobilenet_v2's layers against the row kernel:
# 1.4-1.5x on 7x7 planes, 1.25-1.3x on 14x14, 1.05-1.2x on 28x28.
FLAT_MOST_COLUMNS = 32
FLAT_FLOATS = 2048


def _sizes(layer, vector_width):
    """(input rows per pass, floats per row's phase) as the kernel's IR and PL."""
    (kh, kw), (sh, sw), (dh, dw) = layer.attrs.kernel, layer.attrs.stride, layer.attrs.dilation
    return (OR - 1) * sh + (kh - 1) * dh + 1, CW_VECTORS * vector_width + (kw - 1) * dw // sw


def chosen(layer, target):
    """Whether ``layer`` runs as a depthwise convolution on ``target``:
    grouped with one input channel per group, on a CPU, with a window whose
    rows fit MOST_PRIVATE_BYTES."""
    if target.kind != "cpu" or layer.groups == 1 or layer.weight.shape[1] != 1:
        return False
    rows, phase = _sizes(layer, target.vector_width)
    return 4 * rows * layer.attrs.stride[1] * phase <= MOST_PRIVATE_BYTES


def flat(layer):
    """Whether ``layer`` (chosen) runs the flat kernel for small planes."""
    (kh, kw), a = layer.attrs.kernel, layer.attrs
    _, _, oh, ow = layer.out_shape
    return a.stride == (1, 1) and a.dilation == (1, 1) and ow <= FLAT_MOST_COLUMNS and \
        (oh + kh - 1) * (ow + kw - 1) <= FLAT_FLOATS


def _work_split(target, box):
    """(channels, rows) per work-item: whole planes, as many as leave
    ITEMS_PER_CORE work-items per compute unit; rows (in passes of OR) split
    only where the box's planes are fewer than that."""
    want = ITEMS_PER_CORE * target.compute_units
    bn, bc, bh = box.n1 - box.n0, box.c1 - box.c0, box.h1 - box.h0
    cb = max(min(bn * bc // want, bc), 1)
    planes = bn * ceil_div(bc, cb)
    rb = bh if planes >= want else ceil_div(ceil_div(bh, ceil_div(want, planes)), OR) * OR
    return cb, rb


def launch(layer, target, box):
    """The depthwise kernel's launch for ``box`` of ``layer``."""
    _, c, h, w = layer.in_shapes[0]
    _, m, oh, ow = layer.out_shape
    a = layer.attrs
    cb, rb = _work_split(target, box)
    args = {"out": OUT, "in": In(0), "w": Param("w"), "bias": Param("bias"),
            "res": In(1) if layer.has_residual else OUT, "H": h, "W": w, "OH": oh, "OW": ow,
            "pt": a.pads[0], "pl": a.pads[1], "mult": m // c, **box_args(box), **activation_args(layer.activation),
            "has_bias": layer.bias is not None, "has_res": layer.has_residual, "cb": cb, "rb": rb}
    size = (ceil_div(box.h1 - box.h0, rb), ceil_div(box.c1 - box.c0, cb), box.n1 - box.n0)
    if flat(layer):
        options = ("-cl-mad-enable", f"-DVW={target.vector_width}", f"-DKH={a.kernel[0]}", f"-DKW={a.kernel[1]}",
                   f"-DFLAT_FLOATS={FLAT_FLOATS}")
        return Launch("clnn_conv_depthwise_flat_cpu", size, (1, 1, 1), args, options)
    options = ("-cl-mad-enable", f"-DVW={target.vector_width}", f"-DKH={a.kernel[0]}", f"-DKW={a.kernel[1]}",
               f"-DSH={a.stride[0]}", f"-DSW={a.stride[1]}", f"-DDH={a.dilation[0]}", f"-DDW={a.dilation[1]}",
               f"-DOR={OR}", f"-DCW={CW_VECTORS * target.vector_width}")
    return Launch("clnn_conv_depthwise_cpu", size, (1, 1, 1), args, options)
