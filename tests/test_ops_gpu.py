"""The GPU kernel variants that a tuning chooses between, each forced on its
own (GEMM tiles, K split into slices, Winograd F(4x4) and F(2x2), GEMV
work-group shapes), against the numpy reference and split over two devices;
the input rows that Winograd reads; where element-wise kernels take a plane
grid."""

import pytest

from clnn import Model
from clnn.box import Box
from clnn.ops import Activation, Binary, GemmTile, GemvShape, Target, Tuning
from clnn.plan import Plan

from helpers import TOL, check_slices, rand, rel_err, run, split_plan
from test_ops import build, conv

EVERYWHERE = {"winograd_min_channels": 1, "winograd_min_tiles": 1}
VARIANTS = {
    "gemm128x128": Tuning(conv_tiles=(GemmTile(128, 128, 8, 8, 8),), winograd=0),
    "gemm64x128": Tuning(conv_tiles=(GemmTile(64, 128, 8, 4, 8),), winograd=0),
    # a wave too big for any layer here to fill: K is split as far as it goes
    "gemm32x32-split-k": Tuning(conv_tiles=(GemmTile(32, 32, 8, 4, 4),), winograd=0, wg_per_cu=10_000,
                                min_split_steps=1),
    "winograd4": Tuning(winograd=4, **EVERYWHERE),
    "winograd2-128x64": Tuning(winograd=2, conv_tiles=(GemmTile(128, 64, 16, 8, 4),), **EVERYWHERE),
    # one warp along K; one row per work-item
    "gemv-kl32-rr1": Tuning(gemv=(GemvShape(16, 64, 32, 1),)),
    "gemv-kl128-rr2": Tuning(gemv=(GemvShape(16, 256, 128, 2),)),
}
# each variant with the cases whose kernels it changes
GEMM_CASES = ["conv3x3", "conv_residual", "conv_big_k", "conv3x3_odd_residual", "conv_stride2_nobias", "conv_wide_k",
              "dense_gemv_b17", "flatten_dense"]
WINOGRAD_CASES = ["conv3x3", "conv_residual", "conv_big_k", "conv3x3_odd_residual", "conv3x3_asym_pads",
                  "conv3x3_no_pads"]
GEMV_CASES = ["dense_gemv_b3", "dense_gemv_b16_odd_k", "dense_gemv_b5_many_rows", "flatten_dense"]
CASES = {"gemm128x128": GEMM_CASES, "gemm64x128": GEMM_CASES, "gemm32x32-split-k": GEMM_CASES,
         "winograd4": WINOGRAD_CASES, "winograd2-128x64": WINOGRAD_CASES,
         "gemv-kl32-rr1": GEMV_CASES, "gemv-kl128-rr2": GEMV_CASES}
SLICED = {"conv3x3_odd_residual", "conv_big_k", "dense_gemv_b16_odd_k", "flatten_dense"}


@pytest.mark.oclgrind
@pytest.mark.parametrize("variant, name", [(v, n) for v, names in CASES.items() for n in names])
def test_gpu_variants_match_reference(name, variant, device, rng):
    model, feeds = build(name, rng)
    (actual,) = run(model, feeds, Plan.single(model, device), [device], kind="gpu", tuning=VARIANTS[variant])
    assert rel_err(actual, model.reference(feeds)[0]) < TOL


@pytest.mark.parametrize("variant", ["winograd4", "winograd2-128x64", "gemm32x32-split-k"])
def test_gpu_variants_at_512_input_channels(variant, device, rng):
    """Winograd's transforms and a K split into slices keep the error
    within TOL where 4608 products add up."""
    inputs, layers = conv((2, 512, 9, 7), 6, 3, pads=1, residual=True)(rng)
    model = Model(inputs, layers, [layers[-1].name])
    feeds = {k: rand(rng, v) for k, v in inputs.items()}
    (actual,) = run(model, feeds, Plan.single(model, device), [device], kind="gpu", tuning=VARIANTS[variant])
    assert rel_err(actual, model.reference(feeds)[0]) < TOL


@pytest.mark.parametrize("variant, name", [(v, n) for v, names in CASES.items() for n in names if n in SLICED])
def test_gpu_variant_slices_equal_the_whole(name, variant, pair, rng, monkeypatch):
    model, feeds = build(name, rng)
    for layer in model.layers:
        monkeypatch.setattr(layer, "granule", lambda dim: 1)
    check_slices(model, feeds, pair, "platform", "auto", "gpu", VARIANTS[variant])


@pytest.mark.parametrize("variant", [pytest.param("winograd4", marks=pytest.mark.oclgrind), "winograd2-128x64"])
def test_winograd_row_slices_are_copied_their_whole_tiles(variant, device, rng):
    """Row slices on one device with resident buffers: each is copied the
    input rows of its whole tiles (kernel_input_box), which its windows
    alone do not cover."""
    model, feeds = build("conv3x3_odd_residual", rng)
    expected = model.reference(feeds)[0]
    for shares in ((0.5, 0.5), (0.3, 0.7)):
        plan = split_plan(model, (device, device), "h", shares)
        (actual,) = run(model, feeds, plan, [device], memory="discrete", kind="gpu", tuning=VARIANTS[variant])
        assert rel_err(actual, expected) < TOL, shares


def test_winograd_reads_whole_tiles_of_rows(rng):
    """Winograd kernels (the GPU's and the CPU's) read the input rows of
    whole 4-row tiles, clipped to the input; other kernels only the rows
    their windows cover."""
    model, _ = build("conv3x3_odd_residual", rng)
    layer = model.layers[0]
    for winograd in (Target("gpu", tuning=VARIANTS["winograd4"]), Target("cpu")):
        assert layer.kernel_input_box(Box(0, 1, 0, 7, 5, 6), 0, winograd) == Box(0, 1, 0, 5, 3, 9)
        assert layer.kernel_input_box(Box(0, 1, 0, 7, 9, 11), 0, winograd) == Box(0, 1, 0, 5, 7, 11)
        assert layer.kernel_input_box(Box(0, 1, 0, 7, 5, 6), 1, winograd) == Box(0, 1, 0, 7, 5, 6)
    assert layer.kernel_input_box(Box(0, 1, 0, 7, 5, 6), 0, Target("gpu", tuning=Tuning(winograd=0))) == \
        Box(0, 1, 0, 5, 4, 7)


def _options(layer, in_dims):
    layer.bind(in_dims)
    return [launch.options for launch in layer.launches(Target("gpu"), Box.whole(layer.out_shape))]


def test_elementwise_kernels_take_a_plane_grid_where_it_fits():
    """The box kernels run on a plane grid on GPUs; the strided
    (broadcasting) kernel, and a tensor whose elements lie along more batch
    items than a grid dimension holds, run flat."""
    assert _options(Binary("y", ("a", "b"), "Add"), [(2, 3, 5, 7)] * 2) == [("-DCLNN_PLANE_GRID",)]
    assert _options(Binary("y", ("a", "b"), "Mul"), [(2, 3, 5, 7), (5, 1)]) == [()]
    assert _options(Activation("y", "x", "relu"), [(70000,)]) == [()]


def test_a_long_vector_runs_flat_on_the_gpu_kernels(device, rng):
    model = Model({"x": (70001,), "b": (70001,)}, [Binary("y", ("x", "b"), "Sub", activation="relu")], ["y"])
    feeds = {"x": rand(rng, (70001,)), "b": rand(rng, (70001,))}
    (actual,) = run(model, feeds, Plan.single(model, device), [device], kind="gpu")
    assert rel_err(actual, model.reference(feeds)[0]) < TOL
