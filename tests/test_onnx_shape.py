"""ONNX import and export of the shape, reduction and normalisation ops
against onnxruntime, in the opsets where their attributes and inputs
changed; the blocks torch exports them in (ShuffleNet's channel shuffle,
ConvNeXt's LayerNorm between transposes, YOLOv2's reorg, dynamo's global
pool); several outputs (Split); refusals."""

import copy

import numpy as np
import onnx
import pytest
from onnx import helper

import clnn
from clnn.ops import (Concat, DepthToSpace, InstanceNorm, LayerNorm, Pad, Reduce, Reshape, Slice, Softmax,
                      SpaceToDepth, Transpose)

from helpers import rand, rel_err
from test_onnx import TOL, assert_matches, check_import, make_model, node, run_clnn, run_ort

BIG = 2 ** 63 - 1


def graph(nodes, inputs, consts=None, outputs=("y",)):
    """A builder of a model of ``nodes`` (or a function of opset that
    returns them) over random inputs {name: shape} and constants."""
    def build(rng, opset):
        made = nodes(opset) if callable(nodes) else nodes
        values = {k: v(rng) if callable(v) else v for k, v in (consts or {}).items()}
        proto = make_model(made, inputs, values, outputs=outputs, opset=opset)
        return proto, {k: rand(rng, s) for k, s in inputs.items()}
    return build


def ints(*values):
    return np.array(values, np.int64)


def one(op, shape, inputs=("x",), consts=None, **attrs):
    return graph([node(op, inputs, **attrs)], {"x": shape}, consts)


def axes_form(op, shape, axes, opset_from, consts=None, inputs=("x",), **attrs):
    """``op`` with ``axes`` as an attribute before ``opset_from`` and as an
    input (after ``inputs``) from it on."""
    def nodes(opset):
        if opset < opset_from:
            return [node(op, inputs, axes=list(axes), **attrs)]
        return [node(op, [*inputs, "axes"], **attrs)]
    return graph(nodes, {"x": shape}, {"axes": ints(*axes), **(consts or {})})


def split(shape, sizes=None, axis=0, used=None, num_outputs=None, parts=3):
    """Split into len(sizes) (or num_outputs, or ``parts`` equal) parts, the
    ones in ``used`` read by a Relu each (outputs y0, y1, ...), the rest
    unused."""
    parts = num_outputs or (len(sizes) if sizes is not None else parts)
    used = range(parts) if used is None else used

    def nodes(opset):
        outs = [f"s{k}" for k in range(parts)]
        attrs = {"axis": axis}
        inputs = ["x"]
        if sizes is not None and opset < 13:
            attrs["split"] = list(sizes)
        elif sizes is not None:
            inputs.append("sizes")
        if num_outputs:
            attrs["num_outputs"] = num_outputs
        return [node("Split", inputs, outs, **attrs)] + [node("Relu", [f"s{k}"], [f"y{k}"]) for k in used]
    consts = {"sizes": ints(*sizes)} if sizes is not None else {}
    return graph(nodes, {"x": shape}, consts, outputs=tuple(f"y{k}" for k in used))


def softmax(op, shape, axis=None):
    return one(op, shape, **({} if axis is None else {"axis": axis}))


def pad(shape, pads, mode="constant", value=None, axes=None):
    consts = {"pads": ints(*pads)}
    inputs = ["x", "pads"]
    if value is not None:
        consts["value"] = np.array(value, np.float32)
    inputs.append("value" if value is not None else "")
    if axes is not None:
        consts["axes"] = ints(*axes)
        inputs.append("axes")
    while inputs[-1] == "":
        inputs.pop()
    return graph([node("Pad", inputs, mode=mode)], {"x": shape}, consts)


def layer_norm(shape, axis=-1, bias=True, scale_shape=None):
    normalised = shape[axis:]
    consts = {"s": lambda rng: rand(rng, scale_shape or normalised)}
    if bias:
        consts["b"] = lambda rng: rand(rng, normalised)
    return graph([node("LayerNormalization", ["x", "s", "b"] if bias else ["x", "s"], axis=axis, epsilon=1e-3)],
                 {"x": shape}, consts)


def channel_shuffle(rng, opset):
    """Conv, then ShuffleNet's shuffle of 2 groups as torch exports it, then
    a Conv reading the shuffled channels."""
    consts = {"w1": rand(rng, (6, 3, 3, 3), 0.3), "w2": rand(rng, (4, 6, 1, 1), 0.3),
              "s5": ints(2, 2, 3, 5, 7), "s4": ints(2, 6, 5, 7)}
    nodes = [node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]), node("Reshape", ["c", "s5"], ["r"]),
             node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]), node("Reshape", ["t", "s4"], ["s"]),
             node("Conv", ["s", "w2"])]
    return make_model(nodes, {"x": (2, 3, 5, 7)}, consts, opset=opset), {"x": rand(rng, (2, 3, 5, 7))}


def convnext_block(rng, opset):
    """Depthwise conv, NCHW -> NHWC, LayerNorm over channels, back, add."""
    c = 8
    consts = {"w": rand(rng, (c, 1, 7, 7), 0.3), "b": rand(rng, (c,)), "g": rand(rng, (c,)), "beta": rand(rng, (c,))}
    nodes = [node("Conv", ["x", "w", "b"], ["d"], group=c, pads=[3, 3, 3, 3]),
             node("Transpose", ["d"], ["t"], perm=[0, 2, 3, 1]),
             node("LayerNormalization", ["t", "g", "beta"], ["n"], epsilon=1e-6),
             node("Transpose", ["n"], ["u"], perm=[0, 3, 1, 2]), node("Add", ["x", "u"])]
    return make_model(nodes, {"x": (2, c, 7, 5)}, consts, opset=opset), {"x": rand(rng, (2, c, 7, 5))}


def yolo_reorg(rng, opset):
    """YOLOv2's passthrough: a fine map through SpaceToDepth(2), concatenated
    on channels with a coarse conv of it."""
    consts = {"w": rand(rng, (5, 3, 3, 3), 0.3)}
    nodes = [node("SpaceToDepth", ["x"], ["fine"], blocksize=2),
             node("Conv", ["x", "w"], ["coarse"], strides=[2, 2], pads=[1, 1, 1, 1]),
             node("Concat", ["fine", "coarse"], ["cat"], axis=1), node("LeakyRelu", ["cat"], alpha=0.1)]
    return make_model(nodes, {"x": (1, 3, 6, 10)}, consts, opset=opset), {"x": rand(rng, (1, 3, 6, 10))}


def global_pool_head(rng, opset):
    """The dynamo exporter's global average pool: ReduceMean over H, W, then
    flatten and a Gemm."""
    mean = (node("ReduceMean", ["x"], ["m"], axes=[-1, -2], keepdims=1) if opset < 18
            else node("ReduceMean", ["x", "hw"], ["m"], keepdims=1))
    consts = {"hw": ints(-1, -2), "fc": rand(rng, (4, 7), 0.3)} if opset >= 18 else {"fc": rand(rng, (4, 7), 0.3)}
    nodes = [mean, node("Flatten", ["m"], ["f"]), node("Gemm", ["f", "fc"], transB=1)]
    return make_model(nodes, {"x": (3, 7, 9, 11)}, consts, opset=opset), {"x": rand(rng, (3, 7, 9, 11))}


def split_output_is_graph_output(rng, opset):
    nodes = [node("Split", ["x"], ["a", "b"], axis=1), node("Relu", ["b"], ["y"])]
    return make_model(nodes, {"x": (2, 6, 3)}, outputs=("a", "y"), opset=opset), {"x": rand(rng, (2, 6, 3))}


def positive(build):
    """The same model fed |x| + 0.1 (for ReduceLogSum)."""
    def positive_build(rng, opset):
        proto, feeds = build(rng, opset)
        return proto, {k: np.abs(v) + 0.1 for k, v in feeds.items()}
    return positive_build


REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceSumSquare", "ReduceLogSumExp"]
CASES = {
    "transpose_nhwc": one("Transpose", (2, 3, 5, 7), perm=[0, 2, 3, 1]),
    "transpose_default": one("Transpose", (2, 3, 5)),
    "transpose_6d": one("Transpose", (2, 1, 3, 2, 3, 2), perm=[3, 5, 0, 2, 4, 1]),
    "channel_shuffle": channel_shuffle,
    "depth_to_space": one("DepthToSpace", (2, 8, 3, 5), blocksize=2),
    "depth_to_space_crd": one("DepthToSpace", (1, 18, 3, 2), blocksize=3, mode="CRD"),
    "space_to_depth": one("SpaceToDepth", (2, 3, 6, 4), blocksize=2),
    "yolo_reorg": yolo_reorg,
    "slice_all_inputs": one("Slice", (3, 7, 13, 6), ("x", "s", "e", "a", "t"),
                            {"s": ints(-1, 1, BIG), "e": ints(-BIG, 100, 0), "a": ints(2, 3, 1),
                             "t": ints(-3, 2, -2)}),
    "slice_starts_ends": one("Slice", (5, 4, 3), ("x", "s", "e"), {"s": ints(1, -3), "e": ints(-1, 3)}),
    "split_equal": split((6, 3, 5), num_outputs=None),
    "split_sizes": split((2, 7, 5), sizes=(2, 4, 1), axis=1, used=[0, 2]),
    "split_last": split((2, 3, 5, 7), sizes=(3, 4), axis=-1),
    "split_num_outputs": split((2, 3, 8), axis=2, num_outputs=3),
    "split_output_is_graph_output": split_output_is_graph_output,
    "squeeze": axes_form("Squeeze", (2, 1, 5, 1), [1, -1], 13),
    "squeeze_all": one("Squeeze", (1, 3, 1, 5)),
    "unsqueeze": axes_form("Unsqueeze", (2, 5, 3), [0, -1, 2], 13),
    "flatten_axis0": one("Flatten", (2, 3, 5, 7), axis=0),
    "flatten_axis2": one("Flatten", (2, 3, 5, 7), axis=2),
    "flatten_axis_last": one("Flatten", (2, 3, 5, 7), axis=-1),
    "concat_batch": graph([node("Concat", ["x", "z", "x"], axis=0)], {"x": (2, 3, 5), "z": (1, 3, 5)}),
    "concat_rows": graph([node("Concat", ["x", "z"], axis=-2)], {"x": (2, 3, 5, 7), "z": (2, 3, 2, 7)}),
    "concat_last": graph([node("Concat", ["x", "z"], axis=3)], {"x": (1, 3, 5, 2), "z": (1, 3, 5, 7)}),
    "softmax_default": softmax("Softmax", (2, 3, 5, 7)),
    "softmax_axis1_4d": softmax("Softmax", (2, 3, 5, 7), axis=1),
    "softmax_axis2": softmax("Softmax", (2, 3, 5, 7), axis=2),
    "softmax_axis0": softmax("Softmax", (3, 13), axis=0),
    "log_softmax_default": softmax("LogSoftmax", (3, 5, 7)),
    "log_softmax_axis1": softmax("LogSoftmax", (2, 3, 5, 7), axis=1),
    "pad_constant": pad((2, 3, 5, 4), [0, 1, 2, -1, 1, 0, -2, 3], value=0.5),
    "pad_no_value": pad((2, 3, 5, 4), [0, 0, 1, 1, 0, 0, 1, 1]),
    "pad_edge": pad((2, 3, 5, 4), [1, 0, 2, 3, 0, 2, 1, 1], "edge"),
    "pad_reflect": pad((2, 3, 5, 4), [0, 1, 3, -1, 0, 2, -1, 2], "reflect"),
    "pad_axes": pad((2, 3, 5, 4), [1, 2, 3, 0], "reflect", axes=[-1, 2]),
    "pad_wrap": pad((2, 3, 5, 4), [0, 0, 2, 7, 0, 0, -1, 1], "wrap"),
    **{f"{op.lower()}": axes_form(op, (2, 3, 5, 4), [1, 3], 13 if op == "ReduceSum" else 18) for op in REDUCE_OPS},
    "reducelogsum": positive(axes_form("ReduceLogSum", (2, 3, 5, 4), [0, 2], 18)),
    "reducemean_nokeep": axes_form("ReduceMean", (2, 3, 5, 4), [-1, 1], 18, keepdims=0),
    "reducesum_all": one("ReduceSum", (2, 3, 5), keepdims=0),
    "reducesum_noop": graph([node("ReduceSum", ["x", "none"], ["r"], noop_with_empty_axes=1), node("Relu", ["r"])],
                            {"x": (2, 3, 5)}, {"none": ints()}),
    "reducemax_batch": axes_form("ReduceMax", (3, 2, 5), [0], 18),
    "global_pool_head": global_pool_head,
    "layer_norm_last": layer_norm((2, 5, 3, 7)),
    "layer_norm_axis1": layer_norm((2, 5, 3, 4), axis=1, bias=False),
    "layer_norm_scale_broadcast": layer_norm((2, 5, 4), axis=1, scale_shape=(4,)),
    "convnext_block": convnext_block,
    "instance_norm": graph([node("InstanceNormalization", ["x", "s", "b"], epsilon=1e-3)], {"x": (2, 5, 3, 7)},
                           {"s": lambda rng: rand(rng, (5,)), "b": lambda rng: rand(rng, (5,))}),
    "instance_norm_3d": graph([node("InstanceNormalization", ["x", "s", "b"])], {"x": (3, 2, 11)},
                              {"s": lambda rng: rand(rng, (2,)), "b": lambda rng: rand(rng, (2,))}),
}
# the opsets each case runs in (where the op's form changed); 17 otherwise
CASE_OPSETS = {
    **{name: (11, 13) for name in ("transpose_nhwc", "depth_to_space", "space_to_depth", "slice_all_inputs",
                                   "split_sizes", "split_equal", "flatten_axis2", "concat_rows", "softmax_axis1_4d",
                                   "softmax_axis2", "log_softmax_axis1", "pad_constant", "pad_reflect",
                                   "instance_norm")},
    **{name: (11, 13, 18) for name in ("reducesum", "reducemean", "global_pool_head")},
    **{name: (13, 18) for name in ("reducemax", "reducelogsumexp", "reducel2", "reducemean_nokeep")},
    **{name: (11, 21) for name in ("squeeze", "unsqueeze", "channel_shuffle", "softmax_default",
                                   "log_softmax_default")},
    "split_num_outputs": (18, 21),
    "pad_axes": (18,),
    "pad_wrap": (19, 21),
    "reducesum_noop": (13, 18),
    "layer_norm_last": (17, 21),
    "convnext_block": (17, 21),
}
IMPORT_CASES = [(name, opset) for name in CASES for opset in CASE_OPSETS.get(name, (17,))]


@pytest.mark.parametrize("name,opset", IMPORT_CASES, ids=[f"{n}-op{o}" for n, o in IMPORT_CASES])
def test_import_matches_onnxruntime(name, opset, devices, rng):
    proto, feeds = CASES[name](rng, opset=opset)
    if name in NUMPY_REFERENCE:
        model = clnn.load(proto.SerializeToString())
        assert_matches(run_clnn(model, feeds, devices), [NUMPY_REFERENCE[name](*feeds.values())])
    else:
        check_import(proto, feeds, devices)


# cases checked against numpy instead: onnxruntime 1.30 (the GPU machine's)
# leaves uninitialised values where Pad wraps more than a dim (1.32 agrees
# with numpy), and onnx's reference refuses the crop
NUMPY_REFERENCE = {"pad_wrap": lambda x: np.pad(x[:, :, :-1], ((0, 0), (0, 0), (2, 0), (7, 1)), mode="wrap")}


def test_split_makes_a_layer_per_used_output(devices, rng):
    proto, feeds = CASES["split_sizes"](rng, opset=13)
    model = check_import(proto, feeds, devices)
    assert [(layer.op, layer.inputs) for layer in model.layers if layer.op == "Slice"] == [("Slice", ("x",))] * 2


def test_split_feeding_a_concat_on_channels(devices, rng):
    """ShuffleNetV2's unit: split the channels, convolve one half, concat
    both (the convolution writes its half in place), shuffle."""
    c = 4
    consts = {"w": rand(rng, (c, c, 3, 3), 0.3), "s5": ints(1, 2, c, 5, 3), "s4": ints(1, 2 * c, 5, 3)}
    nodes = [node("Split", ["x"], ["a", "b"], axis=1, split=[c, c]), node("Conv", ["b", "w"], ["cb"], pads=[1] * 4),
             node("Concat", ["a", "cb"], ["cat"], axis=1), node("Reshape", ["cat", "s5"], ["r"]),
             node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]), node("Reshape", ["t", "s4"])]
    proto = make_model(nodes, {"x": (1, 2 * c, 5, 3)}, consts, opset=11)
    check_import(proto, {"x": rand(rng, (1, 2 * c, 5, 3))}, devices)


# errors -------------------------------------------------------------------------------------

def one_node(op, inputs=("x",), consts=None, shape=(1, 4, 6, 6), outputs=("y",), opset=17, **attrs):
    n = helper.make_node(op, list(inputs), list(outputs), name="n1", **attrs)
    return make_model([n], {"x": shape}, consts, outputs, opset)


ERRORS = {
    "transpose_bad_perm": (one_node("Transpose", perm=[0, 2, 2, 1]), "not a permutation"),
    "slice_step_zero": (one_node("Slice", ("x", "s", "e", "a", "t"), {"s": ints(0), "e": ints(2), "a": ints(1),
                                                                      "t": ints(0)}), "must not be 0"),
    "slice_empty": (one_node("Slice", ("x", "s", "e"), {"s": ints(3), "e": ints(1)}), "empty output"),
    "split_sizes_wrong": (one_node("Split", ("x", "k"), {"k": ints(1, 2)}, outputs=("a", "b"), axis=1),
                          "do not split axis 1"),
    "split_unequal": (one_node("Split", outputs=("a", "b", "c"), opset=13, axis=1), "3 equal parts"),
    "split_both": (one_node("Split", ("x", "k"), {"k": ints(2, 2)}, outputs=("a", "b"), opset=18, axis=1,
                            num_outputs=2), "cannot both"),
    "squeeze_not_one": (one_node("Squeeze", ("x", "a"), {"a": ints(1)}), "not all 1"),
    "unsqueeze_twice": (one_node("Unsqueeze", ("x", "a"), {"a": ints(1, -5)}), "twice"),
    "unsqueeze_rank7": (one_node("Unsqueeze", ("x", "a"), {"a": ints(0, 1, 2)}), "rank 7"),
    "pad_reflect_too_far": (one_node("Pad", ("x", "p"), {"p": ints(0, 0, 0, 6, 0, 0, 0, 0)}, mode="reflect"),
                            "smaller than the dims"),
    "pad_wrap_before_19": (one_node("Pad", ("x", "p"), {"p": ints(0, 0, 0, 1, 0, 0, 0, 0)}, mode="wrap", opset=18),
                           "wrap from opset 19"),
    "pad_value_not_scalar": (one_node("Pad", ("x", "p", "v"), {"p": ints(0, 0, 0, 1, 0, 0, 0, 0),
                                                              "v": np.ones(2, np.float32)}), "scalar"),
    "reduce_axis_twice": (one_node("ReduceMean", ("x", "a"), {"a": ints(1, -3)}, opset=18), "twice"),
    "reduce_axis_out_of_range": (one_node("ReduceSum", axes=[4], opset=11), "axis 4"),
    "depth_to_space_mode": (one_node("DepthToSpace", blocksize=2, mode="XYZ"), "DCR or CRD"),
    "space_to_depth_no_size": (one_node("SpaceToDepth"), "blocksize is required"),
    "layer_norm_mean_used": (one_node("LayerNormalization", ("x", "s"), {"s": np.ones(6, np.float32)},
                                      outputs=("y", "mean")), "output 1"),
    "layer_norm_before_17": (one_node("LayerNormalization", ("x", "s"), {"s": np.ones(6, np.float32)}, opset=13),
                             "from opset 17"),
    "layer_norm_scale_shape": (one_node("LayerNormalization", ("x", "s"), {"s": np.ones(5, np.float32)}),
                               "does not broadcast"),
    "instance_norm_2d": (one_node("InstanceNormalization", ("x", "s", "s"), {"s": np.ones(4, np.float32)},
                                  shape=(3, 4)), "spatial"),
    "softmax_axis_out_of_range": (one_node("Softmax", axis=4), "axis 4"),
    "concat_axis_out_of_range": (one_node("Concat", ("x", "x"), axis=-5), "axis -5"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_import_errors(name):
    proto, message = ERRORS[name]
    with pytest.raises(clnn.ModelError) as caught:
        clnn.load(proto.SerializeToString())
    assert "'n1'" in str(caught.value)
    assert message in str(caught.value)


# export -----------------------------------------------------------------------------------

def export_case(inputs, *layers):
    def build(rng):
        return inputs, [make(rng) if callable(make) else copy.deepcopy(make) for make in layers]
    return build


EXPORTS = {
    "transpose_d2s_s2d": export_case({"x": (2, 8, 3, 5)}, Transpose("t", "x", (0, 2, 3, 1)),
                                     Transpose("u", "t", (0, 3, 1, 2)), DepthToSpace("d", "u", 2, "CRD"),
                                     SpaceToDepth("y", "d", 2)),
    "slices_concat": export_case({"x": (3, 7, 5)}, Slice("a", "x", [-1, 5], [-BIG, 0], [0, 1], [-1, -2]),
                                 Slice("b", "x", [1], [100], [2]), Concat("y", ["a", "a"], 2)),
    "pads": export_case({"x": (2, 3, 5, 4)}, Pad("a", "x", [0, 1, 2, -1, 1, 0, -2, 3], "constant", 0.5),
                        Pad("b", "a", [0, 0, 1, 2, 0, 1, 0, 1], "reflect"), Pad("y", "b", [1, 0, 0, 0, 0, 0, 2, 1],
                                                                                  "edge")),
    "reductions": export_case({"x": (2, 3, 5, 4)}, Reduce("a", "x", "ReduceMean", (2, 3)),
                              Reduce("b", "x", "ReduceSum", (1,), keepdims=False), Reduce("c", "b", "ReduceMax", None),
                              Concat("y", ["a", "a"], 0)),
    "softmaxes": export_case({"x": (2, 3, 5, 1)}, Softmax("a", "x", 2), Softmax("y", "a", 1, log=True, flatten=True)),
    "norms": export_case({"x": (2, 3, 5, 4)},
                         lambda rng: InstanceNorm("a", "x", rand(rng, (3,)), rand(rng, (3,)), 1e-3),
                         lambda rng: LayerNorm("y", "a", rand(rng, (5, 4)), rand(rng, (5, 4)), 2)),
    "views": export_case({"x": (2, 3, 5, 4)}, Reshape("a", "x", axis=2), Reshape("b", "a", [6, 1, 20]),
                         Transpose("y", "b", (1, 2, 0))),
}
EXPORT_CASES = [(name, opset) for name in EXPORTS for opset in (11, 17) if (name, opset) != ("norms", 11)]


@pytest.mark.parametrize("name,opset", EXPORT_CASES, ids=[f"{n}-op{o}" for n, o in EXPORT_CASES])
def test_export_round_trip(name, opset, devices, rng):
    inputs, layers = EXPORTS[name](rng)
    model = clnn.Model(inputs, layers, [layers[-1].name], name=name)
    feeds = {k: rand(rng, v) for k, v in inputs.items()}
    proto = model.to_onnx(opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    expected = run_ort(proto, feeds)
    assert rel_err(expected[0], model.reference(feeds)[0]) < TOL
    assert_matches(run_clnn(model, feeds, devices), expected)
    assert_matches(run_clnn(clnn.load(proto), feeds, devices), expected)


def test_export_refuses_what_an_opset_cannot_say():
    model = clnn.Model({"x": (2, 3, 5)}, [LayerNorm("y", "x", np.ones(5), np.zeros(5))], ["y"])
    with pytest.raises(clnn.ModelError, match="opset 17"):
        model.to_onnx(opset=13)
    model = clnn.Model({"x": (2, 3, 5)}, [Softmax("y", "x", 1)], ["y"])
    with pytest.raises(clnn.ModelError, match="opset 13"):
        model.to_onnx(opset=12)
