"""The spatial layers (Resize, ConvTranspose, batched MatMul, 1-D
convolution and pooling) against their numpy references, as
tests/test_ops.py checks the others: on every device with the CPU- and the
GPU-tuned kernels, and every slice of every splittable dimension equal to
the whole."""

import pytest

from clnn import Model
from clnn.box import Box
from clnn.ops import Conv2d, ConvTranspose2d, MatMul, Pool, Resize

from helpers import case_model, check_input_boxes, check_reference, check_slices, rand


def single(shape, make):
    def build(rng):
        return {"x": shape}, [make(rng)]
    return build


def resize(shape, scales, **kw):
    return single(shape, lambda rng: Resize("y", "x", scales, **kw))


def conv_transpose(shape, weight, bias=True, **kw):
    return single(shape, lambda rng: ConvTranspose2d("y", "x", rand(rng, weight, 0.3),
                                                     rand(rng, (weight[1] * kw.get("groups", 1),)) if bias else None,
                                                     **kw))


def matmul(a, b, const=None, bias=False, **kw):
    """A @ B of tensors of shapes a and b, or with the constant operand of
    shape ``const`` (B, or A with constant_first=True)."""
    def build(rng):
        shapes = {name: shape for name, shape in (("a", a), ("b", b)) if shape is not None}
        m = (const or b)[-2 if kw.get("trans_b") else -1]
        layer = MatMul("y", list(shapes), rand(rng, const, 0.3) if const else None,
                       bias=rand(rng, (m,)) if bias else None, **kw)
        return shapes, [layer]
    return build


CASES = {
    "resize_nearest_up": resize((2, 3, 5, 7), (2.0, 3.0)),
    "resize_nearest_down_ceil": resize((1, 2, 13, 7), (0.6, 0.5), nearest_mode="ceil",
                                       coordinate_mode="asymmetric"),
    "resize_linear_half_pixel": resize((3, 2, 7, 5), (1.5, 2.5), mode="linear"),
    "resize_linear_align_corners": resize((1, 3, 7, 13), (2.0, 0.7), mode="linear", coordinate_mode="align_corners"),
    "resize_linear_1d": resize((2, 3, 7), (2.5,), mode="linear", coordinate_mode="pytorch_half_pixel"),
    "resize_sizes": resize((1, 2, 5, 7), (13 / 5, 1.0), sizes=(13, 7), mode="linear"),
    "resize_crop_extrapolate": resize((1, 2, 7, 9), (1.7, 0.6), mode="linear", coordinate_mode="tf_crop_and_resize",
                                      roi=((0.2, 1.3), (-0.1, 0.9)), extrapolation_value=3.0),
    "ct_fst_stride2": conv_transpose((1, 4, 5, 6), (4, 3, 3, 3), stride=2, pads=1, output_padding=1,
                                     activation="relu"),
    "ct_groups_dilated": conv_transpose((2, 6, 5, 4), (6, 2, 3, 2), bias=False, groups=3, dilation=(2, 1),
                                        stride=(1, 3), pads=(1, 0, 2, 1), activation=("leaky_relu", 0.1)),
    "ct_depthwise": conv_transpose((1, 5, 7, 7), (5, 1, 3, 3), groups=5, stride=2),
    "ct_grouped_blocks": conv_transpose((2, 4, 5, 3), (4, 8, 3, 3), groups=2, stride=2, pads=1, activation="relu"),
    "ct_output_larger": conv_transpose((1, 3, 4, 3), (3, 2, 2, 2), stride=(3, 2), output_size=(13, 7)),
    "ct_same_lower": conv_transpose((2, 2, 5, 3), (2, 3, 4, 3), stride=2, auto_pad="SAME_LOWER"),
    "ct_1d": conv_transpose((2, 3, 7), (3, 4, 3, 1), stride=(2, 1), pads=(1, 0, 0, 0), activation="tanh"),
    "mm_3d_const": matmul((3, 5, 7), None, (7, 6), bias=True, activation="relu"),
    "mm_wide": matmul((2, 13, 9), None, (9, 70), bias=True),
    "mm_4d_tensors": matmul((2, 3, 5, 4), (2, 3, 4, 6)),
    "mm_batch_broadcast": matmul((3, 2, 5, 4), (1, 2, 4, 6), activation="tanh"),
    "mm_inner_broadcast": matmul((2, 3, 5, 4), (2, 1, 4, 7)),
    "mm_const_first": matmul(None, (2, 4, 6), (5, 4), constant_first=True),
    "mm_const_3d_over_4d": matmul((2, 3, 4, 5), None, (3, 5, 6)),
    "mm_2d_tensors": matmul((7, 5), (5, 3), bias=True),
    "mm_2d_b_over_3d": matmul((2, 7, 5), (5, 3)),
    "mm_5d_const": matmul((2, 2, 3, 4, 5), None, (5, 3)),
    "mm_6d_const": matmul((2, 2, 3, 2, 5, 4), None, (4, 3), bias=True),
    "mm_5d_tensors": matmul((2, 3, 2, 5, 4), (2, 3, 2, 4, 6)),
    "gemm_trans_a": matmul((5, 7), None, (5, 3), trans_a=True, alpha=0.5, bias=True),
    "gemm_trans_b_tensor": matmul((4, 5), (3, 5), trans_b=True, alpha=2.0),
    "gemm_trans_both": matmul((5, 4), (3, 5), trans_a=True, trans_b=True, activation="sigmoid"),
    "conv1d": single((2, 5, 13), lambda rng: Conv2d("y", "x", rand(rng, (7, 5, 3, 1), 0.3), rand(rng, (7,)),
                                                    stride=(2, 1), pads=(1, 0, 1, 0), activation="relu")),
    "conv1d_depthwise_dilated": single((1, 6, 13), lambda rng: Conv2d("y", "x", rand(rng, (6, 1, 3, 1), 0.3),
                                                                      groups=6, dilation=(2, 1), pads=(2, 0, 2, 0))),
    "maxpool1d": single((2, 3, 13), lambda rng: Pool("y", "x", "max", (3, 1), (2, 1), pads=(1, 0, 1, 0))),
    "avgpool1d_ceil": single((1, 4, 13), lambda rng: Pool("y", "x", "avg", (2, 1), (2, 1), ceil_mode=True)),
    "global_avgpool1d": single((3, 4, 7), lambda rng: Pool("y", "x", "avg")),
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
    """Two slices on one device with resident buffers: only each slice's
    declared input box is copied in, so a read past it reads NaN."""
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


def test_resize_input_box_is_the_rows_read():
    """A row slice of an upsampling reads only the input rows under it."""
    model = Model({"x": (1, 1, 8, 3)}, [Resize("y", "x", (2.0, 1.0), mode="linear")], ["y"])
    layer = model.layers[0]
    assert layer.input_box(Box(0, 1, 0, 1, 0, 4), 0) == Box(0, 1, 0, 1, 0, 3)
    assert layer.input_box(Box(0, 1, 0, 1, 12, 16), 0) == Box(0, 1, 0, 1, 5, 8)
