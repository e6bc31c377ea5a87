"""N-D index maps: how the layers that move elements without arithmetic
(Transpose, Slice, Pad, Concat off the channel axis, DepthToSpace,
SpaceToDepth) say which input element each output element takes, and how
the layers that work along axes (Reduce*, Softmax, the normalisations) say
which elements form a group. Both become small int tables (a Param) that
kernels/nd.cl and kernels/clnn_rows.h read.

A tensor is walked as a *space*: a row-major shape that refines its 4-D
storage view (its outside dims, or a finer split of them: DepthToSpace
walks its output as (N, C, H, b, W, b)). Every dim of a space lies in one
dim of the 4-D view, which is what boxes are made of: an output box gives a
range of indices per dim of the output's space, and ranges per dim of the
input's space give the input box.

Inside a batch item, a dim steps over elements; a dim of the 4-D view's
batch steps over batch items, whose stride (``_ns``) is known only when
the kernel is bound. So every dim carries an element step and a batch step,
and kernels add ``element step + batch step * ns``.
"""

from dataclasses import dataclass

import numpy as np

from ..box import Box, to4d
from ..errors import ModelError
from .base import FLAT_LOCAL, OUT, In, Launch, Layer, Param, box_args, flat_launch
from .registry import OpEntry

# what clnn_nd_copy does with an input index outside the input (kernels/nd.cl)
MODES = {"constant": 0, "edge": 1, "reflect": 2, "wrap": 3, "skip": 4}
MAX_LOOPS = 3   # reduced dims a group walks, after merging neighbours (rank 6 leaves at most 3 apart)


class Space:
    """A row-major shape ``dims`` refining the 4-D storage shape ``shape4``."""

    def __init__(self, dims, shape4):
        self.dims = tuple(int(d) for d in dims)
        self.shape4 = tuple(int(d) for d in shape4)
        self.group = _groups(self.dims, self.shape4)

    def steps(self):
        """(element step, batch step) of each dim."""
        elements, batches = [0] * len(self.dims), [0] * len(self.dims)
        item = batch = 1
        for k in reversed(range(len(self.dims))):
            if self.group[k] == 0:
                batches[k], batch = batch, batch * self.dims[k]
            else:
                elements[k], item = item, item * self.dims[k]
        return elements, batches

    def ranges(self, box):
        """(lo, hi) of each dim's indices over the elements of ``box`` (a
        superset where a box dim spans several dims of the space)."""
        found = [(0, d) for d in self.dims]
        for group, (lo, hi) in enumerate((box.range("n"), box.range("c"), box.range("h"))):
            outer, inner = self._outer(group)
            if outer is not None:
                found[outer] = (lo // inner, (hi - 1) // inner + 1)
        return found

    def box(self, ranges):
        """The 4-D box covering index ranges (lo, hi) of each dim."""
        bounds = []
        for group in range(3):
            outer, inner = self._outer(group)
            lo, hi = (0, 1) if outer is None else ranges[outer]
            bounds += [lo * inner, hi * inner]
        return Box(*bounds)

    def _outer(self, group):
        """The outermost dim of extent > 1 in 4-D dim ``group``, and the
        product of the extents inside it (None where the group is all 1)."""
        members = [k for k, g in enumerate(self.group) if g == group and self.dims[k] > 1]
        if not members:
            return None, 1
        return members[0], int(np.prod([self.dims[k] for k in members[1:]], dtype=np.int64))


def _groups(dims, shape4):
    """The 4-D dim each dim of ``dims`` lies in; ``dims`` must refine ``shape4``."""
    bounds = np.cumprod(shape4, dtype=np.int64)
    prefix = np.cumprod((1,) + tuple(dims), dtype=np.int64)
    if prefix[-1] != bounds[-1] or not set(bounds.tolist()) <= set(prefix.tolist()):
        raise ModelError(f"shape {list(dims)} does not refine the storage shape {list(shape4)}")
    return [int(np.searchsorted(bounds, prefix[k + 1])) for k in range(len(dims))]


@dataclass(frozen=True)
class Axis:
    """Output dim reading input dim ``source`` at index start + step * v of
    its window: ``length`` indices from ``low`` (default: all of it), the
    part that Pad keeps where it crops. With ``indices`` (a tuple, each
    inside the window) it reads index indices[v] instead: Gather of indices
    that do not step evenly."""
    source: int
    start: int = 0
    step: int = 1
    low: int = 0
    length: int = None
    indices: tuple = None


class IndexMap:
    """Output space dim k takes input space dim axes[k].source; input dims
    that no output dim reads have extent 1. Indices outside the input follow
    ``mode`` (MODES; "skip" leaves the output element unwritten)."""

    def __init__(self, out_space, in_space, axes, mode="constant"):
        if len(axes) != len(out_space.dims) or mode not in MODES:
            raise ModelError(f"bad index map {axes} over {out_space.dims} ({mode})")
        self.out, self.inp, self.axes, self.mode = out_space, in_space, tuple(axes), mode

    def input_box(self, out_box):
        """The input box the elements of ``out_box`` read, or None where
        they read nothing (all outside the input: padding, another input's
        part of a concat)."""
        if out_box.empty:
            return None
        found = [(0, d) for d in self.inp.dims]
        for axis, (lo, hi) in zip(self.axes, self.out.ranges(out_box)):
            extent = self._length(axis)
            if axis.indices is not None:    # inside the window by construction
                picked = axis.indices[lo:hi]
                found[axis.source] = (axis.low + min(picked), axis.low + max(picked) + 1)
                continue
            a, b = axis.start + axis.step * lo, axis.start + axis.step * (hi - 1)
            a, b = min(a, b), max(a, b) + 1
            if self.mode in ("constant", "skip"):
                a, b = max(a, 0), min(b, extent)
                if a >= b:
                    return None
            elif self.mode == "edge":
                a, b = min(max(a, 0), extent - 1), min(max(b, 1), extent)
            elif a < 0 or b > extent:
                a, b = 0, extent
            found[axis.source] = (axis.low + a, axis.low + b)
        return self.inp.box(found)

    def _length(self, axis):
        return self.inp.dims[axis.source] if axis.length is None else axis.length

    def table(self):
        """int32 [rank, element base, batch base, then per dim (extent,
        start, step, input extent, element step, batch step)], outermost
        first, with dims that never leave the input folded into the bases
        and merged where they walk the input as one; then the index lists
        of dims that read one (input extent -1, start: where their list
        begins in the table)."""
        elements, batches = self.inp.steps()
        base_e = base_b = 0
        dims, lists = [], []
        for axis, extent in zip(self.axes, self.out.dims):
            length, s, b = self._length(axis), elements[axis.source], batches[axis.source]
            base_e, base_b = base_e + axis.low * s, base_b + axis.low * b
            if axis.indices is not None:
                lists.append((len(dims), axis.indices))
                dims.append([extent, 0, 0, -1, s, b])
            elif 0 <= axis.start < length and 0 <= axis.start + axis.step * (extent - 1) < length:
                base_e, base_b = base_e + axis.start * s, base_b + axis.start * b
                _append_merged(dims, [extent, 0, 1, extent, axis.step * s, axis.step * b])
            else:
                dims.append([extent, axis.start, axis.step, length, s, b])
        at = 3 + 6 * len(dims)
        for k, indices in lists:
            dims[k][1], at = at, at + len(indices)
        return np.array([len(dims), base_e, base_b] + [v for d in dims for v in d]
                        + [i for _, indices in lists for i in indices], dtype=np.int32)

    def launch(self, target, out_shape, box, index=0, table="map", value=0.0):
        """The clnn_nd_copy launch writing ``box`` of the output from input
        ``index``, its table in Param ``table``."""
        _, c, h, w = out_shape
        count = box.count(w)
        size, local = flat_launch(target, count)
        args = {"out": OUT, "in": In(index), "map": Param(table), "mode": MODES[self.mode], "value": float(value),
                "C": c, "H": h, "W": w, **box_args(box), "count": count}
        return Launch("clnn_nd_copy", size, local, args)


class Rearrange(Layer):
    """A layer whose output elements are input elements (or a pad value)
    that an IndexMap places; any box of its output is one clnn_nd_copy.
    Subclasses build the map once shapes are bound (``index_map``)."""
    split_dims = ("n", "c", "h")
    value = 0.0     # written where the map leaves the input in mode "constant"

    def bind(self, in_dims):
        dims = super().bind(in_dims)
        self.map = self.index_map()
        return dims

    def index_map(self):
        raise NotImplementedError

    def spaces(self):
        """The input's and the output's spaces as their outside shapes."""
        return Space(self.in_dims[0], self.in_shapes[0]), Space(self.out_dims, self.out_shape)

    def flops(self):
        return 0

    def input_box(self, out_box, index):
        return self.map.input_box(out_box)

    def params(self, target):
        return {"map": self.map.table()}

    def launches(self, target, box):
        return [self.map.launch(target, self.out_shape, box, value=self.value)]


def _append_merged(dims, entry):
    """Append a dim that never leaves the input (start 0, step 1), merged
    into the one before where that one is too and steps over it whole;
    extent-1 dims vanish."""
    extent = entry[0]
    if extent == 1:
        return
    if dims:
        prev = dims[-1]
        whole = prev[1] == 0 and prev[2] == 1 and prev[3] == prev[0]
        if whole and prev[4] == extent * entry[4] and prev[5] == extent * entry[5]:
            merged = prev[0] * extent
            dims[-1] = [merged, 0, 1, merged, entry[4], entry[5]]
            return
    dims.append(entry)


# groups: the layers that reduce or normalise along axes --------------------------------

class Rows:
    """Groups of elements of a tensor of outside shape ``dims``: the dims
    in ``axes`` are walked inside each group, the others number the groups.
    ``scale_steps`` (per dim) index a per-element constant (LayerNorm's
    scale: row-major over the walked dims; InstanceNorm's: the channel)."""

    def __init__(self, dims, axes, scale_steps=None):
        self.dims = tuple(dims)
        self.axes = tuple(sorted(set(axes)))
        self.space = Space(self.dims, to4d(self.dims))
        self.scale_steps = tuple(scale_steps) if scale_steps is not None else (0,) * len(self.dims)

    @property
    def kept(self):
        """The shape that numbers the groups: ``dims`` with walked dims 1."""
        return tuple(1 if k in self.axes else d for k, d in enumerate(self.dims))

    @property
    def size(self):
        """Elements per group."""
        return int(np.prod([self.dims[k] for k in self.axes], dtype=np.int64))

    @property
    def inner(self):
        """The extent of a group's innermost loop (the one a work-group
        shares out)."""
        return int(self.table()[-4])

    def table(self):
        """int32 [groups' dim count, per dim (extent, element step, batch
        step, scale step), then MAX_LOOPS loops (extent, element step, batch
        step, scale step)], outermost first."""
        elements, batches = self.space.steps()
        kept, loops = [], []
        for k, extent in enumerate(self.dims):
            entry = [extent, elements[k], batches[k], self.scale_steps[k]]
            _merge_row(loops if k in self.axes else kept, entry)
        if len(loops) > MAX_LOOPS:
            raise ModelError(f"axes {list(self.axes)} of a {list(self.dims)} tensor walk {len(loops)} separate runs; "
                             f"clnn walks at most {MAX_LOOPS}")
        loops = [[1, 0, 0, 0]] * (MAX_LOOPS - len(loops)) + loops
        return np.array([len(kept)] + [v for d in kept + loops for v in d], dtype=np.int32)

    def walked_4d(self):
        """The 4-D dims ("n", "c", "h") that hold a walked dim: a box of the
        tensor must span them whole."""
        return {"nch"[g] for k, g in enumerate(self.space.group) if k in self.axes and g < 3 and self.dims[k] > 1}

    def groups_box(self, box):
        """The groups that a box of the tensor (spanning the walked dims)
        holds, as a box of ``to4d(kept)``: each of n, c and h is one dim of
        the tensor, 1 in ``kept`` where walked."""
        walked = self.walked_4d()
        return Box(*[v for d in "nch" for v in ((0, 1) if d in walked else box.range(d))])


class Groupwise(Layer):
    """A layer whose output has its input's shape and is computed group by
    group of ``self.rows`` (set by ``infer``), each group whole: Softmax,
    the normalisations. A box spans the dims that groups walk."""
    rows = None

    @property
    def split_dims(self):
        return tuple(d for d in "nch" if d not in self.rows.walked_4d())

    def input_box(self, out_box, index):
        for dim in self.rows.walked_4d():
            out_box = out_box.with_range(dim, 0, self.in_shapes[0]["nch".index(dim)])
        return out_box

    def params(self, target):
        return {"rows": self.rows.table()}

    def rows_launch(self, target, kernel, box, args):
        """The launch of ``kernel`` over the groups of ``box``."""
        return rows_launch(target, kernel, to4d(self.rows.kept), self.rows.groups_box(box), args, self.rows)


def _merge_row(dims, entry):
    """Append ``entry`` (extent, steps...), merged into the dim before when
    that one steps over it whole; extent-1 dims vanish."""
    extent = entry[0]
    if extent == 1:
        return
    if dims and all(p == extent * e for p, e in zip(dims[-1][1:], entry[1:])):
        dims[-1] = [dims[-1][0] * extent] + entry[1:]
        return
    dims.append(entry)


# launching group kernels -----------------------------------------------------------------

GROUP_SIZE = 64         # CLNN_ROWS_WG of kernels/clnn_rows.h


def groups_limits(target):
    """When a work-group takes each group: groups whose innermost loop has
    at least ``groups_from`` elements, fewer than ``groups_below`` of them
    in a box (a CPU fills its cores by work-items where there are enough
    groups). Tuning parameters rows.groups_from and rows.groups_below
    (Tuning.op_params) override."""
    if target.kind == "gpu":
        defaults = {"groups_from": 128, "groups_below": 2 ** 31}
    else:
        defaults = {"groups_from": 256, "groups_below": 2 * FLAT_LOCAL["cpu"] * target.compute_units}
    return target.tuned("rows", defaults)


def rows_launch(target, kernel, shape4, box, args, rows):
    """The launch of ``kernel``_items (a work-item per group) or
    ``kernel``_groups (a work-group per group) over the groups (of Rows
    ``rows``) numbered by the elements of ``box`` of 4-D ``shape4``."""
    _, c, h, w = shape4
    count = box.count(w)
    args = {**args, "C": c, "H": h, "W": w, **box_args(box)}
    limits = groups_limits(target)
    if rows.inner >= limits["groups_from"] and count < limits["groups_below"]:
        return Launch(f"{kernel}_groups", (count * GROUP_SIZE,), (GROUP_SIZE,),
                      {**args, "interleave": int(target.kind == "gpu")})
    global_size, local = flat_launch(target, count)
    return Launch(f"{kernel}_items", global_size, local, {**args, "count": count})


OP = OpEntry(layers=())     # shared by the op modules; nd.cl is declared by those that launch it
