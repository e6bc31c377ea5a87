"""The micro-benchmark's peers (clnn.microbench_peers): onnxruntime runs the
same layer as clnn on the CPU (outputs compared, columns printed and
written); the layer -> torch mapping used on GPUs is checked on CPU torch
against each layer's numpy reference; a missing peer or one computing
something else leaves the row without a peer time, and says why."""

import json
import subprocess
import sys

import numpy as np
import pytest

from clnn import models
from clnn.executor import Executor
from clnn.graph import Graph, single_layer
from clnn.microbench_peers import (NoPeer, OrtPeer, Unavailable, cells, measure, peer_for, relative_difference,
                                   torch_op)
from clnn.ops import (LRN, Activation, Binary, Concat, Conv2d, ConvTranspose2d, Dense, InstanceNorm, Pad, Pool, Resize,
                      ScaleShift, Softmax, SpaceToDepth, Transpose)
from clnn.ops.base import ACTIVATION_PARAMS, ACTIVATIONS
from clnn.plan import Plan
from clnn.runtime.device import Device

from helpers import rand

TOL = 1e-4


def zoo_layer(model, wanted):
    """The first layer of a zoo model (batch 1) that ``wanted(layer)`` picks."""
    return next(layer for layer in models.get(model, batch=1).layers if wanted(layer))


ZOO_LAYERS = {
    "lenet5_conv_relu": ("lenet5", lambda x: x.op == "Conv"),
    "lenet5_dense": ("lenet5", lambda x: x.op == "Gemm"),
    "squeezenet_concat": ("squeezenet", lambda x: x.op == "Concat"),
    "resnet18_conv_residual": ("resnet18", lambda x: x.op == "Conv" and x.has_residual),
}


def executor_for(layer, device):
    model = single_layer(layer)
    return model, Executor(model, Plan.single(model, device), [device])


@pytest.mark.parametrize("case", ZOO_LAYERS)
def test_onnxruntime_runs_the_same_layer_as_clnn(case, devices):
    import onnxruntime
    layer = zoo_layer(*ZOO_LAYERS[case])
    model, executor = executor_for(layer, devices[0])
    feeds = {i.name: rand(np.random.default_rng(1), i.shape) for i in model.inputs}
    runner = OrtPeer(onnxruntime, "CPUExecutionProvider", threads=devices[0].compute_units).runner(model, feeds)
    try:
        theirs = runner.output()
    finally:
        runner.close()
    ours = executor.run(feeds)[0]
    reference = layer.reference(*[feeds[n].reshape(s) for n, s in zip(model.input_names, layer.in_shapes)])
    assert theirs.shape == tuple(layer.out_dims)
    assert relative_difference(theirs, reference) < TOL
    assert relative_difference(theirs, ours) < TOL


@pytest.fixture
def cpu(devices):
    """The environment's first CPU device (onnxruntime is the CPUs' peer)."""
    found = [d for d in devices if d.kind == "cpu"]
    if not found:
        pytest.skip("this environment has no CPU device")
    return found[0]


def test_a_cpu_device_is_timed_beside_onnxruntime(cpu):
    layer = zoo_layer("lenet5", lambda x: x.op == "Conv")
    model, executor = executor_for(layer, cpu)
    peer = peer_for(cpu)
    assert isinstance(peer, OrtPeer) and "CPUExecutionProvider" in peer.description
    seconds, row = measure(executor, {"in0": rand(np.random.default_rng(2), model.inputs[0].shape)}, 3, peer)
    assert row["peer"] == "ort" and row["peer_note"] is None and row["peer_rel_err"] < TOL
    assert seconds > 0 and row["peer_seconds"] > 0
    assert row["clnn_per_peer"] == pytest.approx(seconds / row["peer_seconds"])
    assert f"{row['clnn_per_peer']:.2f}" in cells(row)


def test_microbench_prints_and_writes_the_peer_columns(cpu, tmp_path):
    out = tmp_path / "mb.json"
    done = subprocess.run([sys.executable, "-m", "clnn.microbench", "--models", "lenet5", "--ops", "Conv,MaxPool",
                           "--runs", "2", "--devices", cpu.id, "--json", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith(f"peer of {cpu.id}: onnxruntime") for line in lines)
    header = next(line for line in lines if line.startswith("model"))
    assert "peer ms" in header and "clnn/peer" in header
    rows = [line for line in lines if line.startswith("lenet5")]
    results = json.loads(out.read_text())["results"]
    assert len(rows) == len(results) == 4   # two convolutions, two pools
    for line, result in zip(rows, results):
        assert result["peer"] == "ort" and result["peer_rel_err"] < TOL and result["peer_note"] is None
        assert result["clnn_per_peer"] == pytest.approx(result["seconds"] / result["peer_seconds"])
        assert line.split()[-3:] == [f"{result['peer_seconds'] * 1e3:.3f}", f"{result['clnn_per_peer']:.2f}", "ort"]


def test_no_peer_leaves_the_columns_out(devices):
    done = subprocess.run([sys.executable, "-m", "clnn.microbench", "--models", "lenet5", "--ops", "Gemm",
                           "--runs", "1", "--devices", devices[0].id, "--no-peer"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "peer" not in done.stdout


def test_without_onnxruntime_the_row_says_so(cpu, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import onnxruntime now raises ImportError
    peer = peer_for(cpu)
    assert isinstance(peer, NoPeer) and "onnxruntime is not installed" in peer.description
    model, executor = executor_for(zoo_layer("lenet5", lambda x: x.op == "Gemm"), cpu)
    seconds, row = measure(executor, {"in0": np.ones(model.inputs[0].shape, np.float32)}, 2, peer)
    assert seconds > 0 and row["peer_seconds"] is None and "not installed" in row["peer_note"]
    assert cells(row).split() == ["-", "-", "-"]


def test_a_gpu_without_torch_or_a_cuda_provider_has_no_peer(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    gpu = Device(id="opencl:test:0", name="a GPU", kind="gpu", platform="test", backend="opencl",
                 unified_memory=False, compute_units=8)
    peer = peer_for(gpu)
    assert isinstance(peer, NoPeer) and "neither torch" in peer.description


class WrongPeer:
    """A peer computing something else than the layer."""
    description = "wrong"

    class Runner:
        label, shares_cpu = "wrong", False

        def __init__(self, shape):
            self.shape, self.closed = shape, False

        def output(self):
            return np.full(self.shape, 7.0, np.float32)

        def run(self):
            raise AssertionError("a peer whose output differs must not be timed")

        def close(self):
            self.closed = True

    def runner(self, model, feeds):
        self.made = self.Runner(model.layers[0].out_dims)
        return self.made


def test_a_peer_computing_something_else_is_not_timed(devices):
    model, executor = executor_for(zoo_layer("lenet5", lambda x: x.op == "Gemm"), devices[0])
    peer = WrongPeer()
    _, row = measure(executor, {"in0": rand(np.random.default_rng(3), model.inputs[0].shape)}, 2, peer)
    assert row["peer_seconds"] is None and "differs from clnn's" in row["peer_note"] and row["peer_rel_err"] > 0.1
    assert peer.made.closed


# the layer -> torch mapping (the GPU peer), on CPU torch -------------------------------------
def bound(inputs, layer):
    """``layer`` bound in a one-layer graph of inputs {name: shape}."""
    return Graph(inputs, [layer], [layer.name], fuse=False).layers[0]


def weights(rng, *shape):
    return rand(rng, shape, 0.3)


def build_cases():
    rng = np.random.default_rng(4)
    x = {"x": (2, 6, 9, 11)}
    return {
        "conv_relu": (x, Conv2d("y", "x", weights(rng, 5, 6, 3, 3), weights(rng, 5), pads=1, activation="relu")),
        "conv_groups_stride_dilation": (x, Conv2d("y", "x", weights(rng, 4, 3, 3, 2), None, stride=2, dilation=(2, 1),
                                                  groups=2, activation=("leaky_relu", 0.1))),
        "conv_uneven_pads": (x, Conv2d("y", "x", weights(rng, 3, 6, 2, 2), weights(rng, 3), pads=(0, 1, 1, 0))),
        "conv_depthwise_clip": (x, Conv2d("y", "x", weights(rng, 6, 1, 3, 3), weights(rng, 6), pads=1, groups=6,
                                          activation=("clip", 0.0, 6.0))),
        "conv_residual": ({"x": (2, 6, 9, 11), "r": (2, 4, 9, 11)},
                          Conv2d("y", ["x", "r"], weights(rng, 4, 6, 1, 1), weights(rng, 4), activation="relu")),
        "dense": ({"x": (3, 40)}, Dense("y", "x", weights(rng, 7, 40), weights(rng, 7), activation="relu")),
        "dense_from_pool": ({"x": (3, 40, 1, 1)}, Dense("y", "x", weights(rng, 7, 40))),
        "maxpool_ceil": (x, Pool("y", "x", "max", kernel=3, stride=2, ceil_mode=True)),
        "maxpool_pads_dilated": (x, Pool("y", "x", "max", kernel=3, stride=1, pads=1, dilation=2)),
        "avgpool_count_pad": (x, Pool("y", "x", "avg", kernel=3, stride=2, pads=1, count_include_pad=True)),
        "avgpool_pads_excluded": (x, Pool("y", "x", "avg", kernel=3, stride=2, pads=1)),
        "avgpool_ceil": (x, Pool("y", "x", "avg", kernel=2, stride=2, ceil_mode=True)),
        "global_avgpool": (x, Pool("y", "x", "avg")),
        "global_maxpool": (x, Pool("y", "x", "max")),
        "lrn": (x, LRN("y", "x", 5, alpha=1e-3, beta=0.75, bias=2.0)),
        "concat_channels": ({"a": (2, 3, 5, 4), "b": (2, 5, 5, 4)}, Concat("y", ["a", "b"])),
        "concat_rows": ({"a": (2, 3, 5, 4), "b": (2, 3, 2, 4)}, Concat("y", ["a", "b"], axis=2)),
        "softmax": ({"x": (3, 10)}, Softmax("y", "x")),
        "logsoftmax_last": (x, Softmax("y", "x", axis=-1, log=True)),
        "softmax_flattened": (x, Softmax("y", "x", axis=1, flatten=True)),
        "scaleshift_relu": (x, ScaleShift("y", "x", weights(rng, 6), weights(rng, 6), activation="relu")),
        "add_residual": ({"a": (2, 6, 9, 11), "b": (2, 6, 9, 11)}, Binary("y", ["a", "b"], "Add")),
        "add_broadcast": ({"a": (2, 6, 9, 11), "b": (6, 1, 1)}, Binary("y", ["a", "b"], "Add", activation="relu")),
        "sub_constant_first": (x, Binary("y", "x", "Sub", constant=weights(rng, 11), reverse=True)),
        "div_scalar": (x, Binary("y", "x", "Div", constant=np.float32(3.0))),
        "pow": ({"x": (2, 3, 4)}, Binary("y", "x", "Pow", constant=np.float32(2.0))),
        "max_min_mean": ({"a": (2, 5), "b": (2, 5), "c": (1, 5)}, Binary("y", ["a", "b", "c"], "Mean")),
        "max3": ({"a": (2, 5), "b": (2, 5), "c": (5,)}, Binary("y", ["a", "b", "c"], "Max")),
        "clip_tensors": ({"a": (2, 5), "lo": (2, 5)}, Binary("y", ["a", "lo"], "Clip",
                                                             operands=[0, 1, np.float32(0.5)])),
        "prelu": (x, Binary("y", "x", "PRelu", constant=weights(rng, 6, 1, 1))),
        "space_to_depth_dcr": ({"x": (2, 3, 8, 10)}, SpaceToDepth("y", "x", 2)),
        "space_to_depth_crd": ({"x": (2, 3, 9, 6)}, SpaceToDepth("y", "x", 3, mode="CRD")),
        "pad_reflect": (x, Pad("y", "x", [0, 0, 2, 3, 0, 0, 1, 2], "reflect")),
        "pad_constant_crop": (x, Pad("y", "x", [0, -1, 2, -3, 1, 0, -2, 1], value=0.5)),
        "pad_edge_crop": (x, Pad("y", "x", [0, 0, -1, 2, 0, 0, 3, -2], "edge")),
        "pad_wrap_channels": (x, Pad("y", "x", [0, 1, 2, 3, 0, 2, 1, 0], "wrap")),
        "pad_edge_first_dim": ({"x": (5, 7)}, Pad("y", "x", [1, 0, 2, 3], "edge")),
        "pad_reflect_rank5": ({"x": (2, 3, 4, 5, 6)}, Pad("y", "x", [0, 0, 0, 1, 2, 0, 0, 0, 2, 1], "reflect")),
        "instance_norm": (x, InstanceNorm("y", "x", weights(rng, 6), weights(rng, 6), epsilon=1e-3)),
        "conv_transpose_output_padding": (x, ConvTranspose2d("y", "x", weights(rng, 6, 4, 3, 3), weights(rng, 4),
                                                             stride=2, pads=1, output_padding=1, activation="relu")),
        "conv_transpose_groups_uneven_pads": (x, ConvTranspose2d("y", "x", weights(rng, 6, 3, 3, 2), weights(rng, 6),
                                                                 stride=(2, 3), pads=(1, 0, 2, 1), dilation=(2, 1),
                                                                 groups=2)),
        "conv_transpose_output_size_beyond": (x, ConvTranspose2d("y", "x", weights(rng, 6, 4, 3, 3), weights(rng, 4),
                                                                 stride=2, output_size=(21, 25))),
        "conv_transpose_1d": ({"x": (2, 6, 9)}, ConvTranspose2d("y", "x", weights(rng, 6, 5, 4, 1), None, stride=2,
                                                                 activation=("leaky_relu", 0.1))),
        "resize_nearest_floor": (x, Resize("y", "x", (2.0, 2.0), coordinate_mode="asymmetric", nearest_mode="floor")),
        "resize_nearest_half_pixel": (x, Resize("y", "x", (3.0, 2.0))),
        "resize_linear_half_pixel": (x, Resize("y", "x", (1.5, 2.0), mode="linear")),
        "resize_linear_align_corners": (x, Resize("y", "x", (2.0, 1.2), sizes=(20, 13), mode="linear",
                                                  coordinate_mode="align_corners")),
        "resize_linear_1d": ({"x": (2, 3, 7)}, Resize("y", "x", (2.0,), mode="linear",
                                                      coordinate_mode="pytorch_half_pixel")),
        "transpose_nhwc": (x, Transpose("y", "x", (0, 2, 3, 1))),
        "transpose_reversed_rank5": ({"x": (2, 3, 4, 5, 6)}, Transpose("y", "x")),
    }


CASES = build_cases()


def check_torch(inputs, layer, rng):
    torch = pytest.importorskip("torch")   # CI has no torch
    layer = bound(inputs, layer)
    feeds = [rand(rng, shape) for shape in inputs.values()]
    op = torch_op(layer)
    with torch.inference_mode():
        theirs = op(*[torch.from_numpy(x) for x in feeds]).numpy()
    reference = layer.reference(*[x.reshape(s) for x, s in zip(feeds, layer.in_shapes)]).reshape(layer.out_dims)
    assert theirs.shape == tuple(layer.out_dims)
    assert relative_difference(theirs, reference) < TOL


@pytest.mark.parametrize("case", CASES)
def test_torch_op_computes_the_layer(case):
    check_torch(*CASES[case], np.random.default_rng(5))


@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a])
def test_torch_op_computes_each_activation(activation):
    values = {"leaky_relu": (0.1,), "clip": (-0.5, 0.7), "hard_sigmoid": (0.2, 0.5), "elu": (0.8,),
              "selu": (1.67, 1.05), "celu": (1.3,), "thresholded_relu": (0.4,)}[activation] \
        if activation in ACTIVATION_PARAMS else ()
    spec = (activation, *values) if values else activation
    rng = np.random.default_rng(6)
    if activation in ("log", "sqrt"):   # their domain: positive inputs
        layer = Binary("y", "x", "Add", constant=np.float32(10.0), activation=spec)
    else:
        layer = Activation("y", "x", spec)
    check_torch({"x": (2, 3, 4, 5)}, layer, rng)


def test_every_zoo_layer_has_a_torch_op():
    pytest.importorskip("torch")
    for name in models.ZOO:
        size = 2 * models.SIZES[name][1] if name in models.SIZES else None   # small: the layer kinds are the same
        for layer in models.get(name, batch=1, size=size).layers:
            if not layer.is_view:
                torch_op(layer)   # raises Unavailable where a layer kind has none


@pytest.mark.parametrize("layer", [LRN("y", "x", 4),
                                   Resize("y", "x", (2.0, 2.0), coordinate_mode="asymmetric", nearest_mode="ceil"),
                                   Resize("y", "x", (2.0, 2.0), mode="linear", coordinate_mode="asymmetric"),
                                   Pool("y", "x", "max", kernel=3, pads=(1, 1, 0, 0)),
                                   Pad("y", "x", [0, 0, 0, 7, 0, 0, 0, 0], "wrap"),
                                   Pad("y", "x", [1, 0, 0, 0, 0, 0, 0, 1], "edge")],
                         ids=["lrn_even", "resize_nearest_ceil", "resize_linear_asymmetric", "pool_uneven_pads",
                              "pad_wrap_twice", "pad_edge_four_dims"])
def test_an_unmapped_layer_says_so(layer):
    pytest.importorskip("torch")
    with pytest.raises(Unavailable, match="no torch"):
        torch_op(bound({"x": (1, 4, 6, 6)}, layer))
