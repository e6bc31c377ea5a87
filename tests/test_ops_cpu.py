"""The CPU kernels' paths (clnn.ops.conv_cpu, kernels/conv_cpu.cl,
kernels/conv_winograd_cpu.cl, clnn.ops.conv_depthwise,
kernels/conv_depthwise_cpu.cl, clnn_pool_rows_cpu) at odd sizes against
their numpy references, with NaN-poisoned outputs, whole and split along
every dimension; the cases of tests/test_ops.py run these kernels too."""

import numpy as np
import pytest

from clnn import Model
from clnn.box import Box
from clnn.ops import Conv2d, Target, conv_cpu
from clnn.plan import Plan

from helpers import TOL, case_model, check_input_boxes, rand, rel_err, run, share_patterns, split_plan
from test_ops import conv, dense, pool

CASES = {
    # Winograd F(4x4, 3x3) at odd sizes: input channels that end a chunk
    # short, output channels that end a panel short, tiles past the right and
    # bottom edges, asymmetric pads, several work-items each way
    "winograd_odd": conv((2, 13, 17, 11), 19, 3, pads=1),
    "winograd_residual_asym": conv((1, 9, 21, 14), 7, 3, pads=(0, 1, 2, 1), residual=True,
                                   activation=("clip", 0.0, 6.0)),
    "winograd_many_items": conv((1, 20, 23, 30), 40, 3, pads=1, activation="tanh"),
    # Winograd F(2x2, 3x3), for maps with too few 4x4 tiles
    "winograd_2x2": conv((1, 10, 7, 7), 13, 3, pads=1),
    "winograd_2x2_residual_asym": conv((2, 6, 5, 3), 7, 3, pads=(1, 0, 1, 2), residual=True),
    # GEMM: work-items of several pixel blocks; runs of whole blocks stored
    # as vectors, with a residual; a 1x1 convolution read as a matrix
    "gemm_5x5_blocks": conv((2, 5, 31, 29), 11, 5, pads=2),
    "gemm_1x1_vector_stores_residual": conv((1, 24, 8, 16), 12, 1, residual=True),
    # GEMM: blocks of pixels at stride 2 packed from vectors' even lanes
    "gemm_stride2_wide": conv((1, 3, 9, 75), 8, 3, stride=2, pads=1),
    # GEMM: more im2col rows than one KC chunk (sums kept between chunks,
    # ended by the last one), a residual and relu6 in that epilogue
    "gemm_k_chunks_residual": conv((1, 13, 11, 9), 10, 5, pads=(2, 1, 1, 2), residual=True,
                                   activation=("clip", 0.0, 6.0)),
    # GEMM: one chunk of K, more panels x blocks per work-item than the
    # accumulators' room (PBNB), which only sums between chunks need
    "gemm_1x1_past_accumulator_room": conv((1, 20, 12, 40), 100, 1, activation=("clip", 0.0, 6.0)),
    # GEMM: a 1x1 of few output channels reading whole blocks in place,
    # packing those that end a plane or cross batch items; and over two KC
    # chunks of input channels
    "gemm_1x1_in_place_odd": conv((2, 7, 5, 13), 10, 1, activation=("clip", 0.0, 6.0)),
    "gemm_1x1_in_place_k_chunks": conv((1, 150, 3, 11), 9, 1, residual=True),
    # GEMM: panels split over work-items
    "gemm_many_panels": conv((2, 5, 13, 1), 70, (3, 1), pads=(1, 0, 1, 0)),
    "dense_gemm": dense(13, 50, 7, activation="relu"),
    # grouped GEMM (panels group by group): groups of 5 output channels
    # (fewer than a panel) from 7 input channels, blocks inside rows read in
    # place, the others packed; of 35 (panels ending one short, spread over
    # two work-items a group) with a residual; ResNeXt's groups of 4 and 4;
    # at stride 2 with dilation; a 1x1 read in place; input channels over
    # two KC chunks
    "grouped_odd": conv((2, 21, 9, 37), 15, 3, groups=3, pads=1),
    "grouped_panels_residual": conv((1, 10, 5, 3), 70, 3, groups=2, pads=(1, 0, 0, 1), residual=True,
                                    activation=("clip", 0.0, 6.0)),
    "grouped_resnext": conv((1, 128, 6, 7), 128, 3, groups=32, pads=1, residual=True),
    "grouped_stride2_dilated": conv((2, 12, 13, 15), 27, 3, groups=3, stride=2, pads=2, dilation=2,
                                    activation="tanh"),
    "grouped_1x1_in_place": conv((2, 24, 5, 13), 36, 1, groups=4, bias=False),
    "grouped_k_chunks_residual": conv((1, 32, 7, 9), 22, 3, groups=2, pads=1, residual=True),
    # depthwise: channels that are no multiple of a vector, rows that end a
    # vector short, strides 1 and 2, other strides, asymmetric pads,
    # dilation, no bias, relu6 and residual fused, two output channels per
    # input channel, rows wider than a pass, planes split into rows
    "depthwise_s1_relu6": conv((2, 13, 11, 19), 13, 3, groups=13, pads=1, activation=("clip", 0.0, 6.0)),
    "depthwise_s2_asym_nobias": conv((1, 9, 13, 23), 9, 3, groups=9, stride=2, pads=(0, 1, 2, 1), bias=False,
                                     activation=None),
    "depthwise_dilated_residual": conv((2, 6, 12, 21), 6, 3, groups=6, pads=2, dilation=2, residual=True),
    "depthwise_multiplier2": conv((1, 5, 9, 10), 10, 3, groups=5, pads=1, stride=(1, 2), activation="tanh"),
    "depthwise_wide_residual_relu6": conv((1, 3, 6, 150), 3, 5, groups=3, pads=2, residual=True,
                                          activation=("clip", 0.0, 6.0)),
    "depthwise_stride3": conv((1, 4, 11, 17), 4, (3, 2), groups=4, stride=3, pads=(1, 0, 0, 1)),
    "depthwise_rows_split": conv((1, 2, 37, 9), 2, 3, groups=2, pads=1, stride=(2, 1)),
    # depthwise on small planes (stride 1): the flat kernel, rows at a padded
    # pitch; a run shorter than a vector, asymmetric pads and a 5x5 window with
    # two output channels per input channel, planes split into rows
    "depthwise_flat_7x7_residual_relu6": conv((2, 11, 7, 7), 11, 3, groups=11, pads=1, residual=True,
                                              activation=("clip", 0.0, 6.0)),
    "depthwise_flat_tiny_nobias": conv((1, 5, 2, 3), 5, 3, groups=5, pads=1, bias=False, activation=None),
    "depthwise_flat_5x5_multiplier2": conv((1, 4, 9, 13), 8, 5, groups=4, pads=(2, 1, 1, 3), activation="tanh"),
    "depthwise_flat_rows_split": conv((1, 3, 14, 14), 3, 3, groups=3, pads=1),
    # pools: 8 outputs at a time at stride 2, then the rest one by one
    "maxpool2_vectors": pool((1, 3, 9, 40), "max", kernel=2, stride=2),
    "avgpool3_vectors_pads": pool((2, 2, 11, 50), "avg", kernel=3, stride=2, pads=1, count_include_pad=True),
    "global_max_vectors": pool((1, 3, 5, 7), "max"),
}


def build(name, rng):
    return case_model(CASES[name], name, rng)


def _launches(model, target):
    for layer in model.layers:
        if not layer.is_view:
            yield from layer.launches(target, Box.whole(layer.out_shape))


def test_cases_reach_every_cpu_kernel_path():
    """The cases above run each CPU kernel, Winograd's (both tile sides)
    and the GEMM (its matrix form too, packed and read in place, over
    several KC chunks, and past the accumulators' room where one chunk
    needs none; grouped, over several groups and several work-items in a
    group, packed and read in place) with several work-items along both
    axes of their grids, the depthwise kernel at strides 1, 2 and 3, with
    dilation, several passes along rows and several work-items along rows
    and channels, and the row-wise pools."""
    grids, options, flat, chunks, products, grouped, group_items = {}, set(), set(), set(), set(), set(), set()
    target = Target("cpu", 2)
    blocks = conv_cpu.gemm_blocks(target)
    for name in CASES:
        model, _ = build(name, np.random.default_rng(0))
        for launch in _launches(model, target):
            grid = grids.setdefault(launch.kernel, [1, 1])
            grid[:] = [max(g, s) for g, s in zip(grid, launch.global_size + (1,))]
            options.update(launch.options)
            flat.add((launch.args.get("flat"), launch.args.get("direct")))
            chunks.add(-(-launch.args.get("K", 0) // blocks["KC"]))
            products.add(launch.args.get("pb", 0) * launch.args.get("nb", 0))
            if launch.args.get("Mg", 0) not in (0, launch.args.get("M")):
                grouped.add(name)
                group_items.add(launch.args["gi"])
    assert min(grids["clnn_conv_winograd_cpu"]) > 1 and min(grids["clnn_conv_gemm_cpu"]) > 1
    assert {"-DWT=4", "-DWT=2"} <= options and max(chunks) > 2
    assert {(True, True), (True, False), (False, False), (False, True)} <= flat
    assert max(products) > blocks["PBNB"]
    # grouped: several groups, and several work-items in a group, along axis 1
    assert {"grouped_odd", "grouped_panels_residual", "grouped_resnext", "grouped_1x1_in_place"} <= grouped
    assert max(group_items) > 1
    assert min(grids["clnn_conv_depthwise_cpu"][:2]) > 1
    assert min(grids["clnn_conv_depthwise_flat_cpu"][:2]) > 1
    assert {"-DSW=1", "-DSW=2", "-DSW=3", "-DDW=2"} <= options
    assert "clnn_pool_rows_cpu" in grids


@pytest.mark.oclgrind
@pytest.mark.parametrize("vector_width", [8, 16])
def test_a_few_items_of_a_larger_dense_batch_stream_the_packed_panels(vector_width, device, rng):
    """A batch split gives the CPU a few items of a Dense layer whose batch
    takes the GEMM: boxes of up to 4 items run clnn_gemv_panels_cpu on the
    GEMM's packed weights (panels of 6 or 12 rows, the last one short),
    larger ones the GEMM; either side of the split matches the reference."""
    model, feeds = build("dense_gemm", rng)
    layer = model.layers[-1]
    target = Target("cpu", 2, vector_width=vector_width)
    kernels = {items: layer.launches(target, Box.whole(layer.out_shape).with_range("n", 2, 2 + items))[0].kernel
               for items in (1, 4, 5)}
    assert kernels == {1: "clnn_gemv_panels_cpu", 4: "clnn_gemv_panels_cpu", 5: "clnn_conv_gemm_cpu"}
    expected = model.reference(feeds)[0]
    for shares in ((3 / 13, 10 / 13), (9 / 13, 4 / 13), (1 / 13, 12 / 13)):
        plan = split_plan(model, (device, device), "n", shares)
        (actual,) = run(model, feeds, plan, [device], memory="discrete", kind="cpu", vector_width=vector_width)
        assert rel_err(actual, expected) < TOL, shares


@pytest.mark.parametrize("vector_width, items_on_16, items_on_2", [(8, 15, 11), (16, 11, 6)])
def test_a_deep_layer_on_a_small_map_spreads_over_many_cores(vector_width, items_on_16, items_on_2):
    """At batch 1 a 3x3 layer of 256 channels on a 14x14 map has one block of
    tiles, so only its panels (43 of 6 channels on AVX2, 22 of 12 on AVX-512)
    spread it: over 16 cores in as many work-items as fit one round (3 or 2
    panels each; SPLIT_PANELS alone left 11 and 6), over 2 cores as before."""
    model, _ = case_model(conv((1, 256, 14, 14), 256, 3, pads=1), "deep", np.random.default_rng(0))
    for cores, items in ((16, items_on_16), (2, items_on_2)):
        (launch,) = _launches(model, Target("cpu", cores, vector_width=vector_width))
        assert launch.kernel == "clnn_conv_winograd_cpu" and launch.global_size == (1, items)


@pytest.mark.oclgrind
@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name, device, rng):
    model, feeds = build(name, rng)
    (actual,) = run(model, feeds, Plan.single(model, device), [device], kind="cpu")
    assert rel_err(actual, model.reference(feeds)[0]) < TOL


@pytest.mark.oclgrind
@pytest.mark.parametrize("vector_width", [8, 16])
@pytest.mark.parametrize("name", ["winograd_odd", "winograd_2x2_residual_asym", "gemm_5x5_blocks",
                                  "gemm_1x1_vector_stores_residual", "gemm_k_chunks_residual",
                                  "gemm_1x1_in_place_odd", "gemm_1x1_in_place_k_chunks", "dense_gemm",
                                  "grouped_odd", "grouped_panels_residual", "grouped_resnext",
                                  "grouped_stride2_dilated", "grouped_1x1_in_place", "grouped_k_chunks_residual",
                                  "avgpool3_vectors_pads", "depthwise_s2_asym_nobias", "depthwise_dilated_residual",
                                  "depthwise_multiplier2", "depthwise_wide_residual_relu6",
                                  "depthwise_flat_7x7_residual_relu6", "depthwise_flat_tiny_nobias",
                                  "depthwise_flat_5x5_multiplier2", "depthwise_flat_rows_split"])
def test_split_on_one_device_reads_only_its_input_box(name, vector_width, device, rng):
    """Slices on one device with resident buffers (only each slice's input
    box is copied in), on vectors of 8 floats (AVX2) and 16 (AVX-512:
    32 pixels or tiles per register block)."""
    model, feeds = build(name, rng)
    check_input_boxes(model, feeds, device, kind="cpu", vector_width=vector_width)


@pytest.mark.parametrize("name", ["winograd_odd", "winograd_2x2_residual_asym", "gemm_stride2_wide",
                                  "gemm_k_chunks_residual", "gemm_1x1_in_place_odd", "avgpool3_vectors_pads",
                                  "grouped_odd", "grouped_panels_residual", "grouped_stride2_dilated",
                                  "grouped_1x1_in_place",
                                  "depthwise_s1_relu6",
                                  "depthwise_s2_asym_nobias", "depthwise_multiplier2", "depthwise_rows_split",
                                  "depthwise_flat_7x7_residual_relu6", "depthwise_flat_5x5_multiplier2"])
def test_every_slice_equals_the_whole(name, pair, rng, monkeypatch):
    """Slices at any row (not only whole 4-row Winograd tiles), channel or
    batch item compute exactly what the whole layer does."""
    model, feeds = build(name, rng)
    for layer in model.layers:
        monkeypatch.setattr(layer, "granule", lambda dim: 1)
    (whole,) = run(model, feeds, Plan.single(model, pair[0]), [pair[0]], kind="cpu")
    for dim in ("n", "c", "h"):
        layer = model.layers[-1]
        if not layer.splittable(dim):
            continue
        for shares in share_patterns(layer.out_shape["nch".index(dim)]):
            (split,) = run(model, feeds, split_plan(model, pair, dim, shares), list(pair), grouping="device",
                           memory="discrete", kind="cpu")
            assert rel_err(split, whole) < 1e-6, (dim, shares)


@pytest.mark.parametrize("shape, m", [((1, 512, 14, 14), 512), ((1, 256, 28, 28), 64), ((2, 512, 9, 9), 24),
                                      ((1, 512, 7, 7), 512)])
def test_winograd_error_at_zoo_channel_counts(shape, m, device, rng):
    """Winograd's transforms scale rounding errors up; over the zoo's
    deepest layers (512 input channels, He-initialised weights as in
    clnn.models) F(4x4, 3x3) and F(2x2, 3x3) (the 7x7 map) stay within the
    tests' tolerance."""
    c = shape[1]
    w = (rng.standard_normal((m, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
    model = Model({"x": shape}, [Conv2d("y", "x", w, rand(rng, (m,), 0.1), pads=1, activation="relu")], ["y"])
    assert conv_cpu.winograd_tile(model.layers[0], Target("cpu")) is not None
    feeds = {"x": rand(rng, shape)}
    (actual,) = run(model, feeds, Plan.single(model, device), [device], kind="cpu")
    assert rel_err(actual, model.reference(feeds)[0]) < TOL
