"""Shape, reduction and normalisation layers against their numpy
references: on every device with the CPU- and GPU-tuned kernels, and every
slice of every splittable dimension, written by two devices, equal to the
whole (as tests/test_ops.py does for the other layers)."""

import numpy as np
import pytest

from clnn import Model, ModelError
from clnn.box import Box
from clnn.ops import (Activation, Concat, Conv2d, DepthToSpace, Gather, InstanceNorm, LayerNorm, Pad, Reduce, Reshape,
                      Slice, Softmax, SpaceToDepth, Transpose)
from clnn.ops.nd import Axis, IndexMap, Rows, Space

from helpers import case_model, check_input_boxes, check_reference, check_slices, rand


def single(shape, make):
    def build(rng):
        return {"x": shape}, [make(rng)]
    return build


def channel_shuffle(rng):
    """ShuffleNet's shuffle between two convolutions: views that move
    dims around a 5-D transpose, read by a kernel."""
    w = rand(rng, (6, 3, 3, 3), 0.3)
    return {"x": (2, 3, 5, 7)}, [Conv2d("c", "x", w, None, pads=1),
                                 Reshape("r", "c", [2, 2, 3, 5, 7]),
                                 Transpose("t", "r", (0, 2, 1, 3, 4)),
                                 Reshape("s", "t", [2, 6, 5, 7]),
                                 Activation("y", "s", "tanh")]


def concat(axis, *shapes):
    def build(rng):
        names = [f"x{i}" for i in range(len(shapes))]
        return dict(zip(names, shapes)), [Concat("y", names + names[:1], axis)]
    return build


def layer_norm(shape, axis):
    def build(rng):
        normalised = shape[axis:]
        return {"x": shape}, [LayerNorm("y", "x", rand(rng, normalised), rand(rng, normalised), axis, 1e-3)]
    return build


def instance_norm(shape):
    def build(rng):
        return {"x": shape}, [InstanceNorm("y", "x", rand(rng, (shape[1],)), rand(rng, (shape[1],)), 1e-4)]
    return build


def reduce(shape, op, axes, keepdims=True):
    return single(shape, lambda rng: Reduce("y", "x", op, axes, keepdims))


PADS = [1, 0, -1, 2, 0, 2, 3, -1]   # begins then ends of a 4-D tensor: crops and pads
CASES = {
    "transpose_nhwc": single((3, 5, 7, 2), lambda rng: Transpose("y", "x", (0, 2, 3, 1))),
    "transpose_moves_batch": single((2, 3, 13), lambda rng: Transpose("y", "x", (2, 0, 1))),
    "transpose_6d": single((2, 3, 1, 2, 3, 2), lambda rng: Transpose("y", "x", (5, 2, 0, 4, 1, 3))),
    "transpose_reverse_2d": single((7, 13), lambda rng: Transpose("y", "x")),
    "channel_shuffle": channel_shuffle,
    "depth_to_space_dcr": single((2, 12, 3, 5), lambda rng: DepthToSpace("y", "x", 2)),
    "depth_to_space_crd": single((1, 18, 2, 3), lambda rng: DepthToSpace("y", "x", 3, "CRD")),
    "space_to_depth": single((3, 2, 4, 6), lambda rng: SpaceToDepth("y", "x", 2)),
    "space_to_depth_crd": single((2, 3, 6, 3), lambda rng: SpaceToDepth("y", "x", 3, "CRD")),
    "slice_steps": single((3, 7, 13, 4), lambda rng: Slice("y", "x", [5, 1, -1], [0, 100, -5], [1, 2, -1],
                                                           [-2, 3, -1])),
    "slice_batch_5d": single((5, 2, 3, 4, 5), lambda rng: Slice("y", "x", [1, 1], [4, 4], [0, 4])),
    # Gather of a list of indices, on rows (splittable) and on channels, and dropping a batch axis
    "gather_rows_list": single((2, 3, 13, 5), lambda rng: Gather("y", "x", 2, (12, 0, 7, 7, 3))),
    "gather_channels_list": single((3, 7, 1, 3), lambda rng: Gather("y", "x", 1, (6, 2, 3, 0, 5, 1, 4, 4))),
    "gather_batch_list_5d": single((5, 2, 3, 4, 5), lambda rng: Gather("y", "x", 0, (4, 1, 2))),
    "gather_drop": single((3, 4, 7), lambda rng: Gather("y", "x", 1, (2,), drop=True)),
    "pad_constant": single((2, 3, 5, 4), lambda rng: Pad("y", "x", PADS, "constant", 0.5)),
    "pad_edge": single((2, 3, 5, 4), lambda rng: Pad("y", "x", PADS, "edge")),
    "pad_reflect": single((2, 3, 5, 4), lambda rng: Pad("y", "x", PADS, "reflect")),
    "pad_wrap": single((2, 3, 5, 4), lambda rng: Pad("y", "x", [0, 0, 1, 7, 0, 1, 0, -1], "wrap")),
    "concat_batch": concat(0, (2, 3, 5), (1, 3, 5)),
    "concat_rows": concat(2, (2, 3, 5, 4), (2, 3, 1, 4)),
    "concat_last": concat(-1, (2, 3, 1, 4), (2, 3, 1, 3)),
    "concat_5d": concat(3, (1, 2, 3, 2, 5), (1, 2, 3, 1, 5)),
    "softmax_rows": single((2, 3, 7, 5), lambda rng: Softmax("y", "x", 2)),
    "softmax_batch": single((3, 13), lambda rng: Softmax("y", "x", 0)),
    "log_softmax_flatten": single((2, 3, 5, 4), lambda rng: Softmax("y", "x", 1, log=True, flatten=True)),
    "softmax_long": single((2, 3, 300), lambda rng: Softmax("y", "x", -1)),
    "reduce_mean_global": reduce((2, 5, 7, 7), "ReduceMean", (2, 3)),
    "reduce_mean_large": reduce((1, 3, 23, 29), "ReduceMean", (2, 3), keepdims=False),
    "reduce_max_channels": reduce((2, 7, 3, 5), "ReduceMax", (1,), keepdims=False),
    "reduce_min_batch": reduce((3, 2, 5), "ReduceMin", (0,)),
    "reduce_sum_all": reduce((2, 3, 4, 5), "ReduceSum", None, keepdims=False),
    "reduce_l2_apart": reduce((2, 3, 4, 5, 3, 2), "ReduceL2", (1, 3, 5)),
    "reduce_lse": reduce((2, 13, 3), "ReduceLogSumExp", (1, 2)),
    "reduce_prod": reduce((2, 3, 4), "ReduceProd", (-1,)),
    "reduce_l1_sumsquare": single((3, 5, 2), lambda rng: Reduce("y", "x", "ReduceSumSquare", (0, 2))),
    "layer_norm_last": layer_norm((2, 5, 3, 7), -1),
    "layer_norm_chw": layer_norm((3, 5, 2, 3), 1),
    "layer_norm_3d": layer_norm((2, 7, 13), 2),
    "instance_norm": instance_norm((2, 5, 3, 7)),
    "instance_norm_large": instance_norm((1, 3, 19, 23)),
}
# cases small enough for Oclgrind
SMALL = ["transpose_nhwc", "transpose_6d", "channel_shuffle", "depth_to_space_dcr", "space_to_depth", "slice_steps",
         "gather_rows_list", "gather_channels_list",
         "pad_reflect", "pad_wrap", "concat_last", "concat_batch", "softmax_rows", "log_softmax_flatten",
         "reduce_mean_global", "reduce_l2_apart", "reduce_lse", "layer_norm_last", "instance_norm",
         # a work-group per group
         "softmax_long", "reduce_mean_large", "instance_norm_large"]


def build(name, rng):
    return case_model(CASES[name], name, rng)


def _params(names):
    return [pytest.param(n, marks=pytest.mark.oclgrind) if n in SMALL else n for n in names]


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("name", _params(CASES))
def test_matches_reference(name, kind, device, rng):
    model, feeds = build(name, rng)
    check_reference(model, feeds, device, kind=kind)


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("name", _params(SMALL))
def test_split_on_one_device_reads_only_its_input_box(name, kind, device, rng):
    """Two slices of each layer on one device with resident buffers: only
    the input box each slice declares is copied in before it runs."""
    model, feeds = build(name, rng)
    check_input_boxes(model, feeds, device, kind=kind)


@pytest.mark.parametrize("grouping, memory", [("platform", "auto"), ("device", "discrete")])
@pytest.mark.parametrize("name", list(CASES))
def test_every_slice_equals_the_whole(name, grouping, memory, pair, rng):
    model, feeds = build(name, rng)
    check_slices(model, feeds, pair, grouping, memory)


# the index maps ---------------------------------------------------------------------------

def test_maps_merge_dims_that_walk_the_input_as_one():
    """A transpose that swaps two middle dims of a 6-D tensor walks five
    dims (the last two as one); a 6-D identity two (batch, item)."""
    shape = (2, 3, 4, 5, 6, 7)
    inp = Space(shape, (2, 3, 4, 210))
    swapped = IndexMap(Space((2, 3, 5, 4, 6, 7), (2, 3, 5, 168)), inp, [Axis(p) for p in (0, 1, 3, 2, 4, 5)])
    assert swapped.table()[0] == 5
    identity = IndexMap(inp, inp, [Axis(k) for k in range(6)])
    assert identity.table()[0] == 2     # the batch and everything inside an item


def test_input_box_of_a_gather_list_is_the_indices_read():
    """Output rows 1..3 of rows (12, 0, 7, 7, 3) read input rows 0..7."""
    model = Model({"x": (2, 3, 13, 5)}, [Gather("y", "x", 2, (12, 0, 7, 7, 3))], ["y"])
    layer = model.layers[0]
    assert layer.input_box(Box(0, 2, 1, 3, 1, 4), 0) == Box(0, 2, 1, 3, 0, 8)
    assert layer.input_box(Box(1, 2, 0, 3, 0, 1), 0) == Box(1, 2, 0, 3, 12, 13)


def test_space_must_refine_the_storage_view():
    with pytest.raises(ModelError, match="does not refine"):
        Space((2, 6, 5), (2, 3, 10, 1))


def test_rows_walk_at_most_three_runs():
    assert Rows((2, 3, 4, 5, 6, 7), (1, 3, 5)).table()[0] == 3
    assert Rows((2, 3, 4, 5), (2, 3)).size == 20


def test_input_box_of_a_transpose_is_exact_where_dims_map_one_to_one():
    """NCHW -> NHWC: output channels are input rows."""
    model = Model({"x": (2, 5, 7, 3)}, [Transpose("y", "x", (0, 2, 3, 1))], ["y"])
    layer = model.layers[0]
    assert layer.input_box(Box(1, 2, 2, 4, 0, 3), 0) == Box(1, 2, 0, 5, 2, 4)


@pytest.mark.parametrize("make, message", [
    (lambda: Transpose("t", "x", (0, 1, 1, 2)), "not a permutation"),
    (lambda: DepthToSpace("t", "x", 3), "do not divide"),
    (lambda: SpaceToDepth("t", "x", 2), "do not divide"),
    (lambda: Slice("t", "x", [5], [9], [1]), "empty output"),
    (lambda: Gather("t", "x", 3, (1, 7)), "do not fit"),
    (lambda: Gather("t", "x", 1, (0, 1), drop=True), "one if the axis is dropped"),
    (lambda: Pad("t", "x", [0, 0, 0, 7, 0, 0, 0, 0], "reflect"), "smaller than the dims"),
    (lambda: Pad("t", "x", [0, 0, 0, -7, 0, 0, 0, 0]), "crop all"),
    (lambda: Reduce("t", "x", "ReduceSum", (1, -3)), "do not fit"),
    (lambda: LayerNorm("t", "x", np.ones(3), np.ones(3)), "normalised shape"),
])
def test_bad_layers_are_refused(make, message):
    with pytest.raises(ModelError, match=message):
        Model({"x": (1, 3, 5, 7)}, [make()], ["t"])
