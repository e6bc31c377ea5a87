"""Every operator against its numpy reference on random data, on every
device, with the CPU- and the GPU-tuned kernels; and every slice of every
splittable dimension, written by two devices, equal to the whole."""

import pytest

from clnn import Model
from clnn.ops import LRN, Activation, Binary, Concat, Conv2d, Dense, Pool, Reshape, ScaleShift, Softmax

from helpers import TOL, case_model, check_input_boxes, check_reference, check_slices, rand, rel_err, run, split_plan


def conv(shape, m, k, activation="relu", bias=True, groups=1, residual=False, **kw):
    def build(rng):
        w = rand(rng, (m, shape[1] // groups) + ((k, k) if isinstance(k, int) else k), 0.3)
        b = rand(rng, (m,)) if bias else None
        layers = [Conv2d("y", ("x", "r") if residual else "x", w, b, groups=groups, activation=activation, **kw)]
        inputs = {"x": shape}
        if residual:
            probe = Model({"x": shape}, [Conv2d("y", "x", w, b, groups=groups, **kw)], ["y"])
            inputs["r"] = probe.shapes["y"]
        return inputs, layers
    return build


def dense(n, k, m, activation=None, bias=True):
    def build(rng):
        return {"x": (n, k)}, [Dense("y", "x", rand(rng, (m, k), 0.3), rand(rng, (m,)) if bias else None,
                                     activation=activation)]
    return build


def pool(shape, kind, **kw):
    def build(rng):
        return {"x": shape}, [Pool("y", "x", kind, **kw)]
    return build


def single(shape, make):
    def build(rng):
        return {"x": shape}, [make(rng)]
    return build


def binary(shape, op, operand, reverse=False, constant=True, activation=None):
    def build(rng):
        if constant:
            return {"x": shape}, [Binary("y", "x", op, constant=rand(rng, operand), reverse=reverse,
                                         activation=activation)]
        return {"x": shape, "b": operand}, [Binary("y", ("x", "b"), op, activation=activation)]
    return build


def concat_graph(rng):
    w1, w2 = rand(rng, (4, 3, 3, 3), 0.3), rand(rng, (5, 3, 1, 1), 0.3)
    layers = [Conv2d("a", "x", w1, None, pads=1, activation="relu"),
              Conv2d("b", "x", w2, rand(rng, (5,))),
              Concat("y", ["a", "x", "b", "a"]),
              Activation("z", "y", "tanh")]
    return {"x": (2, 3, 7, 5)}, layers


def flatten_graph(rng):
    layers = [Conv2d("a", "x", rand(rng, (6, 2, 3, 3), 0.3), rand(rng, (6,)), stride=2, activation="relu"),
              Reshape("f", "a"),
              Dense("y", "f", rand(rng, (7, 6 * 3 * 2), 0.3), rand(rng, (7,)), activation="sigmoid")]
    return {"x": (3, 2, 7, 5)}, layers


CASES = {
    "conv3x3": conv((1, 3, 13, 7), 5, 3, pads=1),
    "conv_stride2_nobias": conv((3, 8, 9, 9), 16, 3, bias=False, stride=2, pads=1, activation=None),
    "conv1x1_leaky": conv((1, 16, 7, 7), 32, 1, activation=("leaky_relu", 0.1)),
    "conv5x5_dilated": conv((3, 4, 7, 13), 8, 5, pads=2, dilation=2, activation="sigmoid"),
    "conv_asym_pads": conv((2, 5, 13, 7), 7, (3, 2), pads=(1, 2, 0, 3), stride=(2, 1), activation="tanh"),
    "conv_groups3": conv((1, 6, 7, 7), 9, 3, groups=3, pads=1),
    "conv_depthwise": conv((3, 13, 7, 5), 13, 3, groups=13, pads=1, stride=2, activation=("clip", 0.0, 6.0)),
    "conv_residual": conv((2, 8, 7, 7), 8, 3, pads=1, residual=True),
    "conv_1x1x1": conv((1, 1, 1, 1), 1, 1, activation=None),
    "conv_wide_k": conv((2, 5, 13, 1), 70, (3, 1), pads=(1, 0, 1, 0)),
    "conv_big_k": conv((1, 40, 9, 11), 13, 3, pads=1),
    "conv3x3_odd_residual": conv((2, 5, 11, 13), 7, 3, pads=1, residual=True, activation=("leaky_relu", 0.1)),
    "conv3x3_asym_pads": conv((3, 6, 10, 9), 5, 3, pads=(0, 2, 1, 0), bias=False, activation=None),
    "conv3x3_no_pads": conv((1, 9, 6, 15), 17, 3, activation="sigmoid"),
    "dense_gemv": dense(1, 37, 13, activation="relu"),
    "dense_gemv_b3": dense(3, 300, 13, bias=False),
    "dense_tiled": dense(13, 50, 7, activation="relu"),
    "dense_gemv_b17": dense(17, 70, 9),
    "dense_gemv_b16_odd_k": dense(16, 301, 37, activation="relu"),
    "dense_gemv_b5_many_rows": dense(5, 70, 133),
    "maxpool2": pool((1, 3, 13, 7), "max", kernel=2, stride=2),
    "maxpool3_ceil": pool((3, 4, 13, 13), "max", kernel=3, stride=2, ceil_mode=True),
    "maxpool_dilated_pad": pool((1, 2, 9, 9), "max", kernel=3, stride=1, pads=1, dilation=2),
    "avgpool_incl_pad": pool((3, 4, 9, 9), "avg", kernel=3, stride=2, pads=1, count_include_pad=True),
    "avgpool_excl_pad": pool((3, 4, 9, 7), "avg", kernel=3, stride=2, pads=1),
    "avgpool_ceil": pool((1, 2, 7, 7), "avg", kernel=2, stride=2, ceil_mode=True),
    # dilated average pools count their taps (not their span) inside the padded input or the input
    "avgpool_dilated_incl_pad_ceil": pool((2, 3, 11, 13), "avg", kernel=(3, 2), stride=(2, 1), pads=(1, 1, 1, 0),
                                          dilation=(2, 3), ceil_mode=True, count_include_pad=True),
    "avgpool_dilated_excl_pad": pool((1, 3, 7, 9), "avg", kernel=2, stride=1, pads=1, dilation=2),
    "global_avg": pool((2, 5, 7, 7), "avg"),
    "global_max": pool((3, 13, 1, 13), "max"),
    "global_avg_11x9": pool((2, 3, 11, 9), "avg"),
    "maxpool_9x8_asym_pads": pool((1, 2, 13, 11), "max", kernel=(9, 8), stride=(3, 2), pads=(2, 1, 3, 0)),
    "lrn5": single((1, 7, 5, 5), lambda rng: LRN("y", "x", 5, 1e-4, 0.75, 1.0)),
    "lrn3_odd": single((3, 13, 3, 1), lambda rng: LRN("y", "x", 3, 0.3, 0.6, 2.0)),
    "lrn4_even": single((2, 9, 3, 5), lambda rng: LRN("y", "x", 4, 0.5, 0.8, 1.5)),
    "lrn35_window_not_built_in": single((1, 40, 3, 2), lambda rng: LRN("y", "x", 35, 0.2, 0.7, 1.0)),
    "softmax_2d": single((3, 13), lambda rng: Softmax("y", "x")),
    "softmax_4d": single((2, 7, 3, 5), lambda rng: Softmax("y", "x")),
    "add_tensors": binary((3, 4, 5, 6), "Add", (3, 4, 5, 6), constant=False, activation="relu"),
    "add_batch_broadcast": binary((3, 4, 5, 6), "Add", (1, 4, 5, 6), constant=False),
    "mul_channel": binary((3, 4, 5, 6), "Mul", (1, 4, 1, 1)),
    "sub_scalar_reversed": binary((1, 3, 7, 13), "Sub", (), reverse=True),
    "div_channel": binary((2, 3, 7, 1), "Div", (3, 1, 1)),
    "add_2d_features": binary((3, 13), "Add", (13,)),
    "relu": single((3, 5, 7, 1), lambda rng: Activation("y", "x", "relu")),
    "leaky": single((1, 5, 7, 13), lambda rng: Activation("y", "x", ("leaky_relu", 0.2))),
    "sigmoid": single((2, 13), lambda rng: Activation("y", "x", "sigmoid")),
    "tanh": single((1, 1, 13, 7), lambda rng: Activation("y", "x", "tanh")),
    "clip": single((2, 3, 4, 5), lambda rng: Activation("y", "x", ("clip", -0.5, 0.5))),
    "scale_shift": single((3, 5, 7, 7), lambda rng: ScaleShift("y", "x", rand(rng, (5,)), rand(rng, (5,)),
                                                               activation="relu")),
    "concat": concat_graph,
    "flatten_dense": flatten_graph,
}


def build(name, rng):
    return case_model(CASES[name], name, rng)


@pytest.mark.oclgrind
@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name, kind, device, rng):
    model, feeds = build(name, rng)
    check_reference(model, feeds, device, kind=kind)


@pytest.mark.oclgrind
@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("name", list(CASES))
def test_split_on_one_device_reads_only_its_input_box(name, kind, device, rng):
    """Two slices of each layer on one device with resident buffers: only
    the input box each slice needs is copied in before it runs, so a kernel
    reading past its box reads unset memory (Oclgrind flags it)."""
    model, feeds = build(name, rng)
    check_input_boxes(model, feeds, device, kind=kind)


@pytest.mark.parametrize("grouping, memory", [("platform", "auto"), ("device", "discrete")])
@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("name", list(CASES))
def test_every_slice_equals_the_whole(name, kind, grouping, memory, pair, rng, monkeypatch):
    model, feeds = build(name, rng)
    for layer in model.layers:
        monkeypatch.setattr(layer, "granule", lambda dim: 1)
    check_slices(model, feeds, pair, grouping, memory, kind)


@pytest.mark.parametrize("memory", ["auto", "discrete"])
@pytest.mark.parametrize("name", ["conv3x3", "conv_residual", "concat", "flatten_dense", "lrn5", "maxpool3_ceil"])
def test_slices_across_contexts(name, memory, pair, rng):
    """The same splits with one context per device: rows and channels that
    a device needs from the other cross through host memory."""
    model, feeds = build(name, rng)
    expected = model.reference(feeds)[0]
    for dim in ("c", "h"):
        (split,) = run(model, feeds, split_plan(model, pair, dim, (0.4, 0.6)), list(pair),
                       grouping="device", memory=memory)
        assert rel_err(split, expected) < TOL, dim
