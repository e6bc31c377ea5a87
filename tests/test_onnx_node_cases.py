"""The onnx package's own node tests (onnx.backend.test) run through clnn.

Every case whose nodes are all ops that clnn supports is loaded with
clnn.load, after onnx_fold, and run on one device; its outputs must match the
case's expected outputs as onnx's runner compares them (dtype, then
assert_allclose with the case's rtol and atol). A case clnn cannot run is
either EXCLUDED (never meant to run, with the reason) or NOT_YET (to be
emptied as layers land): a NOT_YET case must still be refused with a
ModelError (never a crash or a wrong answer), and one that starts passing
fails until it is taken off the list.

clnn reads weights, shapes and bounds as constants: the graph inputs that a
node reads at such a position (CONSTANT_INPUTS), and every integer or boolean
input, become initializers holding the case's data.
"""

import functools
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import clnn
from clnn.onnx_fold import fold
from clnn.onnx_import import converters

DEFAULT_DOMAINS = ("", "ai.onnx")


def supported_ops():
    """The ai.onnx op types that clnn claims to import."""
    return set(converters())


# the inputs clnn reads as constants, by op: weights, bias, statistics, bounds, shapes
CONSTANT_INPUTS = {
    "Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1,), "BatchNormalization": (1, 2, 3, 4), "Clip": (1, 2),
    "Reshape": (1,), "Dropout": (1, 2), "Resize": (1, 2, 3), "Upsample": (1,), "ConvTranspose": (1, 2),
    "LayerNormalization": (1, 2), "InstanceNormalization": (1, 2), "Pad": (1, 2, 3), "Split": (1,),
    "Slice": (1, 2, 3, 4), "Squeeze": (1,), "Unsqueeze": (1,), "ReduceSum": (1,), "ReduceMean": (1,),
    "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,), "ReduceL1": (1,), "ReduceL2": (1,),
    "ReduceLogSum": (1,), "ReduceLogSumExp": (1,), "ReduceSumSquare": (1,), "PRelu": (1,),
}


@functools.lru_cache(maxsize=None)
def node_cases():
    """{name: (model, [(inputs, outputs)], rtol, atol)} of every node test of
    the installed onnx: generated in memory by newer onnx versions, read from
    onnx/backend/test/data/node by older ones."""
    from onnx.backend.test.loader import load_model_tests
    with np.errstate(all="ignore"):
        loaded = load_model_tests(kind="node")
    cases = {}
    for case in loaded:
        if case.model is not None:
            model, data = case.model, [(list(i), list(o)) for i, o in case.data_sets]
        else:
            model, data = _read_case(case.model_dir)
        cases[case.name] = (model, data, case.rtol, case.atol)
    return cases


def _read_case(directory):
    def tensors(folder, prefix):
        names = sorted((f for f in os.listdir(folder) if f.startswith(prefix)),
                       key=lambda f: int(f[len(prefix):-3]))
        return [numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, f))) for f in names]
    data = [(tensors(os.path.join(directory, d), "input_"), tensors(os.path.join(directory, d), "output_"))
            for d in sorted(os.listdir(directory)) if d.startswith("test_data_set_")]
    return onnx.load(os.path.join(directory, "model.onnx")), data


def op_types(graph):
    """(domain, op type) of every node of ``graph`` and its subgraphs."""
    found = set()
    for node in graph.node:
        found.add((node.domain if node.domain not in DEFAULT_DOMAINS else "", node.op_type))
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found |= op_types(sub)
    return found


def unsupported(model, supported):
    return sorted(f"{d}.{op}" if d else op for d, op in op_types(model.graph) if d or op not in supported)


def with_constants(model, inputs):
    """``model`` with the graph inputs that clnn reads as constants turned
    into initializers of the case's data; the remaining feeds."""
    values = {info.name: value for info, value in zip(model.graph.input, inputs)}
    frozen = {name for name, value in values.items() if isinstance(value, np.ndarray) and value.dtype.kind in "biu"}
    for node in model.graph.node:
        frozen.update(node.input[i] for i in CONSTANT_INPUTS.get(node.op_type, ()) if i < len(node.input))
    frozen &= set(values)
    if not frozen:
        return model, values
    model = onnx.ModelProto.FromString(model.SerializeToString())
    kept = [info for info in model.graph.input if info.name not in frozen]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.graph.initializer.extend(numpy_helper.from_array(values[n], n) for n in sorted(frozen))
    return model, {n: v for n, v in values.items() if n not in frozen}


def run_case(name, device):
    """Load and run case ``name`` on ``device``; assert its outputs match."""
    model, data, rtol, atol = node_cases()[name]
    for inputs, expected in data:
        proto, feeds = with_constants(model, inputs)
        proto = fold(proto, {n: v.shape for n, v in feeds.items() if isinstance(v, np.ndarray)})
        session = clnn.InferenceSession(clnn.load(proto), devices=[device], plan=[1.0])
        outputs = session.run(None, feeds)
        assert len(outputs) == len(expected)
        for actual, wanted in zip(outputs, expected):
            wanted = np.asarray(wanted)
            assert actual.dtype == wanted.dtype
            np.testing.assert_allclose(actual, wanted, rtol=rtol, atol=atol)


def _reasons(groups):
    """{case name: reason} from {reason: "names separated by blanks"}."""
    return {name: reason for reason, names in groups.items() for name in names.split()}


# Cases of supported ops that clnn is not meant to run, by reason ---------------------------
EXCLUDED = _reasons({
    # clnn computes float32 tensors only
    "integer arithmetic": """
        test_add_int8 test_add_int16 test_add_uint8 test_add_uint16 test_add_uint32 test_add_uint64
        test_sub_int8 test_sub_int16 test_sub_uint8 test_sub_uint16 test_sub_uint32 test_sub_uint64
        test_mul_int8 test_mul_int16 test_mul_uint8 test_mul_uint16 test_mul_uint32 test_mul_uint64
        test_div_int8 test_div_int16 test_div_int32_trunc test_div_uint8 test_div_uint16 test_div_uint32
        test_div_uint64 test_clip_default_int8_inbounds test_clip_default_int8_inbounds_expanded
        test_max_int16 test_max_int32 test_max_int64 test_max_int8 test_max_uint16 test_max_uint32 test_max_uint64
        test_max_uint8 test_min_int16 test_min_int32 test_min_int64 test_min_int8 test_min_uint16 test_min_uint32
        test_min_uint64 test_min_uint8 test_pow_types_int32_int32 test_pow_types_int64_int64
        test_pow_types_int32_float32 test_pow_types_int64_float32
        test_clip_default_int8_max test_clip_default_int8_min test_maxpool_2d_uint8
        test_edge_pad test_reflect_pad test_wrap_pad test_reduce_max_bool_inputs test_reduce_min_bool_inputs
        test_reduce_max_empty_set_bool""",
    "float16, float64 and bfloat16 arithmetic": """
        test_celu_bfloat16 test_celu_float16 test_max_float16 test_max_float64 test_min_float16 test_min_float64
        test_reduce_log_sum_exp_default_axes_keepdims_example test_reduce_log_sum_exp_default_axes_keepdims_random
        test_reduce_log_sum_exp_do_not_keepdims_example test_reduce_log_sum_exp_do_not_keepdims_random
        test_reduce_log_sum_exp_keepdims_example test_reduce_log_sum_exp_keepdims_random
        test_reduce_log_sum_exp_negative_axes_keepdims_example test_reduce_log_sum_exp_negative_axes_keepdims_random""",
    # a tensor with a 0 dim holds nothing to compute; clnn refuses it by name
    "empty tensors": """
        test_reduce_l1_empty_set test_reduce_l1_empty_set_expanded test_reduce_l2_empty_set
        test_reduce_log_sum_empty_set test_reduce_log_sum_empty_set_expanded test_reduce_log_sum_exp_empty_set
        test_reduce_max_empty_set test_reduce_min_empty_set test_reduce_prod_empty_set test_reduce_sum_empty_set
        test_reduce_sum_empty_set_non_reduced_axis_zero test_reduce_sum_square_empty_set
        test_reduce_sum_square_empty_set_expanded test_slice_start_out_of_bounds test_split_zero_size_splits_opset13
        test_reshape_allowzero_reordered
        test_split_zero_size_splits_opset18""",
    # inference only
    "training mode": """
        test_batchnorm_epsilon_training_mode test_batchnorm_example_training_mode test_training_dropout
        test_training_dropout_default test_training_dropout_default_mask test_training_dropout_mask
        test_training_dropout_zero_ratio test_training_dropout_zero_ratio_mask""",
    # Dropout's mask, MaxPool's indices (storage_order orders only those), LayerNormalization's
    # mean and inverse deviation (training statistics)
    "optional outputs clnn does not compute": """
        test_dropout_default_mask test_dropout_default_mask_ratio test_maxpool_with_argmax_2d_precomputed_pads
        test_maxpool_with_argmax_2d_precomputed_strides """ + " ".join(
        f"test_layer_normalization_{case}" for case in """2d_axis0 2d_axis1 2d_axis_negative_1 2d_axis_negative_2
        3d_axis0_epsilon 3d_axis1_epsilon 3d_axis2_epsilon 3d_axis_negative_1_epsilon 3d_axis_negative_2_epsilon
        3d_axis_negative_3_epsilon 4d_axis0 4d_axis1 4d_axis2 4d_axis3 4d_axis_negative_1 4d_axis_negative_2
        4d_axis_negative_3 4d_axis_negative_4 default_axis""".split()),
    "sequence and optional inputs": "test_identity_opt test_identity_sequence",
    # clnn computes outputs from inputs; a graph of constants is folded away
    "a graph without inputs": "test_constant",
    "opsets below 11": "test_upsample_nearest",
    # a Cast of a float32 tensor to float32 is the tensor; casts to or from other types are refused by type
    "casts between other element types": """
        test_cast_BFLOAT16_to_FLOAT test_cast_DOUBLE_to_FLOAT test_cast_DOUBLE_to_FLOAT16
        test_cast_FLOAT16_to_DOUBLE test_cast_FLOAT16_to_FLOAT test_cast_FLOAT16_to_FLOAT4E2M1
        test_cast_FLOAT16_to_FLOAT8E4M3FN test_cast_FLOAT16_to_FLOAT8E4M3FNUZ test_cast_FLOAT16_to_FLOAT8E5M2
        test_cast_FLOAT16_to_FLOAT8E5M2FNUZ test_cast_FLOAT16_to_INT2 test_cast_FLOAT16_to_INT4
        test_cast_FLOAT16_to_UINT2 test_cast_FLOAT16_to_UINT4 test_cast_FLOAT4E2M1_to_FLOAT
        test_cast_FLOAT4E2M1_to_FLOAT16 test_cast_FLOAT8E4M3FNUZ_to_FLOAT test_cast_FLOAT8E4M3FNUZ_to_FLOAT16
        test_cast_FLOAT8E4M3FN_to_FLOAT test_cast_FLOAT8E4M3FN_to_FLOAT16 test_cast_FLOAT8E5M2FNUZ_to_FLOAT
        test_cast_FLOAT8E5M2FNUZ_to_FLOAT16 test_cast_FLOAT8E5M2_to_FLOAT test_cast_FLOAT8E5M2_to_FLOAT16
        test_cast_FLOAT_to_BFLOAT16 test_cast_FLOAT_to_DOUBLE test_cast_FLOAT_to_FLOAT16
        test_cast_FLOAT_to_FLOAT4E2M1 test_cast_FLOAT_to_FLOAT8E4M3FN test_cast_FLOAT_to_FLOAT8E4M3FNUZ
        test_cast_FLOAT_to_FLOAT8E5M2 test_cast_FLOAT_to_FLOAT8E5M2FNUZ test_cast_FLOAT_to_INT2
        test_cast_FLOAT_to_INT4 test_cast_FLOAT_to_UINT2 test_cast_FLOAT_to_UINT4 test_cast_INT2_to_FLOAT
        test_cast_INT2_to_FLOAT16 test_cast_INT2_to_INT8 test_cast_INT4_to_FLOAT test_cast_INT4_to_FLOAT16
        test_cast_INT4_to_INT8 test_cast_UINT2_to_FLOAT test_cast_UINT2_to_FLOAT16 test_cast_UINT2_to_UINT8
        test_cast_UINT4_to_FLOAT test_cast_UINT4_to_FLOAT16 test_cast_UINT4_to_UINT8
        test_cast_e8m0_FLOAT16_to_FLOAT8E8M0 test_cast_e8m0_FLOAT8E8M0_to_FLOAT
        test_cast_e8m0_FLOAT8E8M0_to_FLOAT16 test_cast_e8m0_FLOAT_to_FLOAT8E8M0
        test_cast_no_saturate_FLOAT16_to_FLOAT8E4M3FN test_cast_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ
        test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2 test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ
        test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FN test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ
        test_cast_no_saturate_FLOAT_to_FLOAT8E5M2 test_cast_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ
        test_castlike_BFLOAT16_to_FLOAT_expanded test_castlike_DOUBLE_to_FLOAT16_expanded
        test_castlike_DOUBLE_to_FLOAT_expanded test_castlike_FLOAT16_to_DOUBLE_expanded
        test_castlike_FLOAT16_to_FLOAT4E2M1_expanded test_castlike_FLOAT16_to_FLOAT8E4M3FNUZ_expanded
        test_castlike_FLOAT16_to_FLOAT8E4M3FN_expanded test_castlike_FLOAT16_to_FLOAT8E5M2FNUZ_expanded
        test_castlike_FLOAT16_to_FLOAT8E5M2_expanded test_castlike_FLOAT16_to_FLOAT_expanded
        test_castlike_FLOAT16_to_INT2_expanded test_castlike_FLOAT16_to_INT4_expanded
        test_castlike_FLOAT16_to_UINT2_expanded test_castlike_FLOAT16_to_UINT4_expanded
        test_castlike_FLOAT4E2M1_to_FLOAT16_expanded test_castlike_FLOAT4E2M1_to_FLOAT_expanded
        test_castlike_FLOAT8E4M3FNUZ_to_FLOAT16_expanded test_castlike_FLOAT8E4M3FNUZ_to_FLOAT_expanded
        test_castlike_FLOAT8E4M3FN_to_FLOAT16_expanded test_castlike_FLOAT8E4M3FN_to_FLOAT_expanded
        test_castlike_FLOAT8E5M2FNUZ_to_FLOAT16_expanded test_castlike_FLOAT8E5M2FNUZ_to_FLOAT_expanded
        test_castlike_FLOAT8E5M2_to_FLOAT16_expanded test_castlike_FLOAT8E5M2_to_FLOAT_expanded
        test_castlike_FLOAT_to_BFLOAT16_expanded test_castlike_FLOAT_to_DOUBLE_expanded
        test_castlike_FLOAT_to_FLOAT16_expanded test_castlike_FLOAT_to_FLOAT4E2M1_expanded
        test_castlike_FLOAT_to_FLOAT8E4M3FNUZ_expanded test_castlike_FLOAT_to_FLOAT8E4M3FN_expanded
        test_castlike_FLOAT_to_FLOAT8E5M2FNUZ_expanded test_castlike_FLOAT_to_FLOAT8E5M2_expanded
        test_castlike_FLOAT_to_INT2_expanded test_castlike_FLOAT_to_INT4_expanded
        test_castlike_FLOAT_to_UINT2_expanded test_castlike_FLOAT_to_UINT4_expanded
        test_castlike_INT2_to_FLOAT16_expanded test_castlike_INT2_to_FLOAT_expanded
        test_castlike_INT2_to_INT8_expanded test_castlike_INT4_to_FLOAT16_expanded
        test_castlike_INT4_to_FLOAT_expanded test_castlike_INT4_to_INT8_expanded
        test_castlike_UINT2_to_FLOAT16_expanded test_castlike_UINT2_to_FLOAT_expanded
        test_castlike_UINT2_to_UINT8_expanded test_castlike_UINT4_to_FLOAT16_expanded
        test_castlike_UINT4_to_FLOAT_expanded test_castlike_UINT4_to_UINT8_expanded
        test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ_expanded
        test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN_expanded
        test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ_expanded
        test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2_expanded
        test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ_expanded
        test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN_expanded
        test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ_expanded
        test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2_expanded""",
    "3-D windows (clnn runs 1-D and 2-D convolutions and pools)": """
        test_convtranspose_3d test_averagepool_3d_default test_averagepool_3d_dilations_small
        test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False
        test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True
        test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False
        test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True
        test_maxpool_3d_default test_maxpool_3d_dilations test_maxpool_3d_dilations_use_ref_impl
        test_maxpool_3d_dilations_use_ref_impl_large""",
    # refused by name: Resize interpolates nearest and linear, without antialiasing
    "cubic and antialiased resizing": """
        test_resize_upsample_sizes_cubic test_resize_upsample_scales_cubic_asymmetric
        test_resize_upsample_scales_cubic_align_corners test_resize_upsample_scales_cubic_A_n0p5_exclude_outside
        test_resize_upsample_scales_cubic test_resize_downsample_sizes_linear_antialias
        test_resize_downsample_sizes_cubic_antialias test_resize_downsample_sizes_cubic
        test_resize_downsample_scales_linear_antialias test_resize_downsample_scales_cubic_antialias
        test_resize_downsample_scales_cubic_align_corners test_resize_downsample_scales_cubic_A_n0p5_exclude_outside
        test_resize_downsample_scales_cubic""",
    # onnx's reference divides by the unrounded output size (2.4) where onnxruntime,
    # and clnn after it, divide by the output's (2): 3.1429 against 4.0
    "onnx's reference and onnxruntime disagree": "test_resize_downsample_scales_linear_align_corners",
})

# Cases of supported ops that clnn refuses today (with a ModelError) and should run
# once the layers land. Take a case off when it passes: its xfail is strict.
NOT_YET = _reasons({})


def selected():
    supported = supported_ops()
    return sorted(name for name, (model, *_) in node_cases().items() if not unsupported(model, supported))


def params():
    """The selected cases, with their exclusion or expected failure."""
    found = []
    for name in selected():
        if name in EXCLUDED:
            found.append(pytest.param(name, marks=pytest.mark.skip(reason=EXCLUDED[name])))
        elif name in NOT_YET:
            found.append(pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=clnn.ModelError,
                                                                  reason=NOT_YET[name])))
        else:
            found.append(name)
    return found


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        # tox -e oclgrind runs only the tests marked oclgrind: spare it generating the cases
        only_oclgrind = metafunc.config.getoption("markexpr") == "oclgrind"
        metafunc.parametrize("case", [] if only_oclgrind else params())


def test_node_case(case, devices):
    run_case(case, devices[0])


def test_lists_name_selected_cases():
    """EXCLUDED and NOT_YET name only cases that the harness selects, each once."""
    chosen = set(selected())
    assert not set(EXCLUDED) - chosen, sorted(set(EXCLUDED) - chosen)
    assert not set(NOT_YET) - chosen, sorted(set(NOT_YET) - chosen)
    assert not set(EXCLUDED) & set(NOT_YET)
