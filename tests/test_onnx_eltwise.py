"""ONNX elementwise ops against onnxruntime: the activations, the binary and
variadic ops with numpy broadcasting, PRelu, Clip with computed bounds, in
the opsets where their forms changed; activations written as several nodes
(as exporters do) recognised and fused; the ONNX package's own node tests
of these ops; export round trips; unsupported forms as ModelError."""

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import clnn
from clnn.ops import Activation, Binary, Conv2d
from clnn.ops.base import activation_name

from helpers import rand, rel_err
from test_onnx import assert_matches, check_import, make_model, node, run_clnn, run_ort

# the newest opset compared with onnxruntime (1.30, the GPU machine's, runs 25)
LAST_OPSET = min(25, onnx.defs.onnx_opset_version())


def positive(rng, shape):
    return np.abs(rand(rng, shape)) + 0.1


def unary(op, shape=(2, 3, 5, 7), feed=rand, **attrs):
    def build(rng, opset):
        return make_model([node(op, ["x"], **attrs)], {"x": shape}, opset=opset), {"x": feed(rng, shape)}
    return build


def tensors(op, *shapes, feed=rand, **attrs):
    """``op`` of graph inputs a0, a1, ... of ``shapes``."""
    def build(rng, opset):
        names = [f"a{i}" for i in range(len(shapes))]
        model = make_model([node(op, names, **attrs)], dict(zip(names, shapes)), opset=opset)
        return model, {n: feed(rng, s) for n, s in zip(names, shapes)}
    return build


def mixed(op, x_shape, *operands, feed=rand):
    """``op`` of graph input x and constants, in the order of ``operands``
    (shapes; the string "x" places x)."""
    def build(rng, opset):
        consts = {f"c{i}": feed(rng, s) for i, s in enumerate(operands) if s != "x"}
        names = ["x" if s == "x" else f"c{i}" for i, s in enumerate(operands)]
        return make_model([node(op, names)], {"x": x_shape}, consts, opset=opset), {"x": feed(rng, x_shape)}
    return build


def clip_tensor_bounds(lo, hi):
    """Clip whose bounds are computed (graph inputs of shape (1,) or ())."""
    def build(rng, opset):
        inputs = {"x": (2, 3, 5, 7)}
        names = ["x"]
        for name, shape in (("lo", lo), ("hi", hi)):
            if shape is None:
                names.append("")
            else:
                inputs[name] = shape
                names.append(name)
        while names[-1] == "":
            names.pop()
        feeds = {"x": rand(rng, (2, 3, 5, 7), 2.0), "lo": np.full(lo or (), -0.5, np.float32),
                 "hi": np.full(hi or (), 0.7, np.float32)}
        return make_model([node("Clip", names)], inputs, opset=opset), {k: feeds[k] for k in inputs}
    return build


def pow_int_exponent(rng, opset):
    """Pow with an int64 exponent (opset 12 on)."""
    model = make_model([node("Pow", ["x", "e"])], {"x": (2, 3, 5)}, {"e": np.array(3, np.int64)}, opset=opset)
    return model, {"x": rand(rng, (2, 3, 5))}


CASES = {
    # activations
    "hardsigmoid": unary("HardSigmoid", alpha=0.3, beta=0.4),
    "hardsigmoid_default": unary("HardSigmoid"),
    "hardswish": unary("HardSwish", (1, 13, 3, 3)),
    "elu": unary("Elu", alpha=0.7),
    "elu_default": unary("Elu", (3, 13)),
    "selu": unary("Selu", alpha=1.5, gamma=1.2),
    "selu_default": unary("Selu"),
    "celu": unary("Celu", alpha=0.8),
    "softplus": unary("Softplus"),
    "softsign": unary("Softsign", (7,)),
    "mish": unary("Mish"),
    "thresholdedrelu": unary("ThresholdedRelu", alpha=0.3),
    "thresholdedrelu_default": unary("ThresholdedRelu"),
    "erf": unary("Erf", (1, 3, 5, 7, 2)),
    "exp": unary("Exp"),
    "log": unary("Log", feed=positive),
    "sqrt": unary("Sqrt", feed=positive),
    "neg": unary("Neg"),
    "abs": unary("Abs", (2, 1, 3, 1, 2, 3)),
    "reciprocal": unary("Reciprocal"),
    "floor": unary("Floor", feed=lambda rng, s: rand(rng, s, 3.0)),
    "ceil": unary("Ceil", feed=lambda rng, s: rand(rng, s, 3.0)),
    "gelu": unary("Gelu"),
    "gelu_tanh": unary("Gelu", approximate="tanh"),
    # binary ops, broadcast both ways, any rank
    "add_both_ways": tensors("Add", (3, 1, 5, 1), (1, 4, 1, 6)),
    "sub_lower_rank_first": tensors("Sub", (5, 1), (2, 3, 5, 7)),
    "mul_rank5": tensors("Mul", (2, 3, 1, 4, 5), (3, 7, 1, 1)),
    "div_rank6": tensors("Div", (2, 1, 3, 1, 2, 3), (1, 3, 1, 4, 2, 1)),
    "pow_tensors": tensors("Pow", (2, 3, 5, 7), (3, 1, 7), feed=positive),
    "pow_const_exponent": mixed("Pow", (2, 3, 5, 7), "x", (), feed=positive),
    "pow_const_base": mixed("Pow", (2, 3, 5, 7), (3, 1, 1), "x", feed=positive),
    "pow_int_exponent": pow_int_exponent,
    "add_const_full_batch": mixed("Add", (3, 2, 5, 7), "x", (3, 2, 5, 7)),
    "sub_const_first_bcast": mixed("Sub", (2, 1, 7), (3, 1, 1, 1), "x"),
    # variadic
    "max_one": tensors("Max", (2, 3, 5)),
    "min_two": tensors("Min", (2, 3, 5), (3, 1)),
    "sum_three": tensors("Sum", (2, 3, 5), (3, 1), (1, 5)),
    "mean_three": tensors("Mean", (2, 1, 5), (3, 1), (5,)),
    "max_with_constants": mixed("Max", (2, 3, 5, 7), (3, 1, 1), "x", ()),
    "mean_with_constants": mixed("Mean", (2, 3, 5, 7), "x", (7,), (3, 1, 1)),
    # PRelu
    "prelu_channel": mixed("PRelu", (2, 3, 5, 7), "x", (3, 1, 1)),
    "prelu_scalar": mixed("PRelu", (2, 3, 5, 7), "x", (1,)),
    "prelu_last_axis": mixed("PRelu", (2, 3, 5, 7), "x", (7,)),
    "prelu_tensor_slope": tensors("PRelu", (2, 3, 5, 7), (3, 1, 1)),
    # Clip with computed bounds
    "clip_tensor_bounds": clip_tensor_bounds((1,), ()),
    "clip_tensor_min": clip_tensor_bounds((), None),
    "clip_tensor_max": clip_tensor_bounds(None, (1,)),
}
# the opsets each case runs in: where the op's form changed, both sides
CASE_OPSETS = {
    "hardswish": (14, LAST_OPSET), "celu": (12, LAST_OPSET), "mish": (18, LAST_OPSET),
    "gelu": (20, LAST_OPSET), "gelu_tanh": (20, LAST_OPSET),
    "pow_int_exponent": (12, 13, 15), "pow_tensors": (11, 13, 15),
    "add_both_ways": (11, 13, 14), "max_one": (11, 13), "min_two": (11, 12, 13), "sum_three": (11, 13),
    "mean_three": (11, 13), "prelu_channel": (11, 16), "clip_tensor_bounds": (11, 12, 13),
    "erf": (11, 13), "reciprocal": (11, 13), "thresholdedrelu": (11, LAST_OPSET),
}
IMPORT_CASES = [(name, opset) for name in CASES for opset in CASE_OPSETS.get(name, (17,))]


@pytest.mark.parametrize("name,opset", IMPORT_CASES, ids=[f"{n}-op{o}" for n, o in IMPORT_CASES])
def test_import_matches_onnxruntime(name, opset, devices, rng):
    proto, feeds = CASES[name](rng, opset)
    check_import(proto, feeds, devices)


def test_scalar_prelu_is_a_leaky_relu(devices, rng):
    proto, feeds = CASES["prelu_scalar"](rng, 17)
    model = check_import(proto, feeds, devices)
    assert model.layers[0].activation[0] == "leaky_relu"


# activations as exporters spell them, fused into the convolution ----------------------

def conv_then(nodes, opset=17, consts=None):
    """x -> Conv -> c -> ``nodes`` -> y, as a builder."""
    def build(rng, opset=opset):
        values = {"w": rand(rng, (4, 3, 3, 3), 0.3), "b": rand(rng, (4,)), **(consts or {})}
        graph = [node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])] + nodes
        return make_model(graph, {"x": (2, 3, 5, 7)}, values, opset=opset), {"x": rand(rng, (2, 3, 5, 7), 3.0)}
    return build


F32 = np.float32
PATTERNS = {
    # torch: SiLU as x * Sigmoid(x)
    "silu": (conv_then([node("Sigmoid", ["c"], ["s"]), node("Mul", ["c", "s"])]), "silu"),
    # torch's TorchScript exporter, GELU before opset 20 (constants as Constant nodes)
    "gelu_torchscript": (conv_then([
        helper.make_node("Constant", [], ["r2"], value=onnx.numpy_helper.from_array(F32(1.4142135623730951))),
        helper.make_node("Constant", [], ["one"], value=onnx.numpy_helper.from_array(F32(1.0))),
        helper.make_node("Constant", [], ["half"], value=onnx.numpy_helper.from_array(F32(0.5))),
        node("Div", ["c", "r2"], ["d"]), node("Erf", ["d"], ["e"]), node("Add", ["e", "one"], ["a"]),
        node("Mul", ["c", "a"], ["m"]), node("Mul", ["m", "half"])]), "gelu"),
    # the dynamo exporter's order: 0.5 * (x * (1 + erf(x / sqrt 2)))
    "gelu_dynamo": (conv_then([node("Div", ["c", "r2"], ["d"]), node("Erf", ["d"], ["e"]),
                               node("Add", ["e", "one"], ["a"]), node("Mul", ["c", "a"], ["m"]),
                               node("Mul", ["half", "m"])],
                              consts={"r2": F32(np.sqrt(2)), "one": F32(1), "half": F32(0.5)}), "gelu"),
    "gelu_tanh": (conv_then([node("Pow", ["c", "three"], ["p"]), node("Mul", ["p", "k"], ["q"]),
                             node("Add", ["c", "q"], ["s"]), node("Mul", ["s", "r"], ["t0"]),
                             node("Tanh", ["t0"], ["t"]),
                             node("Add", ["t", "one"], ["a"]), node("Mul", ["half", "a"], ["g"]),
                             node("Mul", ["c", "g"])],
                            consts={"three": F32(3), "k": F32(0.044715), "r": F32(np.sqrt(2 / np.pi)), "one": F32(1),
                                    "half": F32(0.5)}), "gelu_tanh"),
    # torch before opset 14: hardswish as x * HardSigmoid(x, 1/6, 1/2); timm's as x * relu6(x + 3) / 6
    "hard_swish_hardsigmoid": (conv_then([node("HardSigmoid", ["c"], ["h"], alpha=1 / 6, beta=0.5),
                                          node("Mul", ["c", "h"])]), "hard_swish"),
    "hard_swish_relu6": (conv_then([node("Add", ["c", "three"], ["p"]), node("Clip", ["p", "zero", "six"], ["q"]),
                                    node("Mul", ["c", "q"], ["m"]), node("Div", ["m", "six"])],
                                   consts={"three": F32(3), "zero": F32(0), "six": F32(6)}), "hard_swish"),
    # torch before opset 18: mish as x * Tanh(Softplus(x))
    "mish": (conv_then([node("Softplus", ["c"], ["s"]), node("Tanh", ["s"], ["t"]), node("Mul", ["c", "t"])]), "mish"),
    # ops that are activations fuse too
    "hardswish_op": (conv_then([node("HardSwish", ["c"])], opset=14), "hard_swish"),
    "gelu_op": (conv_then([node("Gelu", ["c"])], opset=20), "gelu"),
    "elu_op": (conv_then([node("Elu", ["c"], alpha=0.5)]), ("elu", 0.5)),
}


@pytest.mark.parametrize("name", list(PATTERNS))
def test_spelled_out_activations_fuse_into_the_convolution(name, devices, rng):
    build, activation = PATTERNS[name]
    proto, feeds = build(rng)
    model = check_import(proto, feeds, devices)
    assert [(type(layer), layer.activation) for layer in model.layers] == [(Conv2d, activation)]


# models exported by torch -------------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data"
TORCH_EXPORTS = sorted(p.name for p in DATA.glob("torch_eltwise_*.onnx"))


def test_torch_exports_are_there():
    assert TORCH_EXPORTS == ["torch_eltwise_dynamo18.onnx", "torch_eltwise_dynamo20.onnx", "torch_eltwise_ts12.onnx",
                             "torch_eltwise_ts14.onnx", "torch_eltwise_ts17.onnx"]


@pytest.mark.parametrize("name", TORCH_EXPORTS)
def test_torch_exports(name, devices, rng):
    """Convolutions each followed by an activation of torchvision's and
    timm's nets, as torch exports them (tests/data/make_torch_eltwise.py):
    every activation fuses into its convolution, but PReLU, whose slope is
    per channel; the dynamo exports have no Softplus (see there)."""
    model = check_import(onnx.load(DATA / name), {"x": rand(rng, (2, 6, 7, 5))}, devices)
    expected = ["silu", "hard_swish", "gelu", "gelu_tanh", "mish", None, "elu", "selu", "celu", "softplus",
                "leaky_relu",
                "clip", "hard_sigmoid", "sigmoid", "tanh", "softsign", "hard_sigmoid", None]
    if "dynamo" in name:
        expected.remove("softplus")
    assert [activation_name(layer.activation) for layer in model.layers if isinstance(layer, Conv2d)] == expected


# the ONNX package's node tests --------------------------------------------------------

OPS = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "HardSwish", "HardSigmoid", "Erf",
       "Gelu", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Elu", "Selu", "Softplus",
       "Softsign", "ThresholdedRelu", "Celu", "Mish", "LeakyRelu", "Clip", "Relu", "Sigmoid", "Tanh"}


def node_tests():
    """The onnx package's node test cases of these ops: {name: case}. Each
    op's module makes its cases as it is imported (collect_testcases would
    make every op's, which takes long)."""
    import importlib

    from onnx.backend.test.case import node as cases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for op in OPS:
            importlib.import_module(f"{cases.__name__}.{op.lower()}")
    return {c.name: c for c in cases._NodeTestCases if {n.op_type for n in c.model.graph.node} <= OPS}


NODE_TESTS = node_tests()


def _float32_only(case):
    graph = case.model.graph
    return all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in list(graph.input) + list(graph.output))


def _restamped(model):
    """The model in the newest opset clnn reads, where it is newer: the
    later versions of these ops added element types only (their attributes
    are the same)."""
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset <= LAST_OPSET:
        return model
    for n in model.graph.node:
        newer, older = onnx.defs.get_schema(n.op_type, opset), onnx.defs.get_schema(n.op_type, LAST_OPSET)
        assert newer.attributes.keys() == older.attributes.keys(), n.op_type
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", LAST_OPSET))
    return model


FLOAT_NODE_TESTS = sorted(name for name, case in NODE_TESTS.items() if _float32_only(case))
OTHER_NODE_TESTS = sorted(name for name, case in NODE_TESTS.items() if not _float32_only(case))


def test_node_tests_were_found():
    ops = {n.op_type for name in FLOAT_NODE_TESTS for n in NODE_TESTS[name].model.graph.node}
    assert ops == OPS


@pytest.mark.parametrize("name", FLOAT_NODE_TESTS)
def test_onnx_node_tests(name, devices):
    case = NODE_TESTS[name]
    model = _restamped(onnx.ModelProto.FromString(case.model.SerializeToString()))
    ((inputs, outputs),) = case.data_sets
    feeds = {v.name: np.asarray(x) for v, x in zip(model.graph.input, inputs)}
    for runs in run_clnn(model.SerializeToString(), feeds, devices):
        for actual, expected in zip(runs, outputs):
            np.testing.assert_allclose(actual, expected, rtol=case.rtol, atol=max(case.atol, 1e-6))


@pytest.mark.parametrize("name", OTHER_NODE_TESTS)
def test_onnx_node_tests_of_other_types_are_refused(name):
    """clnn computes float32: other element types are a clear error."""
    with pytest.raises(clnn.ModelError, match="float32|has type"):
        clnn.load(_restamped(onnx.ModelProto.FromString(NODE_TESTS[name].model.SerializeToString())))


# export ---------------------------------------------------------------------------------

def export_layers(rng):
    return [Activation("a", "x", ("hard_sigmoid", 0.3, 0.4)), Activation("b", "a", "hard_swish"),
            Binary("c", ("b", "z"), "Pow", activation="silu"),
            Binary("d", ("c", "x", "z"), "Max", activation=("celu", 0.7)),
            Binary("e", ("d", "x"), "Mean", operands=[0, rand(rng, (3, 1, 1)), 1], activation="gelu"),
            Binary("f", ("e", "z"), "Clip", operands=[0, 1, np.float32(1.5)], activation="gelu_tanh"),
            Binary("g", ("f", "x", "z"), "Add", activation="mish"),
            Binary("h", ("g",), "PRelu", operands=[0, rand(rng, (3, 1, 1))], activation=("selu", 1.5, 1.2)),
            Binary("i", ("h", "z"), "Sub", activation=("thresholded_relu", 0.1)),
            Activation("y", "i", ("elu", 0.5))]


@pytest.mark.parametrize("opset", [11, 14, 18, 20, LAST_OPSET])
def test_export_round_trip(opset, devices, rng):
    inputs = {"x": (2, 3, 5, 7), "z": (7,)}
    model = clnn.Model(inputs, export_layers(rng), ["y"])
    feeds = {"x": rand(rng, (2, 3, 5, 7)), "z": positive(rng, (7,))}
    proto = model.to_onnx(opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    expected = run_ort(proto, feeds)
    assert rel_err(expected[0], model.reference(feeds)[0]) < 1e-4
    assert_matches(run_clnn(model, feeds, devices), expected)
    reloaded = clnn.load(proto)
    assert_matches(run_clnn(reloaded, feeds, devices), expected)
    # spelled-out activations are recognised again; before opset 12, CELU is alpha * Elu(x / alpha)
    names = sorted(activation_name(layer.activation) for layer in model.layers)
    if opset < 12:
        names = sorted(n.replace("celu", "elu") for n in names)
    assert sorted(activation_name(layer.activation) for layer in reloaded.layers if layer.activation) == names


# errors --------------------------------------------------------------------------------

def one_node(op, inputs, shapes, consts=None, opset=17, **attrs):
    return make_model([helper.make_node(op, inputs, ["y"], name="n1", **attrs)], shapes, consts, opset=opset)


X = {"x": (1, 3, 7, 7)}
ERRORS = {
    "no_broadcast": (one_node("Mul", ["x", "z"], {"x": (3, 2), "z": (4, 1, 3)}), "do not broadcast"),
    "prelu_slope_too_big": (one_node("PRelu", ["x", "s"], {"x": (3, 1)}, {"s": np.ones((3, 4), F32)}), "slope"),
    "gelu_approximate": (one_node("Gelu", ["x"], X, opset=20, approximate="fast"), "approximate"),
    "celu_alpha_0": (one_node("Celu", ["x"], X, alpha=0.0), "alpha 0"),
    "clip_bound_not_scalar": (one_node("Clip", ["x", "lo"], {"x": (1, 3), "lo": (3,)}), "scalars"),
    "unknown_attribute": (one_node("Elu", ["x"], X, beta=1.0), "'beta'"),
    "rank7_broadcast": (one_node("Add", ["x", "z"], {"x": (2, 1, 1, 1, 1, 1)},
                                 {"z": np.ones((3, 1, 1, 1, 1, 1, 1), F32)}),
                        "rank 7"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_import_errors(name):
    proto, message = ERRORS[name]
    with pytest.raises(clnn.ModelError) as caught:
        clnn.load(proto.SerializeToString())
    assert "'n1'" in str(caught.value) and message in str(caught.value)
