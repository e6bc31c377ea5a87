"""Every kernel source translates to CUDA and compiles with NVRTC for the
Jetson GPUs clnn.cuda is for, Xavier (sm_72) and Orin (sm_87), with the
build options that layers use and with none. Needs NVRTC, not a GPU."""

import numpy as np
import pytest

import clnn
from clnn.box import Box
from clnn.cuda import nvrtc
from clnn.ops import LRN, Activation, Conv2d, ConvTranspose2d, Dense, GemmTile, MatMul, Pool, Resize, Target, Tuning
from clnn import sources

pytest.importorskip("cuda.bindings.nvrtc", reason="needs clnn[cuda] (cuda-bindings and CUDA 12's NVRTC)")

ARCHITECTURES = {"xavier-sm72": (7, 2), "orin-sm87": (8, 7)}


def nvrtc_major():
    from cuda.bindings import nvrtc as rtc
    return rtc.nvrtcVersion()[1]


def _layer_builds():
    """(source, options) of every launch that the layers with build options
    make, for CPU and GPU targets: a convolution (GEMM tiles of the default
    tuning, a K split, Winograd with both tile sizes; on CPUs Winograd in
    4x4 and in 2x2 tiles), a grouped one, dense
    layers at GEMV batches and at a GEMM batch, a pool (window built in), an
    element-wise layer (plane grid), LRN (window and beta built in), MatMul
    (tile built in), ConvTranspose (channel block) and Resize (modes)."""
    rng = np.random.default_rng(0)
    layers = [
        (Conv2d("conv", "x", rng.standard_normal((8, 4, 3, 3))), (2, 4, 9, 9)),
        (Conv2d("deep", "x", rng.standard_normal((256, 256, 3, 3))), (1, 256, 7, 7)),
        (Conv2d("dw", "x", rng.standard_normal((8, 1, 3, 3)), groups=4), (2, 4, 9, 9)),
        (Dense("fc", "x", rng.standard_normal((8, 16))), (1, 16)),
        (Dense("fc", "x", rng.standard_normal((8, 16))), (16, 16)),
        (Dense("fc", "x", rng.standard_normal((8, 16))), (64, 16)),
        (Pool("pool", "x", "max", kernel=3, stride=2), (1, 8, 9, 9)),
        (Activation("relu", "x", "relu"), (2, 8, 5, 5)),
        (LRN("lrn", "x", 5), (1, 8, 5, 5)),
        (MatMul("mm", "x", rng.standard_normal((6, 5))), (3, 4, 6)),
        (ConvTranspose2d("up", "x", rng.standard_normal((4, 8, 3, 3)), stride=2), (1, 4, 5, 5)),
        (Resize("nearest", "x", (2, 2)), (1, 4, 5, 5)),
        (Resize("linear", "x", (2, 2), mode="linear"), (1, 4, 5, 5)),
    ]
    everywhere = {"winograd_min_channels": 1, "winograd_min_tiles": 1}
    targets = [Target("cpu"), Target("gpu", 132), Target("gpu", 132, tuning=Tuning(winograd=4, **everywhere)),
               Target("gpu", 132, tuning=Tuning(winograd=2, conv_tiles=(GemmTile(128, 64, 16, 8, 4),), **everywhere))]
    found = set()
    for layer, shape in layers:
        layer.bind([shape])
        for target in targets:
            for launch in layer.launches(target, Box.whole(layer.out_shape)):
                found.add((launch.source, tuple(launch.options)))
    return found


BUILDS = sorted({(name, ()) for name in sources.source_names()} | _layer_builds())


@pytest.mark.parametrize("capability", ARCHITECTURES.values(), ids=ARCHITECTURES.keys())
@pytest.mark.parametrize("source, options", BUILDS,
                         ids=[f"{s}[{' '.join(o) or 'defaults'}]" for s, o in BUILDS])
def test_every_kernel_compiles_for_jetson(source, options, capability):
    if capability == (7, 2) and nvrtc_major() >= 13:
        pytest.skip("CUDA 13's NVRTC no longer targets sm_72; clnn[cuda] pins CUDA 12's, which CI runs")
    image = nvrtc.build(source, options, capability)
    assert image.startswith(b"\x7fELF")  # a cubin of the GPU's own architecture: no JIT on the board


def test_layers_use_build_options():
    """The option sets above are not all empty (else the layers changed)."""
    assert any(options for _, options in BUILDS)


def test_a_compile_error_carries_the_nvrtc_log(monkeypatch):
    monkeypatch.setattr(sources, "load_source",
                        lambda name: "__kernel void clnn_broken(__global float *x) { x[0] = undeclared_name; }")
    with pytest.raises(clnn.DeviceError, match="undeclared_name") as info:
        nvrtc.build("broken_for_test", (), (8, 7))
    assert "broken_for_test" in str(info.value)


def test_opencl_options_map_or_drop():
    assert nvrtc.nvrtc_options(("-cl-mad-enable", "-cl-std=CL1.2", "-DTM=64")) == ["--fmad=true", "-DTM=64"]


def test_a_gpu_newer_than_nvrtc_gets_ptx_and_an_older_one_an_error():
    arch, cubin = nvrtc.target((99, 0))
    assert arch == f"compute_{max(nvrtc.supported_architectures())}" and not cubin
    with pytest.raises(clnn.DeviceError, match="cannot compile"):
        nvrtc.target((1, 0))
