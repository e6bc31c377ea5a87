"""Kernel parameters: what a tuning accepts, how the command line changes
it, how the GEMM is cut into work-groups, and the autotuner's search (GPU
kernels forced on the test devices)."""

from dataclasses import replace

import numpy as np
import pytest

import clnn
from clnn.ops import Conv2d, CpuBlocks, Dense, GemmTile, GemvShape, MatMul, Target, Tuning
from clnn.ops.gemm import plan_gemm
from clnn.ops.tuning import DEFAULT, TUNED, tuning_for
from clnn.partition import tune

from helpers import target


@pytest.mark.parametrize("tile", [(64, 64, 16, 3, 4), (64, 64, 16, 4, 6), (16, 128, 8, 4, 8), (32, 32, 3, 4, 4)])
def test_a_tile_the_kernels_cannot_run_is_refused(tile):
    with pytest.raises(clnn.DeviceError, match="not valid"):
        GemmTile(*tile)


@pytest.mark.parametrize("shape", [(16, 256, 48, 4), (16, 512, 64, 4), (16, 256, 32, 1)])
def test_a_gemv_shape_the_kernel_cannot_run_is_refused(shape):
    with pytest.raises(clnn.DeviceError, match="not valid"):
        GemvShape(*shape)


@pytest.mark.parametrize("change", [{"winograd": 3}, {"conv_tiles": ()}, {"gemv": ()}, {"wg_per_cu": 0}])
def test_a_tuning_the_kernels_cannot_take_is_refused(change):
    with pytest.raises(clnn.DeviceError, match="not valid"):
        replace(DEFAULT, **change)


def test_devices_without_a_record_take_the_table_or_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("CLNN_CACHE_DIR", str(tmp_path))  # no tuning record of this machine's
    device = clnn.select(None)[0]
    shipped = TUNED.get(device.name, DEFAULT)   # the H200 has a row in the table
    assert tuning_for(device) is shipped
    assert Target.of(device).tuning is shipped
    mine = Tuning(winograd=2)
    assert Target.of(device, mine).tuning is mine
    assert hash(Target.of(device, mine)) == hash(Target.of(device, Tuning(winograd=2)))


def test_overrides_read_the_command_line_forms():
    tuning = DEFAULT.with_overrides({"conv_tiles": "128x64x16/8x4+64x64x16/4x4", "winograd": "2",
                                     "gemv": "b16/LS256/KL128/RR2", "build_options": "-cl-nv-maxrregcount=128",
                                     "cpu_blocks.PBNB": "32", "wg_per_cu": 3})
    assert tuning.conv_tiles == (GemmTile(128, 64, 16, 8, 4), GemmTile(64, 64, 16, 4, 4))
    assert tuning.winograd == 2 and tuning.wg_per_cu == 3
    assert tuning.gemv == (GemvShape(16, 256, 128, 2),)
    assert tuning.build_options == ("-cl-nv-maxrregcount=128",)
    assert tuning.cpu_blocks == CpuBlocks(PBNB=32)
    assert tuning.max_split == DEFAULT.max_split  # the rest as it was
    assert [GemmTile.parse(str(t)) for t in DEFAULT.conv_tiles] == list(DEFAULT.conv_tiles)
    assert [GemvShape.parse(str(s)) for s in DEFAULT.gemv] == list(DEFAULT.gemv)


@pytest.mark.parametrize("values, message", [
    ({"conv.gpu.TM": "128"}, "no tuning parameter 'conv.gpu.TM'"),
    ({"cpu_blocks": "6"}, "no tuning parameter 'cpu_blocks'"),
    ({"cpu_blocks.NR": "4"}, "no tuning parameter 'cpu_blocks.NR'"),
    ({"winograd": "four"}, "takes an integer"),
    ({"conv_tiles": "128x128"}, "TMxTNxTK/RMxRN"),
    ({"gemv": "LS256/KL64/RR4"}, "bMAXBATCH"),
    ({"matmul.gpu.TK": "4"}, "no tuning parameter 'matmul.gpu.TK'"),
    ({"op_params": "1"}, "no tuning parameter 'op_params'"),
    ({"rows.groups_from": "many"}, "takes an integer"),
])
def test_overrides_refuse_unknown_names_and_bad_values(values, message):
    with pytest.raises(clnn.InputError, match=message):
        DEFAULT.with_overrides(values)


def test_the_cpu_blocking_reaches_the_cpu_kernels():
    """MR reaches the GEMM (a strided convolution) and Winograd (3x3 stride
    1), doubled on vectors of 16 floats; the weights come in its panels."""
    cpu = Target("cpu", tuning=DEFAULT.with_overrides({"cpu_blocks.MR": "8"}))
    for stride, kernel, packed in ((2, "clnn_conv_gemm_cpu", "w"), (1, "clnn_conv_winograd_cpu", "u")):
        layer = Conv2d("conv", "x", np.ones((16, 8, 3, 3), np.float32), pads=1, stride=stride)
        layer.bind([(1, 8, 9, 9)])
        for target_, mr in ((cpu, 8), (replace(cpu, vector_width=16), 16)):
            (launch,) = layer.launches(target_, clnn.box.Box.whole(layer.out_shape))
            assert launch.kernel == kernel and f"-DMR={mr}" in launch.options
            assert layer.params(target_)[packed].shape[0] == 16 // mr  # panels of MR output channels


def test_op_parameters_override_the_defaults_their_modules_keep():
    """Parameters of the ops outside the GEMM family (MatMul's tile, the row
    kernels' choice) live in Tuning.op_params; Target.tuned applies those of
    one group over a module's defaults."""
    tuning = DEFAULT.with_overrides({"matmul.gpu.RT": "2", "rows.groups_from": 0})
    assert tuning.with_overrides({"matmul.gpu.RM": 8}).op_params == (
        ("matmul.gpu.RM", 8), ("matmul.gpu.RT", 2), ("rows.groups_from", 0))
    gpu, cpu = Target("gpu", tuning=tuning), Target("cpu", tuning=tuning)
    assert gpu.tuned("matmul.gpu", {"RT": 4, "RM": 4}) == {"RT": 2, "RM": 4}
    assert cpu.tuned("matmul.cpu", {"RT": 8, "RM": 8}) == {"RT": 8, "RM": 8}
    assert gpu.tuned("rows", {"groups_from": 128, "groups_below": 7}) == {"groups_from": 0, "groups_below": 7}
    layer = MatMul("mm", "x", np.ones((6, 5), np.float32))
    layer.bind([(3, 4, 6)])
    (launch,) = layer.launches(gpu, clnn.box.Box.whole(layer.out_shape))
    assert "-DRT=2" in launch.options and "-DRM=4" in launch.options


def test_k_is_split_only_where_tiles_leave_compute_units_idle():
    gpu = Target("gpu", 132, 49152, 1024)
    busy = plan_gemm(gpu, 256, 16 * 56 * 56, 576)
    assert busy.slices == 1 and busy.kc >= 576
    deep = plan_gemm(gpu, 512, 49, 4608)
    assert deep.slices > 1
    assert deep.kc % deep.tile.TK == 0 and (deep.slices - 1) * deep.kc < 4608 <= deep.slices * deep.kc
    size, local = deep.groups(512, 49)
    assert size[2] == deep.slices and all(s % step == 0 for s, step in zip(size, local))
    assert plan_gemm(gpu, 512, 49, 4608, batch=36, split=False).slices == 1


def test_tiles_that_do_not_fit_the_device_are_passed_over():
    small = Target("gpu", 4, 16384, 256, Tuning(conv_tiles=(GemmTile(128, 128, 16, 8, 8), GemmTile(64, 64, 16, 4, 4))))
    assert plan_gemm(small, 512, 512, 512).tile == GemmTile(64, 64, 16, 4, 4)
    with pytest.raises(clnn.DeviceError, match="no GEMM tile"):
        plan_gemm(Target("gpu", 4, 4096, 256), 512, 512, 512)


def _layers(rng):
    conv = Conv2d("conv", "x", rng.standard_normal((16, 8, 3, 3)).astype(np.float32), None, pads=1)
    conv.bind([(2, 8, 9, 9)])
    dense = Dense("dense", "x", rng.standard_normal((10, 30)).astype(np.float32))
    dense.bind([(3, 30)])
    return [conv, dense]


def test_autotune_keeps_the_fastest_candidate_of_each_knob(device, rng):
    heard = []
    knobs = {"winograd": [4, 0], "gemv": [(GemvShape(16, 64, 32, 2),), (GemvShape(16, 128, 32, 4),)]}
    start = target(device, "gpu", Tuning(winograd_min_channels=1, winograd_min_tiles=1))
    best = tune.autotune(device, _layers(rng), knobs, reps=2, start=start,
                             report=lambda knob, value, seconds: heard.append((knob, value, seconds))).tuning
    assert [(k, v) for k, v, _ in heard] == [(k, v) for k, values in knobs.items() for v in values]
    assert all(seconds > 0 for _, _, seconds in heard)
    for knob in knobs:
        totals = {repr(v): s for k, v, s in heard if k == knob}
        assert totals[repr(getattr(best, knob))] == min(totals.values())
    assert best.winograd_min_tiles == 1  # knobs not searched keep the start's values


def test_replayed_kernels_leave_the_output_as_one_run_does(device, rng):
    layer = _layers(rng)[0]
    executor, feeds, output = tune.layer_run(layer, device, target(device, "gpu", Tuning(winograd=0)))
    assert tune.replay_seconds(executor, 3) > 0
    (again,) = executor.run(feeds)
    np.testing.assert_array_equal(output, again)
    np.testing.assert_allclose(output, layer.reference(feeds["in0"]), rtol=1e-4, atol=1e-4)
