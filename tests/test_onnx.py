"""ONNX import and export against onnxruntime.

Small ONNX graphs, one per supported op and attribute combination, are
loaded with clnn.load and run on one device and split over all of them; both
must match onnxruntime. Unsupported models must raise ModelError naming the
node and its op type. Models built from clnn layers must export to valid
ONNX that onnxruntime runs and clnn loads back.
"""

import copy
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import clnn
from clnn.ops import LRN, Activation, Binary, Concat, Conv2d, Dense, Pool, Reshape, ScaleShift, Softmax

from helpers import rand, rel_err

TOL = 1e-4
NEWEST = onnx.defs.onnx_opset_version()
OPSETS = (11, 13, 17, 21, min(25, NEWEST))   # onnxruntime 1.30 (the GPU machine's) runs opset 25


# building and running ONNX models ---------------------------------------------------

def make_model(nodes, inputs, consts=None, outputs=("y",), opset=17, input_type=TensorProto.FLOAT,
               output_types=None):
    """An ONNX model: ``inputs`` {name: shape}, ``consts`` {name: array}
    as initializers, ``outputs`` of unspecified shape (float, unless
    ``output_types`` {name: TensorProto type} says otherwise)."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, input_type, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, (output_types or {}).get(n, TensorProto.FLOAT), None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (consts or {}).items()])
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))


def run_ort(proto, feeds):
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def plans(devices):
    """All on the first device, and split evenly over every device."""
    single = [1.0] + [0.0] * (len(devices) - 1)
    split = [1.0 / len(devices)] * len(devices)
    return [single, split] if len(devices) > 1 else [single]


def run_clnn(model, feeds, devices):
    """Outputs of ``model`` (a clnn.Model, ONNX bytes or proto) under every plan."""
    return [clnn.InferenceSession(model, devices=devices, plan=shares).run(None, feeds) for shares in plans(devices)]


def assert_matches(actual_runs, expected):
    for actual in actual_runs:
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert rel_err(a, e) < TOL


def check_import(proto, feeds, devices, batch=1):
    """clnn.load(proto) run under every plan matches onnxruntime; the model."""
    model = clnn.load(proto.SerializeToString(), batch=batch)
    assert_matches(run_clnn(model, feeds, devices), run_ort(proto, feeds))
    return model


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op}_{outputs[0]}", **attrs)


def one_op(op, shape, consts=(), attrs=None, inputs=None, opset=17):
    """A builder of a model with one node reading x (and constants
    {name: (shape, scale)} made from rng), with a random input."""
    def build(rng, opset=opset):
        values = {name: rand(rng, s, scale) for name, (s, scale) in dict(consts).items()}
        n = node(op, inputs or ["x", *values], **(attrs or {}))
        return make_model([n], {"x": shape}, values, opset=opset), {"x": rand(rng, shape)}
    return build


# import cases: name -> builder(rng, opset) --------------------------------------------

def conv(shape, weight, bias=True, **attrs):
    consts = {"w": (weight, 0.3)}
    if bias:
        consts["b"] = ((weight[0],), 1.0)
    return one_op("Conv", shape, consts, attrs)


def gemm(n, k, m, c_shape=None, **attrs):
    b_shape = (m, k) if attrs.get("transB") else (k, m)
    consts = {"B": (b_shape, 0.3)}
    if c_shape is not None:
        consts["C"] = (c_shape, 1.0)
    return one_op("Gemm", (n, k), consts, attrs)


def binary_const(op, shape, operand, constant_first=False):
    inputs = ["c", "x"] if constant_first else ["x", "c"]
    return one_op(op, shape, {"c": (operand, 1.0)}, inputs=inputs)


def binary_tensors(op, a_shape, b_shape, **attrs):
    """``op`` of two input tensors a and b."""
    def build(rng, opset=17):
        model = make_model([node(op, ["a", "b"], **attrs)], {"a": a_shape, "b": b_shape}, opset=opset)
        return model, {"a": rand(rng, a_shape), "b": rand(rng, b_shape)}
    return build


def clip(lo, hi):
    def build(rng, opset):
        consts = {k: np.array(v, np.float32) for k, v in (("lo", lo), ("hi", hi)) if v is not None}
        inputs = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
        while inputs[-1] == "":
            inputs.pop()
        return make_model([node("Clip", inputs)], {"x": (2, 3, 5, 7)}, consts, opset=opset), \
            {"x": rand(rng, (2, 3, 5, 7))}
    return build


def batch_norm(shape, after_conv=False):
    def build(rng, opset):
        c = shape[1]
        consts = {"scale": rand(rng, (c,)), "bias": rand(rng, (c,)), "mean": rand(rng, (c,), 0.1),
                  "var": rng.uniform(0.5, 1.5, c).astype(np.float32)}
        nodes = [node("BatchNormalization", ["t" if after_conv else "x", "scale", "bias", "mean", "var"],
                      epsilon=1e-3)]
        if after_conv:
            consts["w"] = rand(rng, (c, c, 3, 3), 0.3)
            nodes.insert(0, node("Conv", ["x", "w"], ["t"], pads=[1, 1, 1, 1]))
        return make_model(nodes, {"x": shape}, consts, opset=opset), {"x": rand(rng, shape)}
    return build


def softmax(shape, axis=None, before=None):
    """Softmax of x, or of x after ``before`` (a GlobalAveragePool, so H=W=1)."""
    def build(rng, opset):
        attrs = {} if axis is None else {"axis": axis}
        nodes = [node("Softmax", ["p" if before else "x"], **attrs)]
        if before:
            nodes.insert(0, node(before, ["x"], ["p"]))
        return make_model(nodes, {"x": shape}, opset=opset), {"x": rand(rng, shape)}
    return build


def reshape(shape, target, **attrs):
    def build(rng, opset):
        nodes = [node("Reshape", ["x", "s"], ["r"], **attrs), node("Relu", ["r"])]
        return make_model(nodes, {"x": shape}, {"s": np.array(target, np.int64)}, opset=opset), \
            {"x": rand(rng, shape)}
    return build


def aliases(op):
    """conv -> Identity/Dropout -> relu; the op's output is also a graph output."""
    def build(rng, opset):
        attrs, inputs, consts = {}, ["c"], {"w": rand(rng, (4, 3, 3, 3), 0.3)}
        if op == "Dropout" and opset < 12:
            attrs["ratio"] = 0.3
        elif op == "Dropout":
            inputs += ["ratio", "training"]
            consts.update(ratio=np.array(0.3, np.float32), training=np.array(False))
        nodes = [node("Conv", ["x", "w"], ["c"]), node(op, inputs, ["d"], **attrs), node("Relu", ["d"])]
        model = make_model(nodes, {"x": (1, 3, 7, 7)}, consts, outputs=("y", "d"), opset=opset)
        return model, {"x": rand(rng, (1, 3, 7, 7))}
    return build


def residual_graph(rng, opset):
    """conv-bn-relu-conv + x (residual) -> relu, concat with another conv,
    max pool, flatten, gemm, softmax; outputs the softmax and a feature map."""
    c = 4
    consts = {"w1": rand(rng, (c, c, 3, 3), 0.3), "w2": rand(rng, (c, c, 3, 3), 0.3), "b2": rand(rng, (c,)),
              "w3": rand(rng, (3, c, 1, 1), 0.3), "g": rand(rng, (c,)), "beta": rand(rng, (c,)),
              "mean": rand(rng, (c,), 0.1), "var": rng.uniform(0.5, 1.5, c).astype(np.float32),
              "fc": rand(rng, (5, 7 * 3 * 3), 0.3), "fcb": rand(rng, (5,))}
    nodes = [node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["bn"]),
             node("Relu", ["bn"], ["r1"]),
             node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             node("Add", ["x", "c2"], ["sum"]),
             node("Relu", ["sum"], ["features"]),
             node("Conv", ["features", "w3"], ["side"]),
             node("Concat", ["features", "side"], ["cat"], axis=1),
             node("MaxPool", ["cat"], ["pool"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
             node("Flatten", ["pool"], ["flat"]),
             node("Gemm", ["flat", "fc", "fcb"], ["logits"], transB=1),
             node("Softmax", ["logits"], ["y"], axis=1)]
    model = make_model(nodes, {"x": (2, c, 7, 7)}, consts, outputs=("y", "features"), opset=opset)
    return model, {"x": rand(rng, (2, c, 7, 7))}


def constant_nodes(rng, opset):
    """Constant nodes feed a Mul (value_float) and a Reshape (value)."""
    nodes = [helper.make_node("Constant", [], ["k"], value_float=1.5),
             helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(np.array([0, -1], np.int64))),
             node("Mul", ["x", "k"], ["m"]), node("Reshape", ["m", "s"])]
    return make_model(nodes, {"x": (3, 2, 5, 1)}, opset=opset), {"x": rand(rng, (3, 2, 5, 1))}


def matmul_add(rng, opset):
    """MatMul then Add of a bias, as PyTorch exports a Linear."""
    consts = {"w": rand(rng, (13, 7), 0.3), "b": rand(rng, (7,))}
    nodes = [node("MatMul", ["x", "w"], ["t"]), node("Add", ["t", "b"])]
    return make_model(nodes, {"x": (3, 13)}, consts, opset=opset), {"x": rand(rng, (3, 13))}


CASES = {
    "conv_pads_strides": conv((1, 3, 13, 7), (5, 3, 3, 3), pads=[1, 1, 1, 1], strides=[2, 2]),
    "conv_dilated": conv((2, 4, 13, 13), (7, 4, 3, 3), pads=[2, 2, 2, 2], dilations=[2, 2]),
    "conv_groups": conv((1, 6, 7, 7), (9, 2, 3, 3), group=3, pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
    "conv_depthwise": conv((1, 7, 13, 7), (7, 1, 3, 3), group=7, strides=[2, 2], pads=[1, 1, 1, 1]),
    "conv_same_upper": conv((1, 3, 13, 7), (4, 3, 4, 2), auto_pad="SAME_UPPER", strides=[2, 2]),
    "conv_same_lower": conv((1, 3, 13, 7), (4, 3, 4, 2), auto_pad="SAME_LOWER", strides=[2, 2]),
    "conv_valid": conv((1, 3, 13, 7), (4, 3, 3, 2), auto_pad="VALID"),
    "conv_asym_pads_nobias": conv((1, 5, 13, 7), (7, 5, 3, 2), bias=False, pads=[1, 2, 0, 3], strides=[2, 1]),
    "gemm_transB1_alpha_beta": gemm(7, 13, 5, (5,), transB=1, alpha=0.5, beta=2.0),
    "gemm_transB0_c_row": gemm(1, 13, 5, (1, 5)),
    "gemm_c_scalar": gemm(3, 13, 5, (), transB=1, beta=0.3),
    "gemm_no_c": gemm(1, 7, 13),
    "matmul": one_op("MatMul", (3, 13), {"w": ((13, 7), 0.3)}),
    "matmul_add": matmul_add,
    **{f"{op.lower()}_tensors": binary_tensors(op, (2, 3, 5, 7), (2, 3, 5, 7)) for op in ("Add", "Sub", "Mul", "Div")},
    "add_batch_broadcast": binary_tensors("Add", (3, 4, 5, 6), (1, 4, 5, 6)),
    "sub_larger_second": binary_tensors("Sub", (1, 4, 5, 6), (3, 4, 5, 6)),
    "div_larger_second": binary_tensors("Div", (1, 13), (7, 13)),
    "mul_channel_tensor": binary_tensors("Mul", (2, 5, 7, 7), (1, 5, 1, 1)),
    "add_const_channel": binary_const("Add", (2, 5, 7, 3), (5, 1, 1)),
    "mul_const_channel_4d": binary_const("Mul", (2, 5, 7, 3), (1, 5, 1, 1)),
    "div_const_scalar": binary_const("Div", (1, 3, 7, 13), ()),
    "sub_const_full": binary_const("Sub", (3, 2, 5, 7), (2, 5, 7)),
    "const_sub_tensor": binary_const("Sub", (1, 3, 7, 13), (), constant_first=True),
    "const_div_channel": binary_const("Div", (2, 3, 7, 1), (3, 1, 1), constant_first=True),
    "const_mul_2d": binary_const("Mul", (3, 13), (13,), constant_first=True),
    "const_add_2d_scalar": binary_const("Add", (3, 13), (1,), constant_first=True),
    "relu": one_op("Relu", (3, 5, 7, 1)),
    "leaky_relu": one_op("LeakyRelu", (1, 5, 7, 13), attrs={"alpha": 0.2}),
    "leaky_relu_default": one_op("LeakyRelu", (3, 13)),
    "sigmoid": one_op("Sigmoid", (2, 13)),
    "tanh": one_op("Tanh", (1, 1, 13, 7)),
    "clip_min_max": clip(-0.5, 0.7),
    "clip_min": clip(0.0, None),
    "clip_max": clip(None, 0.3),
    "clip_none": clip(None, None),
    "clip_min_above_max": clip(0.7, -0.5),     # every value becomes the max
    "maxpool_ceil_pads": one_op("MaxPool", (3, 4, 13, 13), attrs=dict(kernel_shape=[3, 3], strides=[2, 2],
                                                                     pads=[1, 1, 1, 1], ceil_mode=1)),
    "maxpool_dilated": one_op("MaxPool", (1, 2, 9, 13), attrs=dict(kernel_shape=[3, 2], pads=[1, 1, 1, 0],
                                                                   dilations=[2, 3])),
    "maxpool_same_upper": one_op("MaxPool", (1, 3, 7, 13), attrs=dict(kernel_shape=[2, 2], strides=[2, 2],
                                                                      auto_pad="SAME_UPPER")),
    "avgpool_include_pad": one_op("AveragePool", (3, 4, 9, 9), attrs=dict(kernel_shape=[3, 3], strides=[2, 2],
                                                                          pads=[1, 1, 1, 1], count_include_pad=1)),
    "avgpool_exclude_pad": one_op("AveragePool", (3, 4, 9, 7), attrs=dict(kernel_shape=[3, 3], strides=[2, 2],
                                                                          pads=[1, 1, 1, 1])),
    "avgpool_ceil": one_op("AveragePool", (1, 2, 7, 7), attrs=dict(kernel_shape=[2, 2], strides=[2, 2],
                                                                   ceil_mode=1)),
    "avgpool_dilated_ceil": one_op("AveragePool", (1, 2, 10, 13), attrs=dict(
        kernel_shape=[3, 2], strides=[2, 1], pads=[1, 1, 1, 0], dilations=[2, 3], ceil_mode=1)),
    "avgpool_dilated_include_pad": one_op("AveragePool", (2, 3, 9, 11), attrs=dict(
        kernel_shape=[2, 3], strides=[1, 2], pads=[1, 1, 0, 1], dilations=[3, 2], ceil_mode=1, count_include_pad=1)),
    "global_avgpool": one_op("GlobalAveragePool", (2, 5, 7, 7)),
    "global_maxpool": one_op("GlobalMaxPool", (3, 13, 1, 13)),
    "lrn5": one_op("LRN", (1, 7, 5, 5), attrs=dict(size=5)),
    "lrn3_attrs": one_op("LRN", (3, 13, 3, 1), attrs=dict(size=3, alpha=0.3, beta=0.6, bias=2.0)),
    "batchnorm_4d": batch_norm((2, 5, 7, 3)),
    "batchnorm_2d": batch_norm((3, 13)),
    "batchnorm_after_conv": batch_norm((1, 4, 7, 5), after_conv=True),
    "concat_twice": one_op("Concat", (2, 3, 5, 7), attrs={"axis": 1}, inputs=["x", "x"]),
    "concat_negative_axis": binary_tensors("Concat", (2, 3, 5, 7), (2, 1, 5, 7), axis=-3),
    "concat_2d": binary_tensors("Concat", (3, 13), (3, 7), axis=1),
    "softmax_2d": softmax((3, 13), axis=1),
    "softmax_2d_last": softmax((7, 13), axis=-1),
    "softmax_2d_default": softmax((1, 13)),
    "softmax_hw1": softmax((2, 7, 5, 3), axis=1, before="GlobalAveragePool"),
    "softmax_4d_channels": softmax((2, 7, 5, 3), axis=1),
    "flatten": one_op("Flatten", (2, 3, 5, 7)),
    "flatten_negative_axis": one_op("Flatten", (2, 3, 5, 7), attrs={"axis": -3}),
    "reshape_zero_minus_one": reshape((2, 6, 7, 5), [0, -1]),
    "reshape_to_4d": reshape((2, 6, 7, 5), [0, 3, -1, 5]),
    "reshape_to_3d": reshape((3, 42), [3, 6, -1]),
    "reshape_allowzero": reshape((3, 42), [3, 2, -1], allowzero=1),
    "reshape_moves_the_batch": reshape((2, 6, 7, 5), [-1]),
    "reshape_to_5d": reshape((2, 6, 7, 5), [2, 3, 2, 7, 5]),
    "rank1_input": one_op("Relu", (7,)),
    "rank5_input": one_op("Sigmoid", (1, 2, 3, 4, 5)),
    "rank6_input": one_op("Tanh", (2, 1, 3, 1, 2, 3)),
    "identity": aliases("Identity"),
    "dropout": aliases("Dropout"),
    "constant_nodes": constant_nodes,
    "residual_graph": residual_graph,
}
# cases run in every opset of OPSETS; the others in opset 17
CASE_OPSETS = {
    **{name: OPSETS for name in ("conv_pads_strides", "gemm_transB1_alpha_beta", "const_sub_tensor", "clip_min_max",
                                 "clip_min", "clip_min_above_max", "maxpool_ceil_pads", "avgpool_include_pad",
                                 "batchnorm_after_conv",
                                 "softmax_2d", "softmax_2d_default", "softmax_hw1", "flatten",
                                 "reshape_zero_minus_one", "dropout", "identity", "residual_graph")},
    "softmax_4d_channels": (13, 17, 21),
    "reshape_allowzero": (14, 21),
    "avgpool_dilated_ceil": (19, 21),          # AveragePool's dilations came in opset 19
    "avgpool_dilated_include_pad": (19, 21),
}

IMPORT_CASES = [(name, opset) for name in CASES for opset in CASE_OPSETS.get(name, (17,))]


@pytest.mark.parametrize("name,opset", IMPORT_CASES, ids=[f"{n}-op{o}" for n, o in IMPORT_CASES])
def test_import_matches_onnxruntime(name, opset, devices, rng):
    proto, feeds = CASES[name](rng, opset=opset)
    check_import(proto, feeds, devices)


def test_batchnorm_folds_into_conv(devices, rng):
    proto, feeds = CASES["batchnorm_after_conv"](rng, opset=17)
    model = check_import(proto, feeds, devices)
    assert [type(layer) for layer in model.layers] == [Conv2d]


def test_symbolic_batch(devices, rng):
    proto, _ = CASES["conv_pads_strides"](rng, opset=17)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    model = check_import(proto, {"x": rand(rng, (3, 3, 13, 7))}, devices, batch=3)
    assert model.inputs[0].shape == (3, 3, 13, 7)


def test_load_from_path_and_proto(tmp_path, devices, rng):
    proto, feeds = CASES["residual_graph"](rng, opset=17)
    path = tmp_path / "model.onnx"
    onnx.save(proto, path)
    expected = run_ort(proto, feeds)
    for source in (path, str(path), proto):
        assert_matches(run_clnn(source, feeds, devices), expected)


def test_initializers_listed_as_inputs(devices, rng):
    """Older exporters list initializers among the graph inputs: they stay constants."""
    proto, feeds = CASES["conv_pads_strides"](rng, opset=17)
    proto.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                             for t in proto.graph.initializer)
    model = check_import(proto, feeds, devices)
    assert [i.name for i in model.inputs] == ["x"]


def test_external_data(tmp_path, devices, rng):
    """Weights in a separate file load from the model's path; from bytes,
    where they cannot be found, they are a ModelError naming the tensor."""
    proto, feeds = CASES["conv_pads_strides"](rng, opset=17)
    expected = run_ort(proto, feeds)
    path = tmp_path / "model.onnx"
    onnx.save_model(proto, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    assert_matches(run_clnn(path, feeds, devices), expected)
    with pytest.raises(clnn.ModelError, match="initializer 'w'"):
        clnn.load(path.read_bytes())


def test_onnx_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)   # makes ``import onnx`` raise ImportError
    with pytest.raises(clnn.ModelError, match=r"pip install onnx"):
        clnn.load(b"")


def test_output_aliases(devices, rng):
    """Graph outputs that are Identity of a graph input, of another output,
    and of an inner tensor all keep their names."""
    nodes = [node("Identity", ["x"], ["copy"]), node("Relu", ["x"], ["r"]), node("Identity", ["r"], ["r2"]),
             node("Sigmoid", ["x"], ["s"]), node("Identity", ["s"], ["s2"])]
    proto = make_model(nodes, {"x": (1, 3, 5, 7)}, outputs=("copy", "r", "r2", "s2"))
    model = check_import(proto, {"x": rand(rng, (1, 3, 5, 7))}, devices)
    assert [o.name for o in model.outputs] == ["copy", "r", "r2", "s2"]


# errors ---------------------------------------------------------------------------------

def one_node(op, inputs=("x",), consts=None, shapes=None, outputs=("y",), name="n1", opset=17,
             input_type=TensorProto.FLOAT, **attrs):
    """A model of one node over graph inputs ``shapes`` (default x: 1x3x7x7)."""
    n = helper.make_node(op, list(inputs), list(outputs), name=name, **attrs)
    return make_model([n], shapes or {"x": (1, 3, 7, 7)}, consts, outputs, opset, input_type)


def conv_model(consts=None, **kw):
    """x -> Conv named conv1 -> y, with a constant 4x3x3x3 weight w by default."""
    return one_node("Conv", ("x", "w"), {"w": np.ones((4, 3, 3, 3), np.float32)} if consts is None else consts,
                    name="conv1", **kw)


def with_opset(proto, version):
    proto.opset_import[0].version = version
    return proto


def without_opsets(proto):
    del proto.opset_import[:]
    return proto


ONES = np.ones((4, 3), np.float32)
ERRORS = {
    "lstm": (one_node("LSTM", ("x", "w", "r"), {"w": ONES, "r": ONES}), ["'n1' (LSTM)", "not supported"]),
    "resize_cubic": (one_node("Resize", ("x", "", "s"), {"s": np.ones(4, np.float32)}, mode="cubic"),
                     ["'n1' (Resize)", "cubic"]),
    "custom_domain": (one_node("Relu", domain="com.example"), ["'n1' (Relu)", "com.example"]),
    "conv_weight_not_constant": (conv_model({}, shapes={"x": (1, 3, 7, 7), "w": (4, 3, 3, 3)}),
                                 ["'conv1' (Conv)", "weight", "constant"]),
    "conv_group": (conv_model({"w": np.ones((6, 5, 3, 3), np.float32)}, shapes={"x": (1, 16, 7, 7)}, group=3),
                   ["'conv1' (Conv)", "group 3 does not divide 16"]),
    "conv_3d": (conv_model({"w": np.ones((4, 3, 3), np.float32)}), ["'conv1' (Conv)", "2-D"]),
    "conv_unknown_attribute": (conv_model(frobnicate=1), ["'conv1' (Conv)", "frobnicate"]),
    "conv_bad_auto_pad": (conv_model(auto_pad="SAME"), ["'conv1' (Conv)", "auto_pad"]),
    "maxpool_storage_order": (one_node("MaxPool", kernel_shape=[2, 2], storage_order=1),
                              ["'n1' (MaxPool)", "storage_order"]),
    "maxpool_indices_used": (make_model([helper.make_node("MaxPool", ["x"], ["y", "i"], name="n1",
                                                          kernel_shape=[2, 2])],
                                        {"x": (1, 3, 7, 7)}, outputs=("y", "i"),
                                        output_types={"i": TensorProto.INT64}),
                             ["'n1' (MaxPool)", "output 1"]),
    "avgpool_3d_kernel": (one_node("AveragePool", kernel_shape=[2, 2, 2]), ["'n1' (AveragePool)", "kernel_shape"]),
    "gemm_transA_3d": (one_node("Gemm", ("x", "b"), {"b": ONES}, {"x": (3, 4, 1)}, transA=1),
                       ["'n1' (Gemm)", "2-D"]),
    "gemm_c_not_broadcast": (one_node("Gemm", ("x", "b", "c"), {"b": ONES, "c": np.ones((3, 3), np.float32)},
                                      {"x": (2, 4)}), ["'n1' (Gemm)", "C of shape [3, 3] does not broadcast"]),
    "matmul_vector_length": (one_node("MatMul", ("x", "b"), {"b": np.ones(5, np.float32)}),
                             ["'n1' (MatMul)", "do not multiply"]),
    "batchnorm_training": (one_node("BatchNormalization", ("x", "s", "s", "s", "s"), {"s": np.ones(4, np.float32)},
                                    {"x": (1, 4, 3, 3)}, training_mode=1),
                           ["'n1' (BatchNormalization)", "training_mode"]),
    "reshape_to_7d": (one_node("Reshape", ("x", "s"), {"s": np.array([1, 1, 1, 1, 2, 3, 4], np.int64)},
                               {"x": (1, 2, 3, 4)}), ["'n1' (Reshape)", "rank 7"]),
    "gemm_c_not_constant": (one_node("Gemm", ("x", "b", "c"), {"b": ONES}, {"x": (1, 4), "c": (1, 3)}),
                            ["'n1' (Gemm)", "'c'", "constant"]),
    "dropout_mask_used": (one_node("Dropout", outputs=("y", "mask")), ["'n1' (Dropout)", "mask"]),
    "both_constants": (one_node("Add", ("a", "a"), {"a": ONES}), ["graph output 'y' is a constant"]),  # folded
    "no_broadcast": (one_node("Mul", ("x", "z"), shapes={"x": (3, 2), "z": (1, 4)}), ["'n1' (Mul)", "broadcast"]),
    "undefined_tensor": (one_node("Relu", ("nowhere",)), ["'n1' (Relu)", "'nowhere'"]),
    "unnamed_node": (one_node("Tile", name="", outputs=("tiled",)), ["'tiled' (Tile)"]),
    "output_not_produced": (make_model([node("Relu", ["x"])], {"x": (1, 3)}, outputs=("z",)), ["'z'", "no node"]),
    "opset10": (conv_model(opset=10), ["opset 10"]),
    "opset_newer_than_onnx": (with_opset(conv_model(), NEWEST + 1), [f"opset {NEWEST + 1}", f"11 to {NEWEST}"]),
    "layer_error_names_node_once": (one_node("Add", ("x", "c"), {"c": np.ones(5, np.float32)}, name="sum"),
                                    ["node 'sum' (Add): operands of shapes", "do not broadcast"]),
    "no_default_opset": (without_opsets(one_node("Relu")), ["no ai.onnx opset"]),
    "int64_input": (conv_model(input_type=TensorProto.INT64), ["'x'", "tensor(int64)"]),
    "int64_input_well_typed": (one_node("Cast", input_type=TensorProto.INT64, to=TensorProto.FLOAT),
                               ["'x'", "INT64", "float32 inputs only"]),
    "symbolic_channels": (conv_model(shapes={"x": (1, "C", 7, 7)}), ["'x'", "dimension 1", "C"]),
    "rank7_input": (one_node("Relu", shapes={"x": (1, 2, 3, 4, 5, 1, 1)}), ["'x'", "rank 7"]),
    "unknown_rank_input": (one_node("Relu", shapes={"x": None}), ["'x'", "no shape"]),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_import_errors(name):
    proto, expected = ERRORS[name]
    with pytest.raises(clnn.ModelError) as caught:
        clnn.load(proto.SerializeToString())
    for text in expected:
        assert text in str(caught.value)
    assert str(caught.value).count("node ") <= 1, "the node is named once"


def test_ops_changed_after_the_reviewed_opset_are_refused(monkeypatch):
    """An op whose schema changed after the newest opset clnn was checked
    against is refused by name (Conv changed in 22)."""
    monkeypatch.setattr(clnn.onnx_import, "REVIEWED_OPSET", 21)
    with pytest.raises(clnn.ModelError, match=r"'conv1' \(Conv\): Conv changed in opset 22"):
        clnn.load(conv_model(opset=22).SerializeToString())


@pytest.mark.parametrize("source,message", [
    (b"\x08\x07garbage\xff\xfe not onnx", "cannot read an ONNX model"), (b"", "no ONNX graph"),
    (bytearray(b"\x12\x03abc"), "no ONNX graph"), (42, "not int"), ("/nonexistent/model.onnx", "no ONNX file")])
def test_unreadable_models(source, message):
    with pytest.raises(clnn.ModelError, match=message):
        clnn.load(source)


def test_garbage_file(tmp_path, devices):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(clnn.ModelError, match="garbage.onnx"):
        clnn.InferenceSession(str(path), devices=devices)


# export -----------------------------------------------------------------------------------

def export_case(inputs, *layers, outputs=None):
    """A builder of (inputs, layers, outputs); ``layers`` are layers (copied,
    as models change theirs) or functions of rng that make one."""
    def build(rng):
        built = [make(rng) if callable(make) else copy.deepcopy(make) for make in layers]
        return inputs, built, outputs or [built[-1].name]
    return build


EXPORTS = {
    "conv_residual_act": export_case(
        {"x": (2, 5, 7, 7)},
        lambda rng: Conv2d("c", "x", rand(rng, (5, 5, 3, 3), 0.3), rand(rng, (5,)), pads=1,
                           activation=("leaky_relu", 0.1)),
        lambda rng: Conv2d("y", ("c", "x"), rand(rng, (5, 5, 3, 3), 0.3), None, pads=1, activation="relu")),
    "conv_groups_same": export_case(
        {"x": (1, 6, 13, 7)},
        lambda rng: Conv2d("y", "x", rand(rng, (9, 2, 4, 3), 0.3), rand(rng, (9,)), stride=2, groups=3,
                           auto_pad="SAME_LOWER", activation=("clip", -0.5, 0.5))),
    "conv_asym_dilated": export_case(
        {"x": (1, 3, 13, 7)},
        lambda rng: Conv2d("y", "x", rand(rng, (4, 3, 3, 2), 0.3), None, pads=(1, 2, 0, 3), dilation=(2, 1),
                           activation="tanh")),
    "dense_sigmoid": export_case(
        {"x": (3, 13)},
        lambda rng: Dense("y", "x", rand(rng, (7, 13), 0.3), rand(rng, (7,)), activation="sigmoid")),
    "pools": export_case(
        {"x": (2, 3, 12, 12)},
        Pool("a", "x", "max", 2, 1, dilation=2),
        Pool("b", "a", "max", 3, 2, pads=1, ceil_mode=True),
        Pool("c", "b", "avg", 3, 2, pads=1, count_include_pad=True),
        Pool("d", "c", "avg", 2, 2, ceil_mode=True),
        Pool("y", "d", "avg")),
    "global_max_flatten": export_case({"x": (3, 13, 1, 13)}, Pool("p", "x", "max"), Reshape("y", "p")),
    "global_avg_dense": export_case({"x": (1, 13, 3, 5)}, Pool("p", "x", "avg"),
                                    lambda rng: Dense("y", "p", rand(rng, (7, 13), 0.3), None)),
    "lrn": export_case({"x": (1, 7, 5, 3)}, LRN("y", "x", 3, 0.3, 0.6, 2.0)),
    "softmax_2d": export_case({"x": (3, 13)}, Softmax("y", "x")),
    "softmax_4d": export_case({"x": (2, 7, 3, 5)}, Softmax("y", "x")),
    "softmax_4d_hw1": export_case({"x": (2, 7, 1, 1)}, Softmax("y", "x")),
    "binary_constants": export_case(
        {"x": (2, 3, 7, 5)},
        lambda rng: Binary("a", "x", "Sub", constant=rand(rng, ()), reverse=True),
        lambda rng: Binary("b", "a", "Div", constant=rand(rng, (3, 1, 1)), reverse=True),
        lambda rng: Binary("c", "b", "Mul", constant=rand(rng, (1, 3, 7, 5))),
        lambda rng: Binary("y", "c", "Div", constant=rand(rng, (1, 3, 1, 1)), activation="relu")),
    "binary_2d": export_case(
        {"x": (3, 13)},
        lambda rng: Binary("a", "x", "Add", constant=rand(rng, (13,))),
        lambda rng: Binary("y", "a", "Sub", constant=rand(rng, (1, 13)), reverse=True)),
    "binary_tensors": export_case(
        {"x": (2, 3, 7, 5), "z": (1, 3, 7, 5), "v": (2, 3)},
        Binary("a", ("x", "z"), "Sub", activation=("clip", -1.0, 1.0)),
        Binary("b", ("x", "z"), "Div", reverse=True),
        Binary("c", ("a", "b"), "Mul"),
        Reshape("f", "c", [0, -1, 1, 1]),
        Pool("p", "x", "avg"),
        Reshape("q", "p"),
        Binary("y", ("v", "q"), "Add")),
    "scale_shift": export_case(
        {"x": (3, 5, 7, 7)},
        lambda rng: ScaleShift("a", "x", rand(rng, (5,)), rand(rng, (5,)), activation=("clip", 0.0, 6.0)),
        Reshape("f", "a"),
        lambda rng: ScaleShift("y", "f", rand(rng, (245,)), rand(rng, (245,)))),
    "activations_copy": export_case(
        {"x": (2, 3, 5, 7)},
        Activation("a", "x", "sigmoid"), Activation("b", "a", ("leaky_relu", 0.3)),
        Activation("c", "x", "tanh"), Concat("d", ["b", "c", "x"]), Activation("e", "d", None),
        Activation("y", "e", "relu")),
    "reshapes": export_case(
        {"x": (2, 6, 7, 5)}, Reshape("a", "x", [0, 3, -1, 5]), Reshape("b", "a", [2, -1]),
        Reshape("c", "b", [0, 15, 14]), Activation("y", "c", "relu")),
    "names_do_not_collide": export_case(
        {"x": (1, 3, 5, 5)},
        lambda rng: Conv2d("c", "x", rand(rng, (4, 3, 3, 3), 0.3), rand(rng, (4,)), pads=1, activation="relu"),
        Activation("c/Conv", "c", "tanh"), Binary("c/Relu", ("c/Conv", "c"), "Add"),
        outputs=["c/Relu", "c"]),
}
EXPORT_CASES = [(name, opset) for name in EXPORTS for opset in (11, 17) if (name, opset) != ("softmax_4d", 11)]


@pytest.mark.parametrize("name,opset", EXPORT_CASES, ids=[f"{n}-op{o}" for n, o in EXPORT_CASES])
def test_export_round_trip(name, opset, devices, rng):
    inputs, layers, outputs = EXPORTS[name](rng)
    model = clnn.Model(inputs, layers, outputs, name=name)
    feeds = {k: rand(rng, v) for k, v in inputs.items()}
    proto = model.to_onnx(opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    expected = run_ort(proto, feeds)
    for actual, reference in zip(expected, model.reference(feeds)):
        assert rel_err(actual, reference) < TOL
    assert_matches(run_clnn(model, feeds, devices), expected)
    reloaded = clnn.load(proto)
    assert [o.name for o in reloaded.outputs] == outputs
    assert_matches(run_clnn(reloaded, feeds, devices), expected)


def test_export_unfused_model(rng):
    """Standalone activations and BatchNorm-like layers, unfused, export too."""
    layers = [Conv2d("c", "x", rand(rng, (4, 3, 3, 3), 0.3), None), ScaleShift("s", "c", rand(rng, (4,)),
              rand(rng, (4,))), Activation("y", "s", "relu")]
    model = clnn.Model({"x": (1, 3, 7, 7)}, layers, ["y"], fuse=False)
    feeds = {"x": rand(rng, (1, 3, 7, 7))}
    proto = model.to_onnx()
    onnx.checker.check_model(proto, full_check=True)
    assert rel_err(run_ort(proto, feeds)[0], model.reference(feeds)[0]) < TOL


@pytest.mark.parametrize("opset", [10, NEWEST + 1])
def test_export_rejects_opsets(opset):
    model = clnn.Model({"x": (1, 3)}, [Activation("y", "x", "relu")], ["y"])
    with pytest.raises(clnn.ModelError, match=f"not {opset}"):
        model.to_onnx(opset=opset)


def test_export_rejects_4d_softmax_before_opset13():
    """Softmax over the channels of a 4-D tensor has no single-node form before opset 13."""
    model = clnn.Model({"x": (1, 3, 5, 7)}, [Softmax("y", "x")], ["y"])
    with pytest.raises(clnn.ModelError, match="'y'.*opset 13"):
        model.to_onnx(opset=12)


def test_save(tmp_path, devices, rng):
    model = clnn.models.lenet5()
    path = tmp_path / "lenet5.onnx"
    model.save(path)
    feeds = {"input": rand(rng, (1, 1, 28, 28))}
    assert_matches(run_clnn(str(path), feeds, devices), model.reference(feeds))


# types ---------------------------------------------------------------------------------

def _conv_with_weight_type(dtype, bias_dtype=np.float32):
    weight = np.ones((4, 3, 3, 3), dtype)
    return make_model([node("Conv", ["x", "w", "b"])], {"x": (1, 3, 5, 5)}, {"w": weight, "b": np.ones(4, bias_dtype)})


@pytest.mark.parametrize("proto, shape, expected", [
    (_conv_with_weight_type(np.float16), (1, 3, 5, 5), ["'Conv_y' (Conv)", "tensor(float16)", "tensor(float)"]),
    (_conv_with_weight_type(np.float32, np.float64), (1, 3, 5, 5),
     ["'Conv_y' (Conv)", "tensor(double)", "tensor(float)"]),
    (make_model([node("Add", ["x", "c"])], {"x": (2, 3)}, {"c": np.ones(3, np.int64)}), (2, 3),
     ["'Add_y' (Add)", "tensor(int64)", "tensor(float)"]),
], ids=["conv-float16-weight", "conv-float64-bias", "add-int64-constant"])
def test_type_inconsistent_models_are_refused(proto, shape, expected):
    """Before: a float16 weight on a float32 convolution loaded and ran;
    onnxruntime refuses such models, and so does clnn, naming the node and
    both types."""
    with pytest.raises(clnn.ModelError) as caught:
        clnn.load(proto.SerializeToString())
    for text in expected:
        assert text in str(caught.value)
    with pytest.raises(Exception, match="type"):  # onnxruntime agrees
        run_ort(proto, {"x": np.ones(shape, np.float32)})
