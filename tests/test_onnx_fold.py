"""Shape-subgraph folding (clnn.onnx_fold) against onnxruntime.

Each case is a small ONNX graph; the folded graph and the original must give
onnxruntime the same outputs, and the nodes that should fold must be gone.
Malformed nodes must raise ModelError naming the node, its op and the fault.
"""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import clnn
from clnn.onnx_fold import MAX_ELEMENTS, fold

INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def model(nodes, inputs=None, consts=None, outputs=("y",), opset=17):
    """``inputs`` {name: shape (None entries symbolic)}, float32;
    ``consts`` {name: array} as initializers."""
    graph = helper.make_graph(
        nodes, "fold",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in (inputs or {}).items()],
        [helper.make_value_info(n, helper.TypeProto()) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (consts or {}).items()])
    # onnxruntime reads IR versions up to 10 on every machine the tests run on
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=min(
        10, helper.find_min_ir_version_for([helper.make_opsetid("", opset)])))


def ort(proto, feeds):
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check(proto, feeds, left=None):
    """Fold ``proto`` for the feeds' shapes: same outputs in onnxruntime, and
    ``left`` (op types) are the nodes that remain."""
    before = proto.SerializeToString()
    folded = fold(proto, {name: value.shape for name, value in feeds.items()})
    assert proto.SerializeToString() == before, "the model given is left as it was"
    for expected, actual in zip(ort(proto, feeds), ort(folded, feeds)):
        assert expected.dtype == actual.dtype
        np.testing.assert_array_equal(actual, expected)
    if left is not None:
        assert [n.op_type for n in folded.graph.node] == list(left)
    return folded


def node(op, inputs, outputs=("y",), name=None, **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=name or f"n_{outputs[0]}", **attrs)


def const(name, value):
    return node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def i64(*values):
    return np.array(values, np.int64)


# the subgraphs exporters write ----------------------------------------------------------

@pytest.mark.parametrize("opset", [11, 13, 21])
@pytest.mark.parametrize("batch", [1, 5])
def test_torch_reshape_subgraph(opset, batch, rng):
    """x.view(x.size(0), -1) as torch.onnx writes it, over a symbolic batch."""
    axes = {"axes": [0]} if opset < 13 else {}
    unsqueeze_inputs = ["b"] if opset < 13 else ["b", "zero_axes"]
    nodes = [node("Shape", ["x"], ["s"]), const("zero", np.array(0, np.int64)),
             node("Gather", ["s", "zero"], ["b"], axis=0),
             node("Unsqueeze", unsqueeze_inputs, ["bu"], **axes), const("minus1", i64(-1)),
             node("Concat", ["bu", "minus1"], ["target"], axis=0), node("Reshape", ["x", "target"], ["r"]),
             node("Relu", ["r"], ["y"])]
    consts = {} if opset < 13 else {"zero_axes": i64(0)}
    proto = model(nodes, {"x": ("N", 3, 4, 5)}, consts, opset=opset)
    folded = check(proto, {"x": rng.standard_normal((batch, 3, 4, 5), np.float32)}, ["Reshape", "Relu"])
    target = {t.name: numpy_helper.to_array(t) for t in folded.graph.initializer}["target"]
    assert target.tolist() == [batch, -1]
    assert folded.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"   # inputs untouched


def test_resize_sizes_from_shape(rng):
    """Upsampling by 2 with sizes = Cast(Cast(Slice(Shape(x))) * 2)."""
    nodes = [node("Shape", ["x"], ["s"]), node("Slice", ["s", "two", "four"], ["hw"]),
             node("Cast", ["hw"], ["hwf"], to=TensorProto.FLOAT), node("Mul", ["hwf", "scale"], ["hw2f"]),
             node("Cast", ["hw2f"], ["hw2"], to=TensorProto.INT64), node("Slice", ["s", "zero", "two"], ["nc"]),
             node("Concat", ["nc", "hw2"], ["sizes"], axis=0),
             node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest")]
    consts = {"two": i64(2), "four": i64(4), "zero": i64(0), "scale": np.array([2.0], np.float32)}
    proto = model(nodes, {"x": (2, 3, 4, 5)}, consts, opset=13)
    folded = check(proto, {"x": rng.standard_normal((2, 3, 4, 5), np.float32)}, ["Resize"])
    assert sorted(t.name for t in folded.graph.initializer) == ["sizes"]


@pytest.mark.parametrize("rank_is_4", [True, False])
def test_if_with_constant_condition(rank_is_4, rng):
    """If (rank == 4) flatten else relu, with the taken branch inlined."""
    then_graph = helper.make_graph(
        [node("Flatten", ["x"], ["flat"], name="flatten", axis=1), node("Relu", ["flat"], ["t"], name="relu")],
        "then", [], [helper.make_value_info("t", helper.TypeProto())])
    else_graph = helper.make_graph([node("Sigmoid", ["x"], ["e"], name="sigmoid")], "else", [],
                                   [helper.make_value_info("e", helper.TypeProto())])
    nodes = [node("Shape", ["x"], ["s"]), node("Size", ["s"], ["rank"]),
             node("Equal", ["rank", "four" if rank_is_4 else "three"], ["cond"]),
             node("If", ["cond"], ["y"], name="branch", then_branch=then_graph, else_branch=else_graph)]
    consts = {"four": np.array(4, np.int64), "three": np.array(3, np.int64)}
    proto = model(nodes, {"x": (2, 3, 4, 5)}, consts)
    left = ["Flatten", "Relu", "Identity"] if rank_is_4 else ["Sigmoid", "Identity"]
    check(proto, {"x": rng.standard_normal((2, 3, 4, 5), np.float32)}, left)


def test_if_branches_defining_one_name(rng):
    """Both branches define "r" (allowed: only one runs); the inlined one keeps it."""
    branches = {f"{kind}_branch": helper.make_graph([node(op, ["x"], ["r"], name=kind)], kind, [],
                                                     [helper.make_value_info("r", helper.TypeProto())])
                for kind, op in (("then", "Neg"), ("else", "Abs"))}
    nodes = [const("cond", np.array(False)), node("If", ["cond"], ["y"], name="branch", **branches)]
    folded = check(model(nodes, {"x": (2, 3)}), {"x": rng.standard_normal((2, 3), np.float32)}, ["Abs", "Identity"])
    assert [n.output[0] for n in folded.graph.node] == ["r", "y"]


def test_shapes_known_only_after_a_fold(rng):
    """Reshape's target folds first; only then is its output's shape static
    for the Shape after it."""
    nodes = [node("Shape", ["x"], ["s"]), node("ReduceProd", ["s"], ["n"], keepdims=1),
             node("Reshape", ["x", "n"], ["flat"]), node("Shape", ["flat"], ["s2"]),
             node("Concat", ["s2", "one"], ["target"], axis=0), node("Reshape", ["flat", "target"], ["y"])]
    proto = model(nodes, {"x": ("N", 3, 4)}, {"one": i64(1)}, opset=13)
    check(proto, {"x": rng.standard_normal((2, 3, 4), np.float32)}, ["Reshape", "Reshape"])


def test_computed_float_values_are_never_folded(rng):
    """Only shapes of computed tensors are read: Relu(x), a Gather of x's
    values and an Add of x stay."""
    nodes = [node("Relu", ["x"], ["r"]), node("Gather", ["r", "idx"], ["g"], axis=1),
             node("Add", ["g", "c"], ["y"]), node("Shape", ["r"], ["s"]), node("Cast", ["s"], ["z"], to=1)]
    proto = model(nodes, {"x": (2, 3)}, {"idx": i64(0, 2), "c": np.float32(1.5)}, outputs=("y", "z"))
    folded = check(proto, {"x": rng.standard_normal((2, 3), np.float32)}, ["Constant", "Relu", "Gather", "Add"])
    assert folded.graph.node[0].output[0] == "z"


def test_without_shape_inference(monkeypatch, rng):
    """Where ONNX shape inference fails, the graph inputs' shapes and the
    constants still fold."""
    def fail(*args, **kwargs):
        raise onnx.shape_inference.InferenceError("cannot infer")
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", fail)
    nodes = [node("Shape", ["x"], ["s"]), node("Slice", ["s", "zero", "one"], ["n"]),
             node("Concat", ["n", "minus1"], ["target"], axis=0), node("Reshape", ["x", "target"], ["r"]),
             node("Shape", ["r"], ["s2"]), node("Cast", ["s2"], ["z"], to=1), node("Relu", ["r"], ["y"])]
    proto = model(nodes, {"x": ("N", 3, 4)}, {"zero": i64(0), "one": i64(1), "minus1": i64(-1)}, outputs=("y", "z"))
    check(proto, {"x": rng.standard_normal((2, 3, 4), np.float32)}, ["Reshape", "Shape", "Cast", "Relu"])


def test_other_domains_stay(rng):
    nodes = [node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["y"], domain="com.example", to=1)]
    proto = model(nodes, {"x": (2, 3)})
    proto.opset_import.append(helper.make_opsetid("com.example", 1))
    folded = fold(proto, {"x": (2, 3)})
    assert [(n.op_type, n.domain) for n in folded.graph.node] == [("Cast", "com.example")]
    assert numpy_helper.to_array(folded.graph.initializer[0]).tolist() == [2, 3]


def test_dead_nodes_and_initializers_removed(rng):
    nodes = [node("Shape", ["x"], ["s"]), node("Cast", ["s"], ["unused"], to=1), node("Relu", ["x"], ["y"])]
    proto = model(nodes, {"x": (2, 3)}, {"spare": np.ones(3, np.float32)})
    folded = check(proto, {"x": rng.standard_normal((2, 3), np.float32)}, ["Relu"])
    assert not folded.graph.initializer


def test_data_dependent_shapes_stay(rng):
    nodes = [node("NonZero", ["x"], ["nz"]), node("Shape", ["nz"], ["s"]), node("Cast", ["s"], ["y"], to=1)]
    proto = model(nodes, {"x": (2, 3)})
    check(proto, {"x": rng.standard_normal((2, 3), np.float32)}, ["NonZero", "Shape", "Cast"])


# one op at a time: the folded value against onnxruntime's -----------------------------

F = np.array([[1.5, -2.5, 3.0], [-0.5, 4.25, -7.75]], np.float32)
INTS = np.array([[7, -7, 3], [-9, 12, 5]], np.int64)
OPS = {
    "gather_negative": ("Gather", [INTS, i64(-1, 0)], {"axis": 1}, 17),
    "gather_scalar": ("Gather", [INTS, np.array(1, np.int64)], {}, 17),
    "slice_axes_steps": ("Slice", [INTS, i64(-1, 0), i64(INT64_MIN, 2), i64(1, 0), i64(-1, 1)], {}, 17),
    "slice_to_end": ("Slice", [INTS, i64(1), i64(INT64_MAX)], {}, 17),
    "slice_reverse_from_past_end": ("Slice", [INTS, i64(10), i64(-10), i64(1), i64(-2)], {}, 17),
    "concat": ("Concat", [INTS, INTS], {"axis": -1}, 17),
    "squeeze_attr": ("Squeeze", [INTS.reshape(2, 1, 3, 1)], {"axes": [1, -1]}, 11),
    "squeeze_all": ("Squeeze", [INTS.reshape(2, 1, 3, 1)], {}, 13),
    "squeeze_input": ("Squeeze", [INTS.reshape(2, 1, 3, 1), i64(-1)], {}, 13),
    "unsqueeze_attr": ("Unsqueeze", [INTS], {"axes": [0, -1]}, 11),
    "unsqueeze_input": ("Unsqueeze", [INTS, i64(3, 1)], {}, 21),
    "cast_float_to_int": ("Cast", [F], {"to": TensorProto.INT64}, 17),
    "cast_int_to_float": ("Cast", [INTS], {"to": TensorProto.FLOAT}, 11),
    "cast_to_bool": ("Cast", [F], {"to": TensorProto.BOOL}, 21),
    "cast_saturate": ("Cast", [F], {"to": TensorProto.INT32, "saturate": 1}, 19),
    "constant_of_shape": ("ConstantOfShape", [i64(2, 3)], {"value": numpy_helper.from_array(i64(7))}, 17),
    "constant_of_shape_default": ("ConstantOfShape", [i64(3)], {}, 11),
    "range_int": ("Range", [np.int64(10), np.int64(-3), np.int64(-4)], {}, 17),
    "range_float": ("Range", [np.float32(0.5), np.float32(3.0), np.float32(0.75)], {}, 17),
    "equal": ("Equal", [INTS, i64(7, -7, 0)], {}, 17),
    "where": ("Where", [np.array([True, False, True]), INTS, i64(0)], {}, 17),
    "add": ("Add", [INTS, i64(1, 2, 3)], {}, 17), "sub": ("Sub", [F, np.float32(0.5)], {}, 13),
    "mul": ("Mul", [INTS, np.int64(-3)], {}, 14),
    "div_int": ("Div", [INTS, i64(2, 2, -2)], {}, 17), "div_float": ("Div", [F, np.float32(3)], {}, 17),
    "mod_int": ("Mod", [INTS, i64(4, 4, -4)], {}, 17), "mod_fmod": ("Mod", [INTS, i64(4, 4, -4)], {"fmod": 1}, 17),
    "mod_float": ("Mod", [F, np.float32(2)], {"fmod": 1}, 17),
    "neg": ("Neg", [INTS], {}, 17), "abs": ("Abs", [F], {}, 17), "floor": ("Floor", [F], {}, 17),
    "ceil": ("Ceil", [F], {}, 17), "sqrt": ("Sqrt", [np.abs(F)], {}, 17), "reciprocal": ("Reciprocal", [F], {}, 17),
    "min": ("Min", [INTS, i64(0), i64(3, 4, 5)], {}, 17), "max": ("Max", [F, np.float32(0)], {}, 17),
    "not": ("Not", [np.array([True, False])], {}, 17), "and": ("And", [INTS > 0, INTS < 10], {}, 17),
    "or": ("Or", [INTS > 0, INTS < -8], {}, 17), "greater": ("Greater", [INTS, np.int64(3)], {}, 17),
    "less": ("Less", [F, np.float32(0)], {}, 17),
    "reduce_prod_attr": ("ReduceProd", [INTS], {"axes": [1], "keepdims": 0}, 13),
    "reduce_prod_input": ("ReduceProd", [INTS, i64(-1)], {}, 18),
    "reduce_prod_all": ("ReduceProd", [INTS], {"keepdims": 0}, 18),
    "reduce_sum_attr": ("ReduceSum", [INTS], {"axes": [0]}, 11),
    "reduce_sum_input": ("ReduceSum", [F, i64(0, 1)], {"keepdims": 0}, 13),
    "reduce_sum_noop": ("ReduceSum", [F, np.zeros(0, np.int64)], {"noop_with_empty_axes": 1}, 13),
    "expand": ("Expand", [INTS.reshape(2, 1, 3), i64(3, 1, 4, 1)], {}, 17),
    "reshape_zero_minus1": ("Reshape", [INTS, i64(0, -1, 1)], {}, 17),
    "reshape_allowzero": ("Reshape", [INTS, i64(3, 2)], {"allowzero": 1}, 17),
    "transpose_default": ("Transpose", [INTS], {}, 17),
    "transpose_perm": ("Transpose", [INTS.reshape(2, 3, 1)], {"perm": [2, 0, 1]}, 21),
    "flatten_0": ("Flatten", [INTS.reshape(2, 3, 1)], {"axis": 0}, 17),
    "flatten_negative": ("Flatten", [INTS.reshape(2, 3, 1)], {"axis": -1}, 13),
    "split_attr": ("Split", [INTS], {"axis": 1, "split": [1, 2]}, 11),
    "split_input": ("Split", [INTS, i64(2, 1)], {"axis": -1}, 13),
    "split_num_outputs": ("Split", [i64(1, 2, 3, 4, 5)], {"num_outputs": 2}, 18),
    "tile": ("Tile", [INTS, i64(2, 1)], {}, 17),
    "shape_start_end": ("Shape", [INTS.reshape(2, 3, 1)], {"start": -2, "end": 10}, 15),
    "size": ("Size", [INTS], {}, 17), "identity": ("Identity", [INTS], {}, 17),
}


@pytest.mark.parametrize("name", list(OPS))
def test_op_folds_like_onnxruntime(name):
    op, values, attrs, opset = OPS[name]
    inputs = [f"in{i}" for i in range(len(values))]
    outputs = [f"y{i}" for i in range(2 if op == "Split" else 1)]
    proto = model([node(op, inputs, outputs, name="n1", **attrs)], consts=dict(zip(inputs, values)),
                  outputs=outputs, opset=opset)
    folded = check(proto, {}, ["Constant"] * len(outputs))
    assert not folded.graph.initializer


def test_constant_nodes_become_initializers(rng):
    nodes = [node("Constant", [], ["c"], value_ints=[1, -1]), node("Reshape", ["x", "c"], ["y"])]
    folded = check(model(nodes, {"x": (2, 3)}), {"x": rng.standard_normal((2, 3), np.float32)}, ["Reshape"])
    assert [t.name for t in folded.graph.initializer] == ["c"]


def test_unfoldable_types_stay(rng):
    """A Cast to bfloat16 is left to the importer (which refuses it by name)."""
    nodes = [node("Cast", ["c"], ["b"], to=TensorProto.BFLOAT16), node("Cast", ["b"], ["f"], to=1),
             node("Add", ["x", "f"], ["y"])]
    check(model(nodes, {"x": (3,)}, {"c": np.float32([1, 2, 3])}), {"x": rng.standard_normal(3, np.float32)},
          ["Cast", "Cast", "Add"])


# malformed nodes -----------------------------------------------------------------------

def broken(op, values, attrs=None, opset=17, outputs=("y",), inputs=None):
    names = inputs or [f"in{i}" for i in range(len(values))]
    return model([node(op, names, outputs, name="bad", **(attrs or {}))],
                 consts={n: v for n, v in zip(names, values) if n}, outputs=outputs, opset=opset)


BROKEN = {
    "gather_one_input": (broken("Gather", [INTS]), "1 inputs; Gather takes 2"),
    "gather_out_of_range": (broken("Gather", [INTS, i64(3)], {"axis": 1}), "out of range"),
    "gather_float_indices": (broken("Gather", [INTS, np.float32([0])]), "type float"),
    "gather_bad_axis": (broken("Gather", [INTS, i64(0)], {"axis": 2}), "axis 2"),
    "unsqueeze_no_axes": (broken("Unsqueeze", [INTS], opset=13), "1 inputs"),
    "unsqueeze_axes_attr_at_13": (broken("Unsqueeze", [INTS, i64(0)], {"axes": [0]}, opset=13),
                                  "no attribute 'axes'"),
    "unknown_attribute": (broken("Concat", [INTS, INTS], {"axis": 0, "frobnicate": 1}), "'frobnicate'"),
    "attribute_type": (broken("Concat", [INTS, INTS], {"axis": 0.5}), "'axis' is FLOAT"),
    "missing_attribute": (broken("Concat", [INTS, INTS]), "'axis' is required"),
    "concat_shapes": (broken("Concat", [INTS, INTS.T], {"axis": 0}), "dimension"),
    "mixed_types": (broken("Add", [INTS, F]), "int64 and float"),
    "reshape_size": (broken("Reshape", [INTS, i64(4, -1)]), "cannot reshape [2, 3] to [4, -1]"),
    "reshape_two_unknowns": (broken("Reshape", [INTS, i64(-1, -1)]), "more than one -1"),
    "slice_zero_step": (broken("Slice", [INTS, i64(0), i64(1), i64(0), i64(0)]), "steps must not be 0"),
    "slice_lengths": (broken("Slice", [INTS, i64(0, 0), i64(1)]), "as many"),
    "squeeze_size_3": (broken("Squeeze", [INTS, i64(1)], opset=13), "axis 1 has size 3"),
    "div_by_zero": (broken("Div", [INTS, np.int64(0)]), "division by zero"),
    "range_zero_delta": (broken("Range", [np.int64(0), np.int64(3), np.int64(0)]), "delta must not be 0"),
    "range_not_scalar": (broken("Range", [i64(0, 1), np.int64(3), np.int64(1)]), "start must be a scalar"),
    "huge_constant": (broken("ConstantOfShape", [i64(1 << 20, 1 << 20)]), f"at most {MAX_ELEMENTS}"),
    "negative_shape": (broken("ConstantOfShape", [i64(2, -1)]), "negative"),
    "broadcast": (broken("Mul", [INTS, i64(1, 2)]), "do not broadcast"),
    "expand_shape": (broken("Expand", [INTS, i64(4, 1)]), "cannot expand [2, 3] to [4, 1]"),
    "shape_start_before_15": (broken("Shape", [INTS], {"start": 1}, opset=13), "no attribute 'start' in opset 13"),
    "split_sizes": (broken("Split", [INTS, i64(1, 1)], {"axis": 1}, outputs=("a", "b")), "does not cut"),
    "split_uneven": (broken("Split", [INTS], {"axis": 1}, opset=13, outputs=("a", "b")), "equal parts"),
    "transpose_perm": (broken("Transpose", [INTS], {"perm": [0, 0]}), "not a permutation"),
    "constant_two_values": (model([node("Constant", [], ["y"], name="bad", value_int=1, value_float=2.0)]),
                            "exactly one"),
    "mod_float_fmod0": (broken("Mod", [F, F]), "fmod=0"),
    "op_not_in_opset": (broken("GreaterOrEqual", [INTS, INTS], opset=11), "no GreaterOrEqual in opset 11"),
    "required_input_empty": (broken("Slice", [INTS, None, i64(1)], inputs=["in0", "", "in2"]), "input 1"),
    "if_outputs": (model([const("c", np.array(True)), node("If", ["c"], ["y", "z"], name="bad",
                                                          then_branch=helper.make_graph([], "t", [], []),
                                                          else_branch=helper.make_graph([], "e", [], []))],
                         outputs=("y", "z")), "0 outputs"),
    "if_not_single_assignment": (model([node("Relu", ["x"], ["r"]), const("c", np.array(True)),
                                        node("If", ["c"], ["y"], name="bad",
                                             then_branch=helper.make_graph([node("Neg", ["x"], ["r"])], "t", [], [
                                                 helper.make_value_info("r", helper.TypeProto())]),
                                             else_branch=helper.make_graph([], "e", [], []))], {"x": (2,)}),
                                 "defines 'r', which is defined outside"),
    "if_condition_shape": (model([const("c", np.array([True, False])),
                                  node("If", ["c"], ["y"], name="bad", then_branch=helper.make_graph([], "t", [], []),
                                       else_branch=helper.make_graph([], "e", [], []))]), "one value"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_malformed_nodes(name):
    proto, text = BROKEN[name]
    with pytest.raises(clnn.ModelError) as caught:
        fold(proto, {})
    message = str(caught.value)
    assert message.startswith("node 'bad' (") and text in message, message
    assert message.count("'bad'") == 1
