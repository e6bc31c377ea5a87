"""ONNX import of the spatial ops (Resize, Upsample, ConvTranspose, batched
MatMul and Gemm, 1-D convolution and pooling) and torch's LocalResponseNorm
subgraph, against onnxruntime; their export back to ONNX; their refusals."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import clnn
from clnn.onnx_patterns import rewrite

from helpers import rand
from test_onnx import check_import, make_model, node, run_clnn, run_ort, assert_matches

EMPTY = np.zeros(0, np.float32)


def resize(shape, scales=None, sizes=None, roi=None, op="Resize", **attrs):
    """x -> Resize (scales or sizes; roi only where given) -> y; in opset 11
    the roi and scales inputs are required, so they are empty there."""
    def build(rng, opset):
        consts, inputs = {}, ["x"]
        for name, value, required in (("roi", roi, opset < 13), ("scales", scales, opset < 13 or sizes is None),
                                      ("sizes", sizes, False)):
            if value is not None or required:
                dtype = np.int64 if name == "sizes" else np.float32
                consts[name] = np.array(value if value is not None else [], dtype)
                inputs.append(name)
            else:
                inputs.append("")
        while inputs[-1] == "":
            inputs.pop()
        return make_model([node(op, inputs, **attrs)], {"x": shape}, consts, opset=opset), {"x": rand(rng, shape)}
    return build


def upsample(shape, scales, mode):
    """The same Upsample node in an opset-9 model for onnxruntime (which
    runs it there only) and in an opset-11 model for clnn."""
    def build(rng, opset):
        model = make_model([node("Upsample", ["x", "s"], mode=mode)], {"x": shape},
                           {"s": np.array(scales, np.float32)}, opset=opset)
        return model, {"x": rand(rng, shape)}
    return build


def conv_transpose(shape, weight, bias=True, after=None, **attrs):
    """x -> ConvTranspose (w, b) [-> BatchNormalization or an activation] -> y."""
    def build(rng, opset):
        channels = weight[1] * attrs.get("group", 1)
        consts = {"w": rand(rng, weight, 0.3)}
        if bias:
            consts["b"] = rand(rng, (channels,))
        nodes = [node("ConvTranspose", ["x", *consts], ["t" if after else "y"], **attrs)]
        if after == "BatchNormalization":
            consts.update(g=rand(rng, (channels,)), beta=rand(rng, (channels,)), mean=rand(rng, (channels,), 0.1),
                          var=rng.uniform(0.5, 1.5, channels).astype(np.float32))
            nodes.append(node(after, ["t", "g", "beta", "mean", "var"]))
        elif after:
            nodes.append(node(after, ["t"]))
        return make_model(nodes, {"x": shape}, consts, opset=opset), {"x": rand(rng, shape)}
    return build


def matmul(op, shapes, consts=(), **attrs):
    """One MatMul or Gemm node over inputs {name: shape} (in order), some of
    them constants (made from rng)."""
    def build(rng, opset):
        values = {name: rand(rng, shape, 0.3) for name, shape in shapes.items() if name in consts}
        inputs = {name: shape for name, shape in shapes.items() if name not in consts}
        model = make_model([node(op, list(shapes), **attrs)], inputs, values, opset=opset)
        return model, {name: rand(rng, shape) for name, shape in inputs.items()}
    return build


def window_op(op, shape, weight=None, **attrs):
    """x -> a 1-D (or 2-D) Conv with weight [and bias], or a pool -> y."""
    def build(rng, opset):
        consts = {"w": rand(rng, weight, 0.3), "b": rand(rng, (weight[0],))} if weight else {}
        return make_model([node(op, ["x", *consts], **attrs)], {"x": shape}, consts, opset=opset), \
            {"x": rand(rng, shape)}
    return build


CASES = {
    # torch's forms: nearest x2 (asymmetric, floor), bilinear to a size, bilinear align_corners
    "resize_torch_nearest": (resize((1, 3, 5, 7), scales=[1, 1, 2, 2], mode="nearest",
                                    coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
                             (11, 13, 18, 19)),
    "resize_torch_bilinear_sizes": (resize((2, 3, 5, 6), sizes=[2, 3, 7, 9], mode="linear"), (11, 13, 18, 19)),
    "resize_align_corners": (resize((1, 2, 5, 6), scales=[1, 1, 1.5, 1.5], mode="linear",
                                    coordinate_transformation_mode="align_corners"), (13, 19)),
    "resize_pytorch_half_pixel_down": (resize((1, 2, 13, 7), scales=[1, 1, 0.5, 0.3], mode="linear",
                                              coordinate_transformation_mode="pytorch_half_pixel"), (13,)),
    "resize_round_prefer_ceil": (resize((1, 2, 7, 5), scales=[1, 1, 2.0, 0.6], nearest_mode="round_prefer_ceil"),
                                 (13,)),
    "resize_round_prefer_floor_ties": (resize((1, 2, 8, 6), scales=[1, 1, 0.5, 1.5]), (13, 18)),
    "resize_ceil_half_pixel": (resize((1, 1, 6, 7), scales=[1, 1, 1.7, 0.8], nearest_mode="ceil"), (13,)),
    "resize_tf_half_pixel_for_nn": (resize((1, 2, 5, 7), scales=[1, 1, 1.6, 2.0],
                                           coordinate_transformation_mode="tf_half_pixel_for_nn"), (11,)),
    "resize_crop_and_resize": (resize((1, 2, 7, 9), scales=[1, 1, 1.7, 0.6], roi=[0, 0, 0.2, -0.1, 1, 1, 1.3, 0.9],
                                      mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
                                      extrapolation_value=2.5), (11, 13, 18)),
    "resize_crop_nearest_sizes": (resize((1, 2, 7, 9), sizes=[1, 2, 4, 11], roi=[0, 0, 0.1, 0.2, 1, 1, 0.7, 1.1],
                                         coordinate_transformation_mode="tf_crop_and_resize"), (13,)),
    "resize_axes": (resize((2, 3, 5, 7), scales=[2.0, 0.5], axes=[2, 3], mode="linear"), (18, 19)),
    "resize_axes_negative_sizes": (resize((2, 3, 5, 7), sizes=[9], axes=[-1]), (18,)),
    "resize_not_larger": (resize((1, 2, 5, 8), sizes=[10, 12], axes=[2, 3], keep_aspect_ratio_policy="not_larger",
                                 mode="linear"), (18,)),
    "resize_not_smaller": (resize((1, 2, 5, 8), sizes=[10, 12], axes=[2, 3], keep_aspect_ratio_policy="not_smaller"),
                           (18,)),
    "resize_half_pixel_symmetric": (resize((1, 2, 5, 7), scales=[1, 1, 1.7, 0.6], mode="linear",
                                           coordinate_transformation_mode="half_pixel_symmetric"), (19,)),
    "resize_1d_linear": (resize((2, 3, 7), scales=[1, 1, 2.5], mode="linear"), (13,)),
    "resize_1d_nearest_down": (resize((2, 3, 13), sizes=[2, 3, 5]), (13,)),
    "resize_unused_roi_and_cubic_coeff": (resize((1, 2, 5, 7), scales=[1, 1, 2, 2], roi=[0, 0, 0, 0, 1, 1, 1, 1],
                                                 mode="linear", cubic_coeff_a=-0.5, nearest_mode="ceil"), (13,)),
    # torch's ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), as fast style transfer has it
    "ct_torch": (conv_transpose((1, 4, 5, 6), (4, 3, 3, 3), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                output_padding=[1, 1], dilations=[1, 1], group=1, after="Relu"), (11, 17, 21)),
    "ct_asym_pads_dilated": (conv_transpose((2, 3, 4, 5), (3, 2, 3, 2), bias=False, strides=[3, 2], dilations=[2, 3],
                                            pads=[2, 0, 1, 3], output_padding=[1, 0]), (17,)),
    "ct_same_upper_dilated": (conv_transpose((1, 2, 4, 5), (2, 3, 3, 3), strides=[2, 3], dilations=[2, 2],
                                             auto_pad="SAME_UPPER"), (17,)),
    "ct_same_lower": (conv_transpose((1, 2, 4, 5), (2, 3, 3, 3), strides=[2, 3], auto_pad="SAME_LOWER"), (17,)),
    "ct_valid_output_padding": (conv_transpose((1, 2, 4, 5), (2, 3, 3, 3), strides=[3, 3], auto_pad="VALID",
                                               output_padding=[1, 2]), (17,)),
    "ct_output_shape": (conv_transpose((1, 3, 4, 5), (3, 2, 3, 3), strides=[3, 3], output_shape=[9, 16]), (11, 17)),
    "ct_output_shape_same_upper": (conv_transpose((1, 3, 4, 5), (3, 2, 3, 3), strides=[3, 3], output_shape=[11, 14],
                                                  auto_pad="SAME_UPPER"), (17,)),
    "ct_depthwise": (conv_transpose((2, 6, 5, 5), (6, 1, 3, 3), group=6, strides=[2, 2], pads=[1, 1, 1, 1]), (17,)),
    "ct_groups_bn": (conv_transpose((1, 6, 5, 4), (6, 2, 2, 3), group=3, strides=[2, 1], after="BatchNormalization"),
                     (17,)),
    "ct_1d": (conv_transpose((2, 3, 7), (3, 4, 3), strides=[2], pads=[1, 0], output_padding=[1]), (11, 17)),
    "matmul_3d_const": (matmul("MatMul", {"x": (2, 7, 5), "w": (5, 6)}, consts="w"), (13, 17)),
    "matmul_attention": (matmul("MatMul", {"q": (2, 3, 5, 4), "k": (2, 3, 4, 5)}), (13,)),
    "matmul_broadcast": (matmul("MatMul", {"a": (3, 1, 5, 4), "b": (1, 2, 4, 6)}), (13,)),
    "matmul_const_first": (matmul("MatMul", {"w": (5, 4), "x": (2, 4, 6)}, consts="w"), (13,)),
    "matmul_2d_tensors": (matmul("MatMul", {"a": (7, 5), "b": (5, 3)}), (11,)),
    "matmul_6d_const": (matmul("MatMul", {"x": (2, 1, 2, 3, 4, 5), "w": (2, 3, 5, 2)}, consts="w"), (13,)),
    "gemm_trans_a": (matmul("Gemm", {"a": (5, 7), "b": (5, 3), "c": (3,)}, consts="bc", transA=1, alpha=0.5,
                            beta=2.0), (11, 13)),
    "gemm_tensors_trans_b": (matmul("Gemm", {"a": (4, 5), "b": (3, 5), "c": ()}, consts="c", transB=1), (13,)),
    "gemm_const_a_trans": (matmul("Gemm", {"a": (5, 4), "b": (5, 3), "c": (1, 3)}, consts="ac", transA=1,
                                  transB=0), (13,)),
    # vector operands, promoted as numpy does: A (K,) a row, B (K,) a column, the 1 dropped after
    "matmul_vector_first": (matmul("MatMul", {"v": (5,), "b": (2, 3, 5, 4)}), (13,)),
    "matmul_vector_second_const": (matmul("MatMul", {"x": (3, 7, 5), "w": (5,)}, consts="w"), (13,)),
    "matmul_vector_second_2d": (matmul("MatMul", {"a": (7, 5), "b": (5,)}), (13,)),
    "matmul_vectors": (matmul("MatMul", {"a": (6,), "b": (6,)}), (13,)),
    # a C fuller than one value per column: an Add after the product
    "gemm_matrix_c": (matmul("Gemm", {"a": (5, 4), "b": (4, 3), "c": (5, 3)}, consts="bc", beta=0.5), (13,)),
    "gemm_column_c_trans_a": (matmul("Gemm", {"a": (4, 5), "b": (4, 3), "c": (5, 1)}, consts="c", transA=1,
                                     alpha=2.0), (11,)),
    "conv1d": (window_op("Conv", (2, 4, 13), (6, 4, 3), pads=[1, 1], strides=[2]), (11, 17)),
    "conv1d_dilated_groups": (window_op("Conv", (1, 6, 13), (9, 2, 3), group=3, dilations=[2], pads=[2, 1],
                                        kernel_shape=[3]), (17,)),
    "conv1d_same_upper": (window_op("Conv", (1, 3, 10), (4, 3, 4), strides=[3], auto_pad="SAME_UPPER"), (17,)),
    "maxpool1d": (window_op("MaxPool", (2, 3, 13), kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1),
                  (11, 17)),
    "avgpool1d_include_pad": (window_op("AveragePool", (2, 3, 13), kernel_shape=[3], strides=[2], pads=[1, 0],
                                        count_include_pad=1), (17,)),
    "global_avgpool1d": (window_op("GlobalAveragePool", (2, 5, 7)), (17,)),
    "global_maxpool1d": (window_op("GlobalMaxPool", (2, 5, 7)), (17,)),
}

IMPORT_CASES = [(name, opset) for name, (_, opsets) in CASES.items() for opset in opsets]


@pytest.mark.parametrize("name,opset", IMPORT_CASES, ids=[f"{n}-op{o}" for n, o in IMPORT_CASES])
def test_import_matches_onnxruntime(name, opset, devices, rng):
    proto, feeds = CASES[name][0](rng, opset)
    check_import(proto, feeds, devices)


@pytest.mark.parametrize("shape,scales,mode", [((1, 2, 5, 7), [1, 1, 2, 3], "nearest"),
                                               ((2, 3, 4, 5), [1, 1, 1.5, 2.5], "linear"),
                                               ((2, 3, 7), [1, 1, 3], "linear")])
def test_upsample_as_onnxruntime_runs_it_in_opset_9(shape, scales, mode, devices, rng):
    build = upsample(shape, scales, mode)
    old, feeds = build(rng, 9)
    new, _ = build(rng, 11)
    expected = run_ort(old, feeds)
    assert_matches(run_clnn(new.SerializeToString(), feeds, devices), expected)


def one_node(op, inputs, consts, shapes, opset=17, **attrs):
    return make_model([helper.make_node(op, inputs, ["y"], name="n1", **attrs)], shapes, consts, opset=opset)


SCALES = np.array([1, 1, 2, 2], np.float32)
ERRORS = {
    "resize_cubic": (one_node("Resize", ["x", "", "s"], {"s": SCALES}, {"x": (1, 2, 3, 3)}, mode="cubic"),
                     "cubic"),
    "resize_antialias": (one_node("Resize", ["x", "", "s"], {"s": SCALES}, {"x": (1, 2, 3, 3)}, opset=18,
                                  mode="linear", antialias=1), "antialias"),
    "resize_channels": (one_node("Resize", ["x", "", "s"], {"s": np.array([1, 2, 2, 2], np.float32)},
                                 {"x": (1, 2, 3, 3)}), "batch or channel"),
    "resize_5d": (one_node("Resize", ["x", "", "s"], {"s": np.ones(5, np.float32)}, {"x": (1, 2, 3, 3, 3)}),
                  "(N, C, H, W)"),
    "resize_scales_and_sizes": (one_node("Resize", ["x", "", "s", "z"], {"s": SCALES,
                                                                         "z": np.array([1, 2, 6, 6], np.int64)},
                                         {"x": (1, 2, 3, 3)}), "exactly one"),
    "resize_computed_scales": (one_node("Resize", ["x", "", "s"], {}, {"x": (1, 2, 3, 3), "s": (4,)}),
                               "must be a constant"),
    "resize_exclude_outside": (one_node("Resize", ["x", "", "s"], {"s": SCALES}, {"x": (1, 2, 3, 3)},
                                        exclude_outside=1), "exclude_outside"),
    "resize_crop_without_roi": (one_node("Resize", ["x", "", "s"], {"s": SCALES}, {"x": (1, 2, 3, 3)},
                                         coordinate_transformation_mode="tf_crop_and_resize"), "roi"),
    "resize_bad_coordinate_mode": (one_node("Resize", ["x", "", "s"], {"s": SCALES}, {"x": (1, 2, 3, 3)},
                                            coordinate_transformation_mode="sideways"), "sideways"),
    "ct_3d": (one_node("ConvTranspose", ["x", "w"], {"w": np.ones((2, 2, 2, 2, 2), np.float32)},
                       {"x": (1, 2, 3, 3, 3)}), "1-D and 2-D"),
    "ct_pads_and_output_shape": (one_node("ConvTranspose", ["x", "w"], {"w": np.ones((2, 2, 2, 2), np.float32)},
                                          {"x": (1, 2, 3, 3)}, pads=[1, 1, 1, 1], output_shape=[5, 5]), "output_shape"),
    "ct_same_output_padding": (one_node("ConvTranspose", ["x", "w"], {"w": np.ones((2, 2, 2, 2), np.float32)},
                                        {"x": (1, 2, 3, 3)}, strides=[2, 2], auto_pad="SAME_UPPER",
                                        output_padding=[1, 1]), "output_padding"),
    "ct_channels": (one_node("ConvTranspose", ["x", "w"], {"w": np.ones((3, 2, 2, 2), np.float32)},
                             {"x": (1, 2, 3, 3)}), "input channels"),
    "matmul_vector_length": (one_node("MatMul", ["v", "x"], {}, {"v": (4,), "x": (2, 3, 5)}), "do not multiply"),
    "matmul_partial_inner_broadcast": (one_node("MatMul", ["a", "b"], {}, {"a": (1, 3, 2, 5, 4),
                                                                           "b": (1, 1, 2, 4, 6)}), "inner batch"),
    "matmul_constants": (one_node("MatMul", ["a", "b"], {"a": np.ones((2, 2), np.float32),
                                                         "b": np.ones((2, 2), np.float32)}, {"x": (1,)}), "constants"),
    "gemm_trans_a_3d": (one_node("Gemm", ["a", "b"], {"b": np.ones((3, 4), np.float32)}, {"a": (4, 3, 1)},
                                 transA=1), "2-D"),
    "upsample_down": (one_node("Upsample", ["x", "s"], {"s": np.array([1, 1, 0.5, 1], np.float32)},
                               {"x": (1, 2, 4, 4)}, opset=11), ">= 1"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_import_errors(name):
    proto, expected = ERRORS[name]
    with pytest.raises(clnn.ModelError) as caught:
        clnn.load(proto.SerializeToString())
    assert "'n1'" in str(caught.value) and expected in str(caught.value)


@pytest.mark.parametrize("name,opset", [("resize_torch_bilinear_sizes", 13), ("resize_crop_and_resize", 13),
                                        ("resize_half_pixel_symmetric", 19), ("resize_1d_linear", 17),
                                        ("resize_axes", 18), ("ct_torch", 17),
                                        ("ct_output_shape", 17), ("ct_same_upper_dilated", 17), ("ct_1d", 17),
                                        ("ct_groups_bn", 17), ("matmul_broadcast", 17),
                                        ("gemm_trans_a", 17), ("gemm_tensors_trans_b", 17), ("matmul_6d_const", 17),
                                        ("matmul_const_first", 17), ("conv1d_dilated_groups", 17),
                                        ("maxpool1d", 17), ("avgpool1d_include_pad", 17), ("global_avgpool1d", 17)])
def test_export_runs_in_onnxruntime_and_loads_back(name, opset, devices, rng):
    proto, feeds = CASES[name][0](rng, CASES[name][1][0])
    model = clnn.load(proto.SerializeToString())
    exported = model.to_onnx(opset=opset)
    exported.ir_version = min(exported.ir_version, 10)
    expected = run_ort(proto, feeds)
    assert_matches([run_ort(exported, feeds)], expected)
    assert_matches(run_clnn(exported.SerializeToString(), feeds, devices), expected)


def test_batchnorm_folds_into_conv_transpose(devices, rng):
    proto, feeds = CASES["ct_groups_bn"][0](rng, 17)
    model = check_import(proto, feeds, devices)
    assert [layer.op for layer in model.layers] == ["ConvTranspose"]


# models exported by torch ---------------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data"
TORCH_MODELS = sorted(p.name for p in DATA.glob("torch_*.onnx"))


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_torch_exports_match_onnxruntime(name, devices, rng):
    """Small models that torch.onnx.export wrote (tests/data/make_torch_fixtures.py);
    a symbolic batch runs as 3."""
    proto = onnx.load(DATA / name)
    feeds = {i.name: rand(rng, [d.dim_value or 3 for d in i.type.tensor_type.shape.dim]) for i in proto.graph.input}
    model = clnn.load(DATA / name, batch=next(iter(feeds.values())).shape[0])
    assert_matches(run_clnn(model, feeds, devices), run_ort(proto, feeds))
    if name.startswith("torch_lrn"):    # one LRN layer for each LocalResponseNorm subgraph
        assert [layer.op for layer in model.layers] == ["Conv", "LRN", "MaxPool", "Conv", "LRN"]


def test_torch_exports_cover_the_spatial_ops():
    assert {"torch_lrn_ts.onnx", "torch_lrn_dynamo.onnx", "torch_lrn_any_batch_ts.onnx", "torch_upsample_ts.onnx",
            "torch_conv_transpose_ts.onnx", "torch_conv1d_ts.onnx", "torch_matmul_ts.onnx"} <= set(TORCH_MODELS)


# torch's LocalResponseNorm subgraph, written out as torch writes it ------------------------

def torch_lrn(shape, size=5, alpha=1e-4, beta=0.75, k=2.0, square="Mul", pads=None, outputs=("y",), opset=18):
    """x -> Relu -> the ops torch.onnx.export (dynamo) writes for
    nn.LocalResponseNorm: the squares regrouped to (N, 1, C, ...), padded
    and averaged along axis 2, regrouped back, then x / (d * alpha + k) **
    beta. For a 3-D x torch unsqueezes instead of reshaping."""
    rank = len(shape)
    consts = {"alpha": np.array(alpha, np.float32), "k": np.array(k, np.float32),
              "beta": np.array(beta, np.float32), "axis1": np.array([1], np.int64)}
    if pads is None:
        pads = [0] * (2 * rank + 2)
        pads[2], pads[rank + 3] = size // 2, (size - 1) // 2
    consts["pads"] = np.array(pads, np.int64)
    nodes = [node("Relu", ["x"], ["r"])]
    if square == "Mul":
        nodes.append(node("Mul", ["r", "r"], ["sq"]))
    else:
        consts["two"] = np.array(2.0, np.float32)
        nodes.append(node("Pow", ["r", "two"], ["sq"]))
    if rank == 3:
        nodes.append(node("Unsqueeze", ["sq", "axis1"], ["view"]))
    else:
        consts["view_shape"] = np.array([shape[0], 1, shape[1], shape[2], -1], np.int64)
        nodes.append(node("Reshape", ["sq", "view_shape"], ["view"]))
    nodes += [node("Pad", ["view", "pads"], ["padded"], mode="constant"),
              node("AveragePool", ["padded"], ["pool"], kernel_shape=[size] + [1] * (rank - 2),
                   strides=[1] * (rank - 1), pads=[0] * 2 * (rank - 1), count_include_pad=1),
              node("Squeeze", ["pool", "axis1"], ["back"]),
              node("Mul", ["back", "alpha"], ["scaled"]), node("Add", ["scaled", "k"], ["biased"]),
              node("Pow", ["biased", "beta"], ["power"]), node("Div", ["r", "power"])]
    return make_model(nodes, {"x": shape}, consts, outputs=outputs, opset=opset)


def rewritten(proto):
    return [n.op_type for n in rewrite(onnx, proto)]


@pytest.mark.parametrize("square", ["Mul", "Pow"])
@pytest.mark.parametrize("opset", [13, 18, 21])
def test_torch_lrn_becomes_one_lrn(square, opset, devices, rng):
    proto = torch_lrn((2, 9, 5, 3), size=5, square=square, opset=opset)
    assert rewritten(proto) == ["Relu", "LRN"]
    model = check_import(proto, {"x": rand(rng, (2, 9, 5, 3))}, devices)
    (lrn,) = [layer for layer in model.layers if layer.op == "LRN"]
    assert (lrn.size, lrn.beta, lrn.bias) == (5, 0.75, 2.0) and lrn.alpha == pytest.approx(1e-4)


def test_torch_lrn_size_3_other_constants(devices, rng):
    proto = torch_lrn((1, 7, 4, 4), size=3, alpha=0.3, beta=0.6, k=1.5)
    assert rewritten(proto) == ["Relu", "LRN"]
    check_import(proto, {"x": rand(rng, (1, 7, 4, 4))}, devices)


def test_torch_lrn_of_3d_input_becomes_lrn():
    nodes = rewrite(onnx, torch_lrn((2, 9, 7), size=3))
    assert [n.op_type for n in nodes] == ["Relu", "LRN"]
    assert {a.name: helper.get_attribute_value(a) for a in nodes[1].attribute}["size"] == 3


@pytest.mark.parametrize("why, proto", [
    ("even size: torch's window is one channel lower than LRN's", torch_lrn((1, 8, 3, 3), size=4)),
    ("padding on another axis", torch_lrn((1, 8, 3, 3), pads=[0, 0, 0, 2, 0, 0, 0, 0, 2, 0])),
    ("padding only before", torch_lrn((1, 8, 3, 3), pads=[0, 0, 4, 0, 0, 0, 0, 0, 0, 0]))])
def test_lookalikes_stay_as_they_are(why, proto):
    assert "LRN" not in rewritten(proto), why
    assert len(rewrite(onnx, proto)) == len(proto.graph.node)


def test_a_part_used_elsewhere_stays(devices, rng):
    """The squares are also a graph output: the Div becomes LRN, the Mul stays."""
    proto = torch_lrn((1, 8, 3, 3), outputs=("y", "sq"))
    assert rewritten(proto) == ["Relu", "Mul", "LRN"]
    check_import(proto, {"x": rand(rng, (1, 8, 3, 3))}, devices)


def test_the_callers_proto_is_left_as_it_was():
    proto = torch_lrn((1, 8, 3, 3))
    before = proto.SerializeToString()
    clnn.load(proto)
    assert proto.SerializeToString() == before


def test_torch_lrn_with_any_batch_rewrites_for_each_batch_fed(devices, rng):
    """torch computes the reshapes' sizes from Shape ops where the batch is
    symbolic; a session builds itself per batch size and rewrites each."""
    path = DATA / "torch_lrn_any_batch_ts.onnx"
    session = clnn.InferenceSession(str(path), devices=devices, plan=[1.0] + [0.0] * (len(devices) - 1))
    for batch in (1, 4):
        x = rand(rng, (batch, 3, 15, 15))
        assert_matches([session.run(None, {"x": x})], run_ort(onnx.load(path), {"x": x}))
