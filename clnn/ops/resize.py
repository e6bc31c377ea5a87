"""Resize: nearest and (bi)linear interpolation over the spatial axes of an
(N, C, L) or (N, C, H, W) tensor; ONNX Resize, and Upsample where a model of
opset 11 or later still holds one.

Every output row reads at most two input rows, with weights that depend on
the row's coordinate alone, and likewise every column. The host works those
tables out once (``axis_table``), in float32 and by onnxruntime's formulas,
so that nearest picks the same pixel at ties and linear the same weights;
the kernel only gathers and blends.
"""

import numpy as np

from ..box import Box
from ..errors import ModelError
from .base import OUT, In, Launch, Layer, Param, box_args, grid_launch
from .registry import OpEntry

MODES = ("nearest", "linear")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_half_pixel_for_nn", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
f32 = np.float32


def original_coordinates(out_len, in_len, scale, coordinate_mode, roi=(0.0, 1.0)):
    """float32 input coordinate of every output position along one axis,
    as onnxruntime computes it; a scale of exactly 1 maps each position to
    itself whatever the mode."""
    x = np.arange(out_len, dtype=f32)
    s, half = f32(scale), f32(0.5)
    if s == 1:
        return x
    if coordinate_mode == "asymmetric":
        return x / s
    if coordinate_mode == "half_pixel":
        return (x + half) / s - half
    if coordinate_mode == "pytorch_half_pixel":
        return (x + half) / s - half if out_len > 1 else np.zeros(1, f32)
    if coordinate_mode == "tf_half_pixel_for_nn":
        return (x + half) / s
    if coordinate_mode == "align_corners":
        return x * f32(in_len - 1) / f32(out_len - 1) if out_len > 1 else np.zeros(1, f32)
    if coordinate_mode == "tf_crop_and_resize":
        start, end = f32(roi[0]), f32(roi[1])
        if out_len == 1:
            return np.array([0.5 * (float(start) + float(end)) * (in_len - 1)], f32)
        return start * f32(in_len - 1) + x * (end - start) * f32(in_len - 1) / f32(out_len - 1)
    if coordinate_mode == "half_pixel_symmetric":
        width = s * f32(in_len)
        offset = f32(in_len) / f32(2) * (f32(1) - f32(out_len) / width)
        return (offset + (x.astype(np.float64) + 0.5) / s - 0.5).astype(f32)
    raise ModelError(f"unknown coordinate_transformation_mode {coordinate_mode!r}")


def nearest_index(x, nearest_mode):
    """The input position nearest mode picks for float32 coordinates ``x``."""
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    whole = np.trunc(x)
    rounded = whole + np.sign(x) * (np.abs(x - whole) >= 0.5)   # halves away from zero, as C's round
    if nearest_mode == "round_prefer_floor":
        return np.where(x == whole + f32(0.5), np.floor(x), rounded)
    return rounded


def axis_table(out_len, in_len, scale, mode, coordinate_mode, nearest_mode, roi=(0.0, 1.0)):
    """(index, weight): for every output position along one axis the two
    input positions it reads (int32, (out_len, 2)) and their weights
    (float32); index -1 marks a position outside the crop of
    tf_crop_and_resize (it takes the extrapolation value). Nearest reads
    the first position only."""
    x = original_coordinates(out_len, in_len, scale, coordinate_mode, roi)
    outside = (x < 0) | (x > in_len - 1) if coordinate_mode == "tf_crop_and_resize" else np.zeros(out_len, bool)
    weight = np.zeros((out_len, 2), f32)
    if mode == "nearest":
        first = np.clip(nearest_index(x, nearest_mode), 0, in_len - 1).astype(np.int32)
        index = np.stack([first, first], axis=1)
        weight[:, 0] = 1
    else:
        x = np.clip(x, f32(0), f32(in_len - 1))
        first = np.minimum(x.astype(np.int32), in_len - 1)
        second = np.minimum(first + 1, in_len - 1)
        index = np.stack([first, second], axis=1)
        # each position's weight is the other's distance; both 0.5 at the last
        weight[:, 0] = np.abs(x - second.astype(f32))
        weight[:, 1] = np.abs(x - first.astype(f32))
        weight[first == second] = 0.5
    index[outside] = -1
    return index.astype(np.int32), weight


class Resize(Layer):
    op = "Resize"

    def __init__(self, name, inputs, scales, sizes=None, mode="nearest", coordinate_mode="half_pixel",
                 nearest_mode="round_prefer_floor", roi=None, extrapolation_value=0.0):
        """``scales``: one per spatial axis (the last one or two), as the
        coordinate transformation uses them; ``sizes``: the output's spatial
        sizes (default: floor(scale * input size)); ``roi``: (start, end)
        per spatial axis, for tf_crop_and_resize."""
        super().__init__(name, inputs)
        self.scales = tuple(float(f32(s)) for s in scales)
        self.sizes = None if sizes is None else tuple(int(s) for s in sizes)
        self.mode, self.coordinate_mode, self.nearest_mode = mode, coordinate_mode, nearest_mode
        self.roi = tuple((float(a), float(b)) for a, b in roi) if roi is not None else ((0.0, 1.0),) * len(scales)
        self.extrapolation_value = float(extrapolation_value)
        for what, value, allowed in (("mode", mode, MODES), ("coordinate_transformation_mode", coordinate_mode,
                                                              COORDINATE_MODES), ("nearest_mode", nearest_mode,
                                                                                  NEAREST_MODES)):
            if value not in allowed:
                raise ModelError(f"Resize node {name!r}: {what} {value!r} is not supported; supported: "
                                 f"{', '.join(allowed)}")
        if not 1 <= len(self.scales) <= 2 or min(self.scales) <= 0:
            raise ModelError(f"Resize node {name!r}: needs one or two positive scales, got {list(self.scales)}")
        if len(self.roi) != len(self.scales) or (self.sizes is not None and len(self.sizes) != len(self.scales)):
            raise ModelError(f"Resize node {name!r}: roi and sizes need one entry per scale")
        self.tables = None

    def describe(self):
        return f"Resize {self.mode} x" + "x".join(f"{s:g}" for s in self.scales)

    def infer(self, in_dims):
        dims = in_dims[0]
        spatial = len(self.scales)
        if len(dims) != 2 + spatial:
            raise ModelError(f"Resize node {self.name!r}: {spatial} spatial scale(s) need a rank-{2 + spatial} "
                             f"input (N, C, ...), got shape {list(dims)}")
        sizes = self.sizes or tuple(int(f32(s) * f32(d)) for s, d in zip(self.scales, dims[2:]))
        if min(sizes) < 1:
            raise ModelError(f"Resize node {self.name!r}: scales {list(self.scales)} give an empty output from "
                             f"{list(dims)}")
        self.tables = [axis_table(o, i, s, self.mode, self.coordinate_mode, self.nearest_mode, r)
                       for o, i, s, r in zip(sizes, dims[2:], self.scales, self.roi)]
        if spatial == 1:    # (N, C, L) is stored as (N, C, L, 1): its columns map to themselves
            self.tables.append((np.zeros((1, 2), np.int32), np.array([[1, 0]], f32)))
        return tuple(dims[:2]) + sizes

    def flops(self):
        return int(np.prod(self.out_shape)) * (8 if self.mode == "linear" else 1)

    def params(self, target):
        (rows, row_w), (cols, col_w) = self.tables
        return {"rows": rows.reshape(-1), "row_w": row_w.reshape(-1), "cols": cols.reshape(-1),
                "col_w": col_w.reshape(-1)}

    def reference(self, x):
        (rows, row_w), (cols, col_w) = self.tables
        x = x.astype(np.float64)
        if self.mode == "nearest":
            out = x[:, :, rows[:, 0]][:, :, :, cols[:, 0]]
        else:
            by_rows = (x[:, :, rows[:, 0]] * row_w[:, :1].astype(np.float64)
                       + x[:, :, rows[:, 1]] * row_w[:, 1:].astype(np.float64))
            out = (by_rows[:, :, :, cols[:, 0]] * col_w[:, 0].astype(np.float64)
                   + by_rows[:, :, :, cols[:, 1]] * col_w[:, 1].astype(np.float64))
        outside = (rows[:, 0] < 0)[:, None] | (cols[:, 0] < 0)[None, :]
        out[:, :, outside] = self.extrapolation_value
        return out

    def input_box(self, out_box, index):
        rows = self.tables[0][0][out_box.h0:out_box.h1]
        read = rows[rows >= 0] if self.mode == "linear" else rows[rows[:, 0] >= 0, 0]
        lo, hi = (int(read.min()), int(read.max()) + 1) if read.size else (0, 0)
        return Box(out_box.n0, out_box.n1, out_box.c0, out_box.c1, lo, hi)

    def launches(self, target, box):
        _, _, h, w = self.in_shapes[0]
        _, _, oh, ow = self.out_shape
        args = {"out": OUT, "in": In(0), "rows": Param("rows"), "row_w": Param("row_w"), "cols": Param("cols"),
                "col_w": Param("col_w"), "outside": self.extrapolation_value, "H": h, "W": w, "OH": oh, "OW": ow,
                **box_args(box), "bn": box.n1 - box.n0}
        size, local = grid_launch(target, (ow, (box.c1 - box.c0) * (box.h1 - box.h0), box.n1 - box.n0))
        options = (("-DCLNN_RESIZE_LINEAR",) if self.mode == "linear" else ()) + (
            ("-DCLNN_RESIZE_CROP",) if self.coordinate_mode == "tf_crop_and_resize" else ())
        return [Launch("clnn_resize_box", size, local, args, options)]

    def to_onnx(self, writer):
        if self.coordinate_mode == "tf_half_pixel_for_nn" and writer.opset >= 13:
            raise ModelError(f"Resize {self.name!r}: tf_half_pixel_for_nn exists in opsets 11 and 12 only, "
                             f"not {writer.opset}")
        if self.coordinate_mode == "half_pixel_symmetric" and writer.opset < 19:
            raise ModelError(f"Resize {self.name!r}: half_pixel_symmetric needs opset 19 or later, not "
                             f"{writer.opset}")
        dims = self.in_dims[0]
        roi = [0.0] * len(dims) + [1.0] * len(dims)
        for axis, (start, end) in enumerate(self.roi, start=2):
            roi[axis], roi[len(dims) + axis] = start, end
        scales = [1.0, 1.0, *self.scales]
        if any(int(f32(s) * f32(d)) != o for s, d, o in zip(scales, dims, self.out_dims)):
            raise ModelError(f"Resize {self.name!r}: output sizes {list(self.out_dims)} are not those of scales "
                             f"{scales}, and ONNX takes one or the other")
        attrs = {"mode": self.mode, "coordinate_transformation_mode": self.coordinate_mode}
        if self.mode == "nearest":
            attrs["nearest_mode"] = self.nearest_mode
        if self.coordinate_mode == "tf_crop_and_resize":
            attrs["extrapolation_value"] = self.extrapolation_value
        writer.node(self, "Resize", [self.inputs[0], writer.const(self, "roi", roi),
                                     writer.const(self, "scales", scales)], **attrs)


# ONNX ------------------------------------------------------------------------------------

def _spatial_axes(node, values, rank, what, axes, one):
    """Per-axis ``values`` of a Resize input (given for ``axes`` only, as
    opset 18 allows) spread over the ``rank`` axes, ``one`` elsewhere."""
    full = [one] * rank
    if len(values) != len(axes):
        node.fail(f"{what} has {len(values)} values for {len(axes)} axes")
    for axis, value in zip(axes, values):
        full[axis] = value
    return full


def _from_resize(node):
    x = node.tensor(0)
    dims = node.shape(x)
    rank = len(dims)
    if rank not in (3, 4):
        node.fail(f"input of shape {list(dims)}: clnn resizes (N, C, L) and (N, C, H, W) tensors only")
    mode = node.attr("mode", "nearest")
    if mode == "cubic":
        node.fail("mode cubic is not supported; nearest and linear are")
    if node.attr("antialias", 0):
        node.fail("antialias=1 is not supported")
    if node.attr("exclude_outside", 0):
        node.fail("exclude_outside=1 is not supported (it applies to cubic mode only)")
    node.ignore("cubic_coeff_a")
    coordinate_mode = node.attr("coordinate_transformation_mode", "half_pixel")
    nearest_mode = node.attr("nearest_mode", "round_prefer_floor")
    if mode != "nearest":
        nearest_mode = "round_prefer_floor"   # read only by nearest
    axes = [node.axis(a, rank) for a in node.attr("axes", list(range(rank)))]
    policy = node.attr("keep_aspect_ratio_policy", "stretch")
    roi = (0.0,) * rank + (1.0,) * rank
    if node.has(1):
        if coordinate_mode == "tf_crop_and_resize":
            given = [float(v) for v in node.constant(1, "roi").reshape(-1)]
            roi = tuple(_spatial_axes(node, given[:len(given) // 2], rank, "roi", axes, 0.0)
                        + _spatial_axes(node, given[len(given) // 2:], rank, "roi", axes, 1.0))
        elif node.is_constant(1):
            node.constant(1, "roi")        # read only by tf_crop_and_resize
        else:
            node.tensor(1)
    elif coordinate_mode == "tf_crop_and_resize":
        node.fail("tf_crop_and_resize needs the roi input")
    scales = node.constant(2, "scales").reshape(-1) if node.has(2) else np.zeros(0)
    sizes = node.constant(3, "sizes").reshape(-1) if node.has(3) else np.zeros(0)
    if (scales.size > 0) == (sizes.size > 0):
        node.fail("exactly one of scales and sizes must be given")
    if scales.size:
        if policy != "stretch":
            node.fail(f"keep_aspect_ratio_policy {policy!r} applies to sizes, not scales")
        scales = _spatial_axes(node, [float(f32(s)) for s in scales], rank, "scales", axes, 1.0)
        out = None
    else:
        out = _spatial_axes(node, [int(s) for s in sizes], rank, "sizes", axes, None)
        out = [d if o is None else o for o, d in zip(out, dims)]
        scales = [float(f32(o) / f32(d)) for o, d in zip(out, dims)]
        if policy in ("not_larger", "not_smaller"):
            pick = min if policy == "not_larger" else max
            common = pick(scales[a] for a in axes)
            scales = [common if a in axes else 1.0 for a in range(rank)]
            out = [int(np.round(f32(common) * f32(d))) if a in axes else d for a, d in enumerate(dims)]
        elif policy != "stretch":
            node.fail(f"keep_aspect_ratio_policy {policy!r} is not one of stretch, not_larger, not_smaller")
    if scales[0] != 1 or scales[1] != 1 or (out is not None and tuple(out[:2]) != tuple(dims[:2])):
        node.fail(f"scales {scales} resize the batch or channel axis; clnn resizes the spatial axes only")
    return Resize(node.out, x, scales[2:], None if out is None else out[2:], mode, coordinate_mode, nearest_mode,
                  list(zip(roi[2:rank], roi[rank + 2:])), node.attr("extrapolation_value", 0.0))


def _from_upsample(node):
    """Upsample (deprecated since opset 10) as onnxruntime runs its last
    form: asymmetric coordinates, nearest rounding down, scales >= 1."""
    x = node.tensor(0)
    dims = node.shape(x)
    if len(dims) not in (3, 4):
        node.fail(f"input of shape {list(dims)}: clnn resizes (N, C, L) and (N, C, H, W) tensors only")
    mode = node.attr("mode", "nearest")
    if mode not in MODES:
        node.fail(f"mode {mode!r} is not supported; nearest and linear are")
    scales = node.attr("scales") if not node.has(1) else node.constant(1, "scales").reshape(-1)
    if scales is None:
        node.fail("scales are required (an attribute or input 1)")
    scales = [float(f32(s)) for s in scales]
    if len(scales) != len(dims) or min(scales) < 1:
        node.fail(f"scales {scales} must give one value >= 1 per axis of the input {list(dims)}")
    if scales[:2] != [1.0, 1.0]:
        node.fail(f"scales {scales} resize the batch or channel axis; clnn resizes the spatial axes only")
    return Resize(node.out, x, scales[2:], mode=mode, coordinate_mode="asymmetric", nearest_mode="floor")


OP = OpEntry(layers=(Resize,), onnx={"Resize": _from_resize, "Upsample": _from_upsample}, sources=("resize",))
