"""How convolutions other than depthwise ones (and Dense layers past the
GEMV batch) run on CPUs: which kernel, how its weights are packed, how it
is blocked and launched. The choice depends on the layer's shape and the
target only, so every box of a layer runs the same kernel on the same
packed weights.

- Winograd (kernels/conv_winograd_cpu.cl): 3x3, stride 1, dilation 1, in
  4x4 output tiles (F(4x4, 3x3)) or, on maps too small to fill the
  kernel's vectors of tiles with those, 2x2 tiles (F(2x2, 3x3)).
- GEMM (kernels/conv_cpu.cl): any other convolution, as an implicit GEMM
  over im2col columns packed per work-item; grouped ones in one launch,
  their weights in panels of one group each.

Both launch work-groups of one work-item over a 2-D grid: axis 0 blocks of
pixels (GEMM) or of tiles (Winograd), axis 1 groups of ``pb`` panels of MR
output channels. ``pb`` is as large as the blocking allows (more panels per
work-item reuse its packed pixels more) but small enough to leave
``ITEMS_PER_CORE`` work-items per compute unit.
"""

import numpy as np

from ..host import aligned_empty
from . import winograd
from .base import OUT, In, Launch, Param, activation_args, box_args, ceil_div

# The blocking (MR, KC, ...) comes from the target's tuning (CpuBlocks in
# clnn.ops.tuning), by the target's vector width; see the kernels' headers.
ITEMS_PER_CORE = 4
# panels per work-item that splitting a small layer over more cores stops at
# (below, its packing repeated costs more than the cores gain)
SPLIT_PANELS = 4
# a 1x1 convolution's work-items of at most this many output channels read
# their blocks of input pixels in place rather than packed: each input
# vector then serves few panels, and reading it again from the cache for
# each costs less than the copy (above, its strided rows cost more; measured
# with AVX2 on mobilenet_v2's and squeezenet's pointwise layers)
DIRECT_CHANNELS = 96
# Winograd computes tiles in vectors of 2 * VW: a tile side is chosen where
# its tiles fill at least this share of those lanes (the deepest layers of
# small maps at batch 1 fill too few even with 2x2 tiles: the GEMM serves them)
WINOGRAD_MIN_LANE_USE = 0.5


def winograd_tile(layer, target):
    """The side of the output tiles (4 or 2) Winograd computes this layer
    in on a CPU ``target``, or None where the GEMM serves it better: the
    largest tile that fills at least WINOGRAD_MIN_LANE_USE of the kernel's
    vectors of 2 * VW tiles. Its tiles lie on winograd.GRID's row grid, as
    the GPU's do (Conv2d.kernel_input_box)."""
    if target.kind != "cpu" or not winograd.eligible(layer):
        return None
    n, _, oh, ow = layer.out_shape
    lanes = 2 * target.vector_width
    for side in (4, 2):
        tiles = n * ceil_div(oh, side) * ceil_div(ow, side)
        if tiles / (ceil_div(tiles, lanes) * lanes) >= WINOGRAD_MIN_LANE_USE:
            return side
    return None


def gemm_blocks(target):
    return target.tuning.cpu_blocks.for_width(target.vector_width)[0]


def winograd_blocks(target):
    return target.tuning.cpu_blocks.for_width(target.vector_width)[1]


def pack_panels(target, flat, groups=1):
    """(M, K) weights as the GEMM reads them: panels of MR rows, k-major,
    [panel][k][i], each group's M / groups rows in panels of their own (zero
    rows past them); written straight into page-aligned memory (no
    intermediate copy of the weights)."""
    mr = gemm_blocks(target)["MR"]
    m, k = flat.shape
    mg = m // groups
    gp = ceil_div(mg, mr)
    panels = aligned_empty(groups * gp * k * mr).reshape(groups, gp, k, mr)
    full = mg // mr
    for group, rows in zip(panels, flat.reshape(groups, mg, k)):
        group[:full] = rows[:full * mr].reshape(full, mr, k).transpose(0, 2, 1)
        if full < gp:
            group[full] = 0
            group[full, :, :mg - full * mr] = rows[full * mr:].T
    return panels.reshape(-1, k, mr)


def winograd_weights(layer, target):
    """u[panel][chunk][xi][k][i] = (G w G^T)[xi] of output channel
    panel * MR + i and input channel chunk * KC + k, zero past the last
    channels: a work-item reads the weights of one panel and chunk of input
    channels as one contiguous run. Computed in float64 a panel at a time,
    into page-aligned memory: the transient is one panel, not the layer."""
    b = winograd_blocks(target)
    mr, kc = b["MR"], b["KC"]
    m, c = layer.weight.shape[:2]
    g = winograd.G[winograd_tile(layer, target)]
    points = g.shape[0] ** 2
    chunks = ceil_div(c, kc)
    u = aligned_empty(ceil_div(m, mr) * chunks * points * kc * mr).reshape(-1, chunks, points, kc, mr)
    panel = np.zeros((mr, chunks * kc, points))
    for index in range(len(u)):
        rows = layer.weight[index * mr:(index + 1) * mr].astype(np.float64)
        panel[len(rows):] = 0
        panel[:len(rows), :c] = np.einsum("ai,mcij,bj->mcab", g, rows, g).reshape(len(rows), c, points)
        u[index] = panel.reshape(mr, chunks, kc, points).transpose(1, 3, 2, 0)     # [chunk][xi][k][i]
    return u


def _work_split(target, blocks, panels, most_blocks, most_product, groups=1):
    """(blocks per work-item, panels per work-item) of ``panels`` in each
    of ``groups`` groups: as many panels as the work-item holds (they share
    its packed pixels or transformed tiles, the costlier reuse), then as
    many blocks as fit beside them (blocks x panels <= most_product); while
    that leaves fewer than ITEMS_PER_CORE work-items per compute unit,
    halving the blocks, then the panels down to SPLIT_PANELS, and below it
    where the work-items still fit one per compute unit. Both are then
    evened out over their work-items."""
    pb = min(panels, most_product)
    nb = min(most_blocks, blocks, max(most_product // pb, 1))
    while ceil_div(blocks, nb) * ceil_div(panels, pb) * groups < ITEMS_PER_CORE * target.compute_units and \
            (nb > 1 or pb > SPLIT_PANELS):
        if nb > 1:
            nb = ceil_div(nb, 2)
        else:
            pb = ceil_div(pb, 2)
    # still fewer work-items than cores (a deep layer on a small map at batch
    # 1 on many cores): fewer panels each, as many work-items as fit one
    # round, shrink every core's work whatever the repeated packing
    slots = target.compute_units // (ceil_div(blocks, nb) * groups)
    if slots > ceil_div(panels, pb):
        pb = ceil_div(panels, slots)
    return ceil_div(blocks, ceil_div(blocks, nb)), ceil_div(panels, ceil_div(panels, pb))


def _options(target, blocks, *extra):
    return ("-cl-mad-enable", f"-DVW={target.vector_width}", *extra,
            *(f"-D{k}={v}" for k, v in sorted(blocks.items())))


def box_panels(box, mr):
    """Panels of mr output channels (aligned to channel 0) that box's channels touch."""
    return ceil_div(box.c1, mr) - box.c0 // mr


def _group_panels(box, mg, mr):
    """(groups of mg output channels that box's channels touch, the most
    panels of mr channels, aligned to its group's first channel, that box
    touches in one of them)."""
    first, last = box.c0 // mg, (box.c1 - 1) // mg
    most = max(ceil_div(min(box.c1 - g * mg, mg), mr) - max(box.c0 - g * mg, 0) // mr
               for g in {first, min(first + 1, last), last})
    return last - first + 1, most


def gemm_launch(target, box, attrs, args, groups=1):
    """The CPU GEMM's launch for ``box``; ``args``: the arguments that the
    GEMM kernels share (clnn.ops.conv.gemm_launch); ``groups``: the
    convolution's groups, whose panels stay apart (none crosses a group)."""
    b = gemm_blocks(target)
    mg = args["M"] // groups
    pixel_blocks = ceil_div(args["P"], 2 * target.vector_width)
    touched, panels = _group_panels(box, mg, b["MR"])
    # sums outlive a chunk of K only where K takes several: one chunk ends
    # each micro-tile at once and leaves the accumulators' room unused
    most_product = b["PBNB"] if args["K"] > b["KC"] else b["NB"] * panels
    nb, pb = _work_split(target, pixel_blocks, panels, b["NB"], most_product, touched)
    # a 1x1 stride-1 unpadded convolution reads its input plane as a matrix
    flat = tuple(attrs.kernel) == (1, 1) and attrs.stride == (1, 1) and not any(attrs.pads)
    # grouped stride-1 ones read in place too (their few panels per group
    # would use packed columns too few times to repay the copy)
    direct = (flat or (groups > 1 and attrs.stride[1] == 1)) and pb * b["MR"] <= DIRECT_CHANNELS
    gi = ceil_div(panels, pb)
    size = (ceil_div(pixel_blocks, nb), touched * gi)
    return Launch("clnn_conv_gemm_cpu", size, (1, 1),
                  dict(args, wpk=Param("w"), Mg=mg, gp=ceil_div(mg, b["MR"]), gi=gi, flat=flat, direct=direct,
                       pb=pb, nb=nb), _options(target, b))


def winograd_launch(layer, target, box):
    """The Winograd kernel's launch for ``box`` of ``layer``."""
    _, c, h, w = layer.in_shapes[0]
    _, m, oh, ow = layer.out_shape
    b = winograd_blocks(target)
    side = winograd_tile(layer, target)
    bn = box.n1 - box.n0
    top = box.h0 // side * side
    tile_blocks = ceil_div(bn * ceil_div(box.h1 - top, side) * ceil_div(ow, side), 2 * target.vector_width)
    panels = box_panels(box, b["MR"])
    tb, pb = _work_split(target, tile_blocks, panels, b["TB"], b["TPB"])
    args = {"out": OUT, "in": In(0), "u": Param("u"), "bias": Param("bias"),
            "res": In(1) if layer.has_residual else OUT, "M": m, "C": c, "H": h, "W": w, "OH": oh, "OW": ow,
            "pt": layer.attrs.pads[0], "pl": layer.attrs.pads[1], **box_args(box), "bn": bn,
            **activation_args(layer.activation), "has_bias": layer.bias is not None,
            "has_res": layer.has_residual, "tb": tb, "pb": pb}
    size = (ceil_div(tile_blocks, tb), ceil_div(panels, pb))
    return Launch("clnn_conv_winograd_cpu", size, (1, 1), args, _options(target, b, f"-DWT={side}"))
