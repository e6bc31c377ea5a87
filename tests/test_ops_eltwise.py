"""Elementwise layers against their numpy references: every activation
standalone and fused into the convolution and dense kernels; binary ops with
numpy broadcasting of any rank up to 6 (the fast paths and the strided
kernel), variadic ones; every slice of them written by two devices equal to
the whole, each slice reading only the input box it declares; and the
recognition of activations that graphs spell as several nodes."""

import numpy as np
import pytest

from clnn import Model
from clnn.ops import Activation, Binary, Concat, Conv2d, Dense
from clnn.ops.base import ACTIVATIONS, ACTIVATION_PARAMS
from clnn.plan import Plan

from helpers import (TOL, case_model, check_input_boxes, check_reference, check_slices, rand, rel_err, run,
                     share_patterns)

# every activation with parameters where it takes some
SPECS = {"leaky_relu": ("leaky_relu", 0.2), "clip": ("clip", -0.5, 0.7), "hard_sigmoid": ("hard_sigmoid", 0.3, 0.4),
         "elu": ("elu", 0.7), "selu": ("selu", 1.6732632, 1.050701), "celu": ("celu", 0.8),
         "thresholded_relu": ("thresholded_relu", 0.3)}
# activations defined for positive inputs only
POSITIVE = {"log", "sqrt"}


def spec(name):
    return SPECS.get(name, name)


def positive(rng, shape):
    return np.abs(rand(rng, shape)) + 0.1


def test_every_activation_has_a_case():
    assert set(ACTIVATION_PARAMS) <= set(SPECS)


# (the kernel reads and writes the same for every activation: the cases
# below that fuse some run under Oclgrind)
@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n])
def test_activation_matches_reference(name, kind, device, rng):
    shape = (2, 3, 5, 7)
    model = Model({"x": shape}, [Activation("y", "x", spec(name))], ["y"])
    # values of both signs, some beyond the kinks of HardSigmoid (+-2.5) and HardSwish (+-3)
    x = positive(rng, shape) if name in POSITIVE else rand(rng, shape, 2.0)
    (actual,) = run(model, {"x": x}, Plan.single(model, device), [device], kind=kind)
    assert rel_err(actual, model.reference({"x": x})[0]) < TOL


@pytest.mark.parametrize("name", ["hard_sigmoid", "hard_swish", "silu", "gelu", "gelu_tanh", "elu", "selu", "celu",
                                  "softplus", "mish", "thresholded_relu", "clip"])
def test_activations_pass_nan_and_far_values(name, device):
    """Large inputs do not overflow into NaN (sigmoid-like gates, softplus),
    and NaN stays NaN (ThresholdedRelu makes it 0, as ONNX defines it)."""
    x = np.array([[-1e4, -90.0, -20.0, -3.0, 0.0, 3.0, 20.0, 90.0, 1e4, np.nan]], np.float32)
    model = Model({"x": x.shape}, [Activation("y", "x", spec(name))], ["y"])
    (actual,) = run(model, {"x": x}, Plan.single(model, device), [device])
    expected = model.reference({"x": x})[0]
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    assert np.allclose(actual[~np.isnan(actual)], expected[~np.isnan(expected)], rtol=1e-5, atol=1e-6)


def conv_act(activation, groups=1):
    def build(rng):
        w = rand(rng, (6, 6 // groups, 3, 3), 0.3)
        return {"x": (2, 6, 7, 5)}, [Conv2d("y", "x", w, rand(rng, (6,)), pads=1, groups=groups,
                                            activation=activation)]
    return build


def dense_act(n, activation):
    def build(rng):
        return {"x": (n, 13)}, [Dense("y", "x", rand(rng, (7, 13), 0.3), rand(rng, (7,)), activation=activation)]
    return build


def binary(op, *shapes, constants=(), constant_first=False, activation=None):
    """``op`` of inputs of ``shapes`` (a0, a1, ...) and then constants of
    shapes ``constants`` (the one constant first with ``constant_first``)."""
    def build(rng):
        inputs = {f"a{i}": s for i, s in enumerate(shapes)}
        values = [(positive if op == "Pow" else rand)(rng, shape) for shape in constants]
        operands = values + list(range(len(shapes))) if constant_first else list(range(len(shapes))) + values
        return inputs, [Binary("y", tuple(inputs), op, operands=operands, activation=activation)]
    return build


def slice_graph(rng):
    """3-D operands that are channel slices of a Concat's storage (batch
    stride 8*5, not their own 4*5; the second one 4*5 in) broadcast along
    the first dimension of a 4-D tensor: their own first dimension is the
    output's second."""
    layers = [Activation("a", "x", "relu"), Activation("b", "x", "tanh"), Concat("cat", ["a", "b"]),
              Binary("s", ("z", "a"), "Sub"), Binary("y", ("b", "s"), "Mul")]
    return {"x": (2, 4, 5), "z": (3, 2, 4, 5)}, layers


CASES = {
    # fused into the convolution and dense kernels
    "conv_gelu": conv_act("gelu"),
    "conv_hard_swish": conv_act("hard_swish"),
    "conv_depthwise_silu": conv_act("silu", groups=6),
    "conv_grouped_mish": conv_act("mish", groups=2),
    "dense_gemv_elu": dense_act(1, ("elu", 0.5)),
    "dense_tiled_hard_sigmoid": dense_act(13, ("hard_sigmoid", 0.25, 0.5)),
    # today's fast paths
    "add_same": binary("Add", (3, 4, 5, 6), (3, 4, 5, 6), activation="gelu"),
    "max_batch1_first": binary("Max", (1, 4, 5, 6), (3, 4, 5, 6)),
    "pow_channel_const": binary("Pow", (2, 3, 5, 7), constants=[(3, 1, 1)]),
    "rpow_scalar_const": binary("Pow", (2, 3, 5, 7), constants=[()], constant_first=True),
    "prelu_channel": binary("PRelu", (2, 3, 5, 7), constants=[(3, 1, 1)]),
    "min_channel_tensor": binary("Min", (2, 5, 3, 3), (1, 5, 1, 1)),
    # the strided kernel
    "sub_both_ways": binary("Sub", (3, 1, 5, 1), (1, 4, 1, 6)),
    "div_lower_rank": binary("Div", (13, 1), (2, 3, 13, 7)),
    "pow_tensors_broadcast": binary("Pow", (2, 3, 1, 7), (3, 5, 1)),
    "prelu_slope_tensor": binary("PRelu", (2, 3, 5, 7), (5, 7)),
    "add_full_constant": binary("Add", (3, 2, 5, 7), constants=[(3, 2, 5, 7)]),
    "sub_constant_first_bcast": binary("Sub", (2, 1, 7), constants=[(3, 1, 1, 1)], constant_first=True),
    "mul_5d": binary("Mul", (2, 3, 1, 4, 5), (3, 7, 1, 1), activation="tanh"),
    "max_6d": binary("Max", (2, 1, 3, 1, 2, 3), (1, 3, 1, 4, 2, 1)),
    "add_rank1_rank2": binary("Add", (13,), (3, 1)),
    # variadic
    "sum4": binary("Add", (2, 3, 5, 7), (3, 1, 7), (7,), constants=[(3, 1, 1)]),
    "max3": binary("Max", (1, 3, 5, 1), (2, 3, 1, 7), (5, 1)),
    "mean3_constant": binary("Mean", (2, 3, 5, 7), (2, 3, 5, 7), constants=[(1,)], activation="relu"),
    "clip_tensor_bounds": binary("Clip", (2, 3, 5, 7), (1,), (1,)),
    "operand_is_a_concat_slice": slice_graph,
}


def build(name, rng):
    make = positive if name.startswith("pow_") else rand   # a negative base to a fractional power is NaN
    return case_model(CASES[name], name, rng, make)


@pytest.mark.oclgrind
@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name, kind, device, rng):
    model, feeds = build(name, rng)
    check_reference(model, feeds, device, kind=kind)


SPLIT_CASES = ["add_same", "max_batch1_first", "pow_channel_const", "sub_both_ways", "div_lower_rank",
               "mul_5d", "max_6d", "add_rank1_rank2", "sum4", "max3", "operand_is_a_concat_slice"]


@pytest.mark.oclgrind
@pytest.mark.parametrize("name", SPLIT_CASES)
def test_split_on_one_device_reads_only_its_input_box(name, device, rng):
    """Two slices on one device with resident buffers: only the input box a
    slice declares is copied in before it runs (the rest is NaN), so a
    kernel reading past it shows."""
    model, feeds = build(name, rng)
    check_input_boxes(model, feeds, device)


@pytest.mark.parametrize("grouping, memory", [("platform", "auto"), ("device", "discrete")])
@pytest.mark.parametrize("name", SPLIT_CASES)
def test_every_slice_equals_the_whole(name, grouping, memory, pair, rng):
    model, feeds = build(name, rng)
    check_slices(model, feeds, pair, grouping, memory, patterns=lambda extent: share_patterns(extent)[2:])


def kernels(model):
    from clnn.box import Box
    from clnn.ops import Target
    layer = model.layers[-1]
    return [launch.kernel for launch in layer.launches(Target("cpu"), Box.whole(layer.out_shape))]


@pytest.mark.parametrize("name, expected", [
    ("add_same", ["clnn_eltwise_box"]), ("max_batch1_first", ["clnn_eltwise_box"]),
    ("pow_channel_const", ["clnn_eltwise_box"]), ("rpow_scalar_const", ["clnn_eltwise_box"]),
    ("min_channel_tensor", ["clnn_eltwise_box"]), ("sub_both_ways", ["clnn_eltwise_strided"]),
    ("div_lower_rank", ["clnn_eltwise_strided"]),
    ("mean3_constant", ["clnn_eltwise_box"] * 3),
    ("sum4", ["clnn_eltwise_strided", "clnn_eltwise_strided", "clnn_eltwise_box"]),
])
def test_fast_paths_are_kept(name, expected, rng):
    """Same shapes, a batch-1 operand (on either side), one value per
    channel and a scalar take the simple kernel; other broadcasts the
    strided one. Variadic ops take one launch per operand after the first."""
    model, _ = build(name, rng)
    assert kernels(model) == expected


def test_input_boxes_are_exact(rng):
    """A broadcast operand is read where the output box lies along its own
    dimensions: batch range where it has the batch, nothing more."""
    from clnn.box import Box
    model, _ = build("div_lower_rank", rng)    # (13, 1) against (2, 3, 13, 7)
    layer = model.layers[0]
    box = Box(1, 2, 1, 3, 4, 9)
    assert layer.input_box(box, 0) == Box(4, 9, 0, 1, 0, 1)
    assert layer.input_box(box, 1) == box
    model, _ = build("max_6d", rng)           # (2,1,3,1,2,3) and (1,3,1,4,2,1) -> (2,3,3,4,2,3)
    layer = model.layers[0]
    box = Box(1, 2, 1, 3, 0, 2)
    assert layer.input_box(box, 0) == Box(1, 2, 0, 1, 0, 2)
    assert layer.input_box(box, 1) == Box(0, 1, 1, 3, 0, 1)


@pytest.mark.parametrize("op, shapes, message", [
    ("Add", [(2, 3), (4, 3, 2)], "do not broadcast"),
    ("Sub", [(2, 3), (2, 3), (2, 3)], "operands"),
    ("PRelu", [(3, 1), (3, 4)], "slope"),
    ("Foo", [(2, 3), (2, 3)], "unsupported"),
])
def test_bad_binaries_are_model_errors(op, shapes, message):
    from clnn import ModelError
    with pytest.raises(ModelError, match=message):
        Model({f"a{i}": s for i, s in enumerate(shapes)}, [Binary("y", [f"a{i}" for i in range(len(shapes))], op)],
              ["y"])


def test_activation_parameters_are_checked():
    from clnn import ModelError
    with pytest.raises(ModelError, match="takes 2 parameters"):
        Activation("y", "x", ("hard_sigmoid", 0.2))
    with pytest.raises(ModelError, match="unsupported activation"):
        Activation("y", "x", "swish")


# activations spelled as several nodes ---------------------------------------------------

def scalar(value):
    return np.float32(value)


def torch_gelu(x, out):
    """As torch's TorchScript exporter writes GELU before opset 20."""
    return [Binary(f"{out}_d", x, "Div", constant=scalar(np.sqrt(2))), Activation(f"{out}_e", f"{out}_d", "erf"),
            Binary(f"{out}_a", f"{out}_e", "Add", constant=scalar(1)),
            Binary(f"{out}_m", (x, f"{out}_a"), "Mul"), Binary(out, f"{out}_m", "Mul", constant=scalar(0.5))]


def gelu_tanh(x, out):
    return [Binary(f"{out}_p", x, "Pow", constant=scalar(3)),
            Binary(f"{out}_k", f"{out}_p", "Mul", constant=scalar(0.044715)),
            Binary(f"{out}_s", (x, f"{out}_k"), "Add"),
            Binary(f"{out}_r", f"{out}_s", "Mul", constant=scalar(np.sqrt(2 / np.pi))),
            Activation(f"{out}_t", f"{out}_r", "tanh"), Binary(f"{out}_a", f"{out}_t", "Add", constant=scalar(1)),
            Binary(f"{out}_h", (x, f"{out}_a"), "Mul"), Binary(out, f"{out}_h", "Mul", constant=scalar(0.5))]


PATTERNS = {
    "silu": [Activation("g", "c", "sigmoid"), Binary("y", ("c", "g"), "Mul")],
    "silu_gate_first": [Activation("g", "c", "sigmoid"), Binary("y", ("g", "c"), "Mul")],
    "hard_swish": [Activation("g", "c", ("hard_sigmoid", 1 / 6, 0.5)), Binary("y", ("c", "g"), "Mul")],
    "hard_swish_relu6": [Binary("p", "c", "Add", constant=scalar(3)), Activation("q", "p", ("clip", 0.0, 6.0)),
                         Binary("m", ("c", "q"), "Mul"), Binary("y", "m", "Div", constant=scalar(6))],
    "mish": [Activation("s", "c", "softplus"), Activation("g", "s", "tanh"), Binary("y", ("c", "g"), "Mul")],
    "gelu": torch_gelu("c", "y"),
    "gelu_half_first": [Binary("h", "c", "Mul", constant=scalar(0.5)),
                        Binary("d", "c", "Mul", constant=scalar(1 / np.sqrt(2))), Activation("e", "d", "erf"),
                        Binary("a", "e", "Add", constant=scalar(1)), Binary("y", ("h", "a"), "Mul")],
    "gelu_tanh": gelu_tanh("c", "y"),
    "relu_as_max": [Binary("y", "c", "Max", constant=scalar(0))],
}


def conv_then(rng, layers):
    conv = Conv2d("c", "x", rand(rng, (4, 3, 3, 3), 0.3), rand(rng, (4,)), pads=1)
    return {"x": (2, 3, 5, 7)}, [conv] + layers


@pytest.mark.parametrize("name, activation", [
    ("silu", "silu"), ("silu_gate_first", "silu"), ("hard_swish", "hard_swish"), ("hard_swish_relu6", "hard_swish"),
    ("mish", "mish"), ("gelu", "gelu"), ("gelu_half_first", "gelu"), ("gelu_tanh", "gelu_tanh"),
    ("relu_as_max", "relu")])
def test_spelled_out_activations_fuse_into_the_convolution(name, activation, device, rng):
    inputs, layers = conv_then(rng, PATTERNS[name])
    plain = Model(inputs, layers, ["y"], fuse=False)
    model = Model(inputs, layers, ["y"])
    assert [(type(layer), layer.activation) for layer in model.layers] == [(Conv2d, activation)]
    assert model.output_names == ["y"]
    feeds = {"x": rand(rng, (2, 3, 5, 7), 3.0)}
    expected = plain.reference(feeds)[0]
    assert rel_err(model.reference(feeds)[0], expected) < 1e-5
    (actual,) = run(model, feeds, Plan.single(model, device), [device])
    assert rel_err(actual, expected) < TOL


def test_lookalikes_are_left_alone(rng):
    """A gate of another tensor, a gate read elsewhere too, a gate that is
    a model output, and a constant a little off are not activations."""
    other = Conv2d("c2", "x", rand(rng, (4, 3, 3, 3), 0.3), None, pads=1)
    cases = {
        "other_tensor": ([other, Activation("g", "c2", "sigmoid"), Binary("y", ("c", "g"), "Mul")], ["y"]),
        "gate_read_twice": ([Activation("g", "c", "sigmoid"), Binary("m", ("c", "g"), "Mul"),
                             Binary("y", ("m", "g"), "Add")], ["y"]),
        "gate_is_an_output": ([Activation("g", "c", "sigmoid"), Binary("y", ("c", "g"), "Mul")], ["y", "g"]),
        "sqrt2_rounded": ([Binary("d", "c", "Div", constant=scalar(1.41)), Activation("e", "d", "erf"),
                           Binary("a", "e", "Add", constant=scalar(1)), Binary("m", ("c", "a"), "Mul"),
                           Binary("y", "m", "Mul", constant=scalar(0.5))], ["y"]),
    }
    feeds = {"x": rand(rng, (2, 3, 5, 7))}
    for name, (pattern, outputs) in cases.items():
        inputs, layers = conv_then(rng, pattern)
        model = Model(inputs, layers, outputs)
        assert not any(layer.activation in ("silu", "gelu") for layer in model.layers), name
        plain = Model(inputs, layers, outputs, fuse=False)
        for got, expected in zip(model.reference(feeds), plain.reference(feeds)):
            assert rel_err(got, expected) < 1e-5, name
