"""ONNX forms that torch's exporters (TorchScript-based and dynamo) write
for torchvision and timm models, built here with onnx.helper (CI has no
torch) and checked against onnxruntime: a constant concatenated before a
tensor (a ViT's class token), Gather of a constant index (the class token
taken back out, q, k and v taken from one tensor, dynamo's as_strided),
casts to float32, Swin's attention mask (ScatterND and Pow of constants,
folded), EdgeNeXt's positional encoding (CumSum, Sin, Cos of constants,
folded, into a Conv) and its Expand of a tensor; their refusals. benchmarks/torch_exports.py runs the real exports."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import clnn
from clnn.ops import Constant, Expand, Gather

from helpers import rand, rel_err
from test_onnx import TOL, assert_matches, check_import, make_model, node, run_clnn, run_ort
from test_onnx_fold import F, INTS, broken, check, model


def ints(*values):
    return np.array(values, np.int64)


def class_token(rng, opset, batch_varies=False):
    """A ViT's input: patches (N, T, D), a class token concatenated before
    them (Expand of a parameter, which folding makes a constant), position
    embeddings added, and the token taken back out (Gather of index 0)."""
    n, t, d = 2, 5, 3
    token = rand(rng, (n, 1, d)) if batch_varies else rand(rng, (1, 1, d))
    consts = {"cls": token, "shape": ints(n, 1, d), "pos": rand(rng, (1, t + 1, d)), "zero": np.array(0)}
    nodes = [node("Expand", ["cls", "shape"], ["tok"]), node("Concat", ["tok", "x"], ["cat"], axis=1),
             node("Add", ["cat", "pos"], ["emb"]), node("Gather", ["emb", "zero"], ["y"], axis=1)]
    return make_model(nodes, {"x": (n, t, d)}, consts, outputs=("y", "emb"), opset=opset), {"x": rand(rng, (n, t, d))}


def constant_channels(rng, opset):
    """A constant between computed tensors on the channel axis of a 4-D
    concat (the Conv writes in place, the constant is copied in)."""
    consts = {"w": rand(rng, (4, 3, 3, 3), 0.3), "c": rand(rng, (2, 2, 5, 3))}
    nodes = [node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]), node("Concat", ["a", "c", "x"], ["y"], axis=1)]
    return make_model(nodes, {"x": (2, 3, 5, 3)}, consts, opset=opset), {"x": rand(rng, (2, 3, 5, 3))}


def gather(shape, indices, axis):
    def build(rng, opset):
        proto = make_model([node("Gather", ["x", "i"], axis=axis)], {"x": shape}, {"i": indices}, opset=opset)
        return proto, {"x": rand(rng, shape)}
    return build


def qkv(rng, opset):
    """Attention's q, k and v as Gather of indices 0, 1, 2 on the first axis
    of one (3, N, heads, T, d) tensor, then q @ k^T and that times v."""
    n, h, t, d = 2, 2, 4, 3
    consts = {"shape": ints(n, t, 3, h, d), **{f"i{k}": np.array(k) for k in range(3)}}
    nodes = [node("Reshape", ["x", "shape"], ["r"]), node("Transpose", ["r"], ["p"], perm=[2, 0, 3, 1, 4]),
             *[node("Gather", ["p", f"i{k}"], [f"g{k}"], axis=0) for k in range(3)],
             node("Transpose", ["g1"], ["kt"], perm=[0, 1, 3, 2]), node("MatMul", ["g0", "kt"], ["s"]),
             node("Softmax", ["s"], ["a"], axis=-1), node("MatMul", ["a", "g2"])]
    return make_model(nodes, {"x": (n, t, 3 * h * d)}, consts, opset=opset), {"x": rand(rng, (n, t, 3 * h * d))}


def as_strided(rng, opset):
    """dynamo's as_strided of a (1, C, 1, 1) mean: the mean flattened, then
    Gather of indices 0..C-1 shaped (1, C, 1, 1), then a Transpose."""
    c = 6
    consts = {"flat": ints(-1), "i": np.arange(c).reshape(1, c, 1, 1)}
    nodes = [node("ReduceMean", ["x"], ["m"], axes=[2, 3]), node("Reshape", ["m", "flat"], ["f"]),
             node("Gather", ["f", "i"], ["g"], axis=0), node("Transpose", ["g"], perm=[0, 2, 3, 1])]
    return make_model(nodes, {"x": (1, c, 3, 5)}, consts, opset=opset), {"x": rand(rng, (1, c, 3, 5))}


def cast(rng, opset):
    """A float32 tensor cast to float32 (timm's EfficientViT attention), and
    a cast of a constant."""
    attrs = {"saturate": 1} if opset >= 19 else {}
    nodes = [node("Relu", ["x"], ["r"]), node("Cast", ["r"], ["c"], to=TensorProto.FLOAT, **attrs),
             node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT), node("Mul", ["c", "kf"])]
    consts = {"k": np.array([1, 2, 3], np.int64)}
    return make_model(nodes, {"x": (2, 4, 3)}, consts, opset=opset), {"x": rand(rng, (2, 4, 3))}


def swin_mask(rng, opset):
    """Swin's shifted-window attention mask as torch builds it from
    constants: zeros (ConstantOfShape), regions numbered by ScatterND, a
    Pow of constants (the scale), added to the attention scores."""
    consts = {"shape": ints(4, 4), "where": np.array([[0], [2]]), "rows": np.full((2, 4), 3.0, np.float32),
              "base": np.float32(2.0), "power": np.float32(-0.5)}
    nodes = [node("ConstantOfShape", ["shape"], ["z"], value=onnx.numpy_helper.from_array(np.zeros(1, np.float32))),
             node("ScatterND", ["z", "where", "rows"], ["mask"]), node("Pow", ["base", "power"], ["scale"]),
             node("Mul", ["x", "scale"], ["s"]), node("Add", ["s", "mask"], ["a"]), node("Softmax", ["a"], axis=-1)]
    return make_model(nodes, {"x": (2, 3, 4, 4)}, consts, opset=opset), {"x": rand(rng, (2, 3, 4, 4))}


def positional_encoding(rng, opset):
    """EdgeNeXt's positional encoding, computed from constants (CumSum of
    ones, Sin, Cos, Exp, Log: folded), projected by a Conv of that constant
    input and added to the features."""
    ones = onnx.numpy_helper.from_array(np.ones(1, np.float32))
    consts = {"shape": ints(1, 1, 3, 5), "axis": np.array(3), "w": rand(rng, (4, 3, 1, 1), 0.3)}
    nodes = [node("ConstantOfShape", ["shape"], ["o"], value=ones), node("CumSum", ["o", "axis"], ["p"]),
             node("CumSum", ["o", "axis"], ["q"], exclusive=1, reverse=1), node("Sin", ["p"], ["s"]),
             node("Cos", ["q"], ["c"]), node("Exp", ["s"], ["e"]), node("Log", ["p"], ["l"]),
             node("Concat", ["e", "c", "l"], ["enc"], axis=1), node("Conv", ["enc", "w"], ["proj"]),
             node("Add", ["x", "proj"])]
    return make_model(nodes, {"x": (2, 4, 3, 5)}, consts, opset=opset), {"x": rand(rng, (2, 4, 3, 5))}


def expand(shape, target):
    def build(rng, opset):
        proto = make_model([node("Relu", ["x"], ["r"]), node("Expand", ["r", "s"])], {"x": shape},
                           {"s": ints(*target)}, opset=opset)
        return proto, {"x": rand(rng, shape)}
    return build


CASES = {
    "class_token": class_token,
    "class_token_batch_varies": lambda rng, opset: class_token(rng, opset, batch_varies=True),
    "constant_channels": constant_channels,
    "gather_scalar_rows": gather((2, 3, 5, 4), np.array(-2), 2),
    "gather_scalar_batch": gather((3, 2, 5), np.array(1), 0),
    "gather_scalar_last": gather((2, 3, 5, 7), np.array(4), 3),
    "gather_stepping": gather((2, 7, 5), ints(1, 3, 5), 1),
    "gather_one_index": gather((2, 7, 5), ints(-1), 2),
    "gather_2d_indices": gather((2, 9, 5), np.array([[7, 5], [3, 1]]), 1),
    # indices that do not step evenly: a list in the index map
    "gather_unordered": gather((3, 7, 5), ints(0, 2, 1, 6), 1),
    "gather_repeated_negative": gather((2, 4, 6), ints(1, 1, -1, 0), 2),
    "gather_2d_unordered_rows": gather((2, 3, 9, 4), np.array([[8, 0], [2, 2], [5, 1]]), 2),
    "gather_unordered_batch": gather((4, 3, 5), ints(3, 0, 2), 0),
    "as_strided": as_strided,
    "qkv": qkv,
    "cast": cast,
    "swin_mask": swin_mask,
    "positional_encoding": positional_encoding,
    "expand_channels": expand((2, 1, 5), (2, 3, 5)),
    "expand_rank": expand((3, 1), (2, 1, 3, 4)),
    "expand_batch_rows": expand((1, 3, 1, 4), (2, 1, 5, 1)),
}
CASE_OPSETS = {"swin_mask": (13, 18), "positional_encoding": (11, 17), "gather_scalar_rows": (11, 13),
               "cast": (13, 19, 21), "class_token": (11, 17)}
IMPORT_CASES = [(name, opset) for name in CASES for opset in CASE_OPSETS.get(name, (17,))]


@pytest.mark.parametrize("name,opset", IMPORT_CASES, ids=[f"{n}-op{o}" for n, o in IMPORT_CASES])
def test_import_matches_onnxruntime(name, opset, devices, rng):
    proto, feeds = CASES[name](rng, opset=opset)
    check_import(proto, feeds, devices)


def test_class_token_is_a_constant_layer(devices, rng):
    proto, feeds = class_token(rng, 17)
    model = check_import(proto, feeds, devices)
    assert [layer.op for layer in model.layers][:2] == ["Constant", "Concat"]


# errors -------------------------------------------------------------------------------------

def one_node(op, inputs=("x",), consts=None, shape=(2, 4, 6), opset=17, **attrs):
    return make_model([helper.make_node(op, list(inputs), ["y"], name="n1", **attrs)], {"x": shape}, consts,
                      opset=opset)


ERRORS = {
    "gather_empty": (one_node("Gather", ("x", "i"), {"i": np.zeros(0, np.int64)}, axis=1), "empty"),
    "gather_out_of_range": (one_node("Gather", ("x", "i"), {"i": np.array(4)}, axis=1), "out of range"),
    "gather_computed_indices": (make_model([node("Relu", ["x"], ["r"]),
                                            helper.make_node("Gather", ["x", "r"], ["y"], name="n1")],
                                           {"x": (2, 4)}), "does not take"),
    "cast_to_int": (one_node("Cast", to=TensorProto.INT64), "int64"),
    "expand_mismatch": (one_node("Expand", ("x", "s"), {"s": ints(3, 4, 6)}), "cannot expand [2, 4, 6] to [3, 4, 6]"),
    "concat_int_constant": (one_node("Concat", ("x", "c"), {"c": np.ones((2, 1, 6), np.int64)}, axis=1), "int64"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_import_errors(name):
    proto, message = ERRORS[name]
    with pytest.raises(clnn.ModelError) as caught:
        clnn.load(proto.SerializeToString())
    assert "'n1'" in str(caught.value)
    assert message in str(caught.value)


# folding of the ops that torch computes constants with --------------------------------------

FOLDS = {
    "pow_float": ("Pow", [np.abs(F), np.float32(0.5)], {}, 17),
    "pow_int_exponent": ("Pow", [F, ints(2, 3, 1)], {}, 15),
    "pow_int": ("Pow", [INTS, np.int64(3)], {}, 17),
    "scatter_nd_rows": ("ScatterND", [np.zeros((4, 3), np.float32), np.array([[3], [1]]), F], {}, 13),
    "scatter_nd_elements": ("ScatterND", [INTS, np.array([[1, 2], [0, 0]]), ints(40, 50)], {}, 11),
    "scatter_nd_add": ("ScatterND", [F, np.array([[1], [1]]), F], {"reduction": "add"}, 16),
    "cumsum": ("CumSum", [F, np.int64(1)], {}, 14),
    "clip": ("Clip", [INTS, np.int64(-3), np.int64(6)], {}, 13),
    "clip_max_only": ("Clip", [F, None, np.float32(1)], {}, 11),
    "cumsum_exclusive_reverse": ("CumSum", [INTS, np.int32(-2)], {"exclusive": 1, "reverse": 1}, 11),
    "scatter_nd_max": ("ScatterND", [F, np.array([[0, 1]]), np.float32([9.0])], {"reduction": "max"}, 18),
}


@pytest.mark.parametrize("name", list(FOLDS))
def test_op_folds_like_onnxruntime(name):
    op, values, attrs, opset = FOLDS[name]
    inputs = [f"in{i}" if v is not None else "" for i, v in enumerate(values)]
    consts = {n: v for n, v in zip(inputs, values) if n}
    check(model([node(op, inputs, ["y"], **attrs)], consts=consts, opset=opset), {}, ["Constant"])


FOLD_ERRORS = {
    "pow_negative_int": (broken("Pow", [INTS, np.int64(-1)]), "negative power"),
    "scatter_nd_out_of_range": (broken("ScatterND", [F, np.array([[2]]), F[:1]]), "out of range"),
    "scatter_nd_updates_shape": (broken("ScatterND", [F, np.array([[1]]), F]), "do not fit"),
}


@pytest.mark.parametrize("name", list(FOLD_ERRORS))
def test_fold_errors(name):
    proto, text = FOLD_ERRORS[name]
    with pytest.raises(clnn.ModelError) as caught:
        clnn.load(proto.SerializeToString())
    assert str(caught.value).startswith("node 'bad' (") and text in str(caught.value)


# export -----------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", (11, 17))
def test_export_round_trip(opset, devices, rng):
    layers = [Constant("c", rand(rng, (2, 1, 4))), clnn.ops.Concat("cat", ["c", "x"], 1),
              Gather("g", "cat", 1, 2, drop=True), Gather("e", "g", 1, (3, 1, 1, 0)), Expand("y", "e", (3, 1, 1))]
    model = clnn.Model({"x": (2, 3, 4)}, layers, ["y", "cat"])
    feeds = {"x": rand(rng, (2, 3, 4))}
    proto = model.to_onnx(opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    expected = run_ort(proto, feeds)
    assert all(rel_err(e, r) < TOL for e, r in zip(expected, model.reference(feeds)))
    assert_matches(run_clnn(model, feeds, devices), expected)
    assert_matches(run_clnn(clnn.load(proto), feeds, devices), expected)
