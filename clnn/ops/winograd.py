"""Winograd F(m x m, 3 x 3) convolution on GPUs (kernels/winograd.cl): the
weight transform, and the three launches of one box (input transform,
batched GEMM, output transform).

Tiles lie on a grid fixed to the whole output, m rows apart, so a slice of
rows computes its tiles as the whole layer does; such a slice reads the
input rows of its output rows rounded out to that grid (``tile_rows``,
Conv2d.kernel_input_box).
"""

import numpy as np

from ..host import page_aligned
from .base import OUT, In, Launch, Param, Scratch, activation_args, ceil_div, pow2_at_least
from .gemm import plan_gemm

# G of F(m x m, 3 x 3): U = G g G^T, by output tile size m
G = {
    2: np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
    4: np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                 [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
}
# every m a tuning may choose divides this: rows rounded out to it suit them all
GRID = 4
TRANSFORM_LOCAL = 256


def eligible(layer):
    """3x3, stride 1, no dilation, one group: the layers Winograd serves."""
    return (layer.groups == 1 and tuple(layer.attrs.kernel) == (3, 3) and tuple(layer.attrs.stride) == (1, 1)
            and tuple(layer.attrs.dilation) == (1, 1))


def chosen(layer, target):
    """Whether ``layer`` runs as Winograd on ``target``: a GPU, an eligible
    layer with enough input channels and tiles (over the whole layer, so
    that every slice agrees with the transformed weights)."""
    t = target.tuning
    return (target.kind == "gpu" and t.winograd in G and eligible(layer)
            and layer.in_shapes[0][1] >= t.winograd_min_channels
            and tiles(layer, t.winograd) >= t.winograd_min_tiles and fits(layer, t.winograd))


def tile_rows(h0, h1, out_h):
    """Output rows h0..h1 rounded out to the tile grid (within the output)."""
    return h0 // GRID * GRID, min(ceil_div(h1, GRID) * GRID, out_h)


def transform_weights(weight, m):
    """U[t][c][k] = (G g G^T)[t] for output channel k and input channel c,
    t = row x (m + 2) + column; made in float64."""
    g = G[m]
    u = np.einsum("ij,ocjl,kl->ikco", g, weight.astype(np.float64), g)
    alpha = m + 2
    return page_aligned(u.reshape(alpha * alpha, weight.shape[1], weight.shape[0]))


def tiles(layer, m):
    """Tiles of the whole layer's output."""
    n, _, oh, ow = layer.out_shape
    return n * ceil_div(oh, m) * ceil_div(ow, m)


def fits(layer, m):
    """Whether the scratch matrices stay below 2^31 elements (the kernels
    index them with ints)."""
    channels = max(layer.in_shapes[0][1], layer.out_shape[1])
    return (m + 2) ** 2 * channels * (tiles(layer, m) + 3) < 2 ** 31


def transform_launch(count, channels):
    """(global, local) over ``count`` tiles x ``channels``: work-groups as
    wide as the tiles (up to 64), so that few tiles leave few idle."""
    width = min(pow2_at_least(count), 64)
    local = (width, TRANSFORM_LOCAL // width)
    return (ceil_div(count, width) * width, ceil_div(channels, local[1]) * local[1]), local


def launches(layer, target, box):
    """The three launches computing ``box`` of a 3x3 stride-1 ``layer``."""
    m = target.tuning.winograd
    alpha2 = (m + 2) ** 2
    _, c, h, w = layer.in_shapes[0]
    _, out_c, oh, ow = layer.out_shape
    bc, bh, bn = box.c1 - box.c0, box.h1 - box.h0, box.n1 - box.n0
    row0 = box.h0 // m * m
    th, tw = ceil_div(box.h1, m) - box.h0 // m, ceil_div(ow, m)
    count = bn * th * tw
    ld = ceil_div(count, 4) * 4
    v, mo = Scratch(0, 4 * alpha2 * c * ld), Scratch(1, 4 * alpha2 * bc * ld)
    options = ("-cl-mad-enable", f"-DWINO_M={m}")
    tiling = {"n0": box.n0, "row0": row0, "TH": th, "TW": tw, "P": count, "ld": ld}
    size, local = transform_launch(count, c)
    found = [Launch("clnn_conv_wino_input", size, local,
                    {"v": v, "in": In(0), "C": c, "H": h, "W": w, "pt": layer.attrs.pads[0],
                     "pl": layer.attrs.pads[1], **tiling}, options)]
    plan = plan_gemm(target, bc, count, c, batch=alpha2, split=False)
    size, local = plan.groups(bc, count)
    found.append(Launch("clnn_gemm_batched", size[:2] + (alpha2,), local,
                        {"c": mo, "a": Param("u"), "b": v, "M": out_c, "c0": box.c0, "bc": bc, "K": c, "P": count,
                         "ld": ld}, plan.tile.options() + target.tuning.build_options))
    size, local = transform_launch(count, bc)
    found.append(Launch("clnn_conv_wino_output", size, local,
                        {"out": OUT, "mo": mo, "bias": Param("bias"), "res": In(1) if layer.has_residual else OUT,
                         "OH": oh, "OW": ow, "c0": box.c0, "h0": box.h0, "bh": bh, "bc": bc, **tiling,
                         **activation_args(layer.activation), "has_bias": layer.bias is not None,
                         "has_res": layer.has_residual}, options))
    return found
