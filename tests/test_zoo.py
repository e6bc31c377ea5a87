"""Every zoo model exported to ONNX: onnxruntime, clnn (split over the
devices) and the numpy reference agree on random inputs, and the export
loads back into the same network.

vgg16 and alexnet run at batch 1 only, to keep the run short; each model is
built, exported (kept serialized only, to spare memory) and run in
onnxruntime once per module. The networks of 8 to 90 GFLOP run at reduced
input sizes (SMALL: the same layers on smaller maps, every pyramid level and
stride still there); their full sizes are checked by shape inference only.
"""

import zlib
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
import pytest

import clnn

from helpers import rand, rel_err

TOL = 1e-4
BATCHED = ("lenet5", "fcnn", "squeezenet", "resnet18", "fst")
# input sizes of the tests (a second or two of PoCL each, on two cores)
SMALL = {"resnet50": 128, "yolov2": 96, "posenet": 32, "fst": (32, 48), "retinaface": 96}
CASES = [(name, 1) for name in clnn.models.ZOO] + [(name, 2) for name in BATCHED]
IDS = [f"{name}-b{batch}" for name, batch in CASES]
# at the full size: (input H, W), output shape at batch 1, GFLOP (a multiply-add is two)
FULL = {"resnet50": ((224, 224), (1, 1000), 8.18), "mobilenet_v2": ((224, 224), (1, 1000), 0.602),
        "yolov2": ((416, 416), (1, 125, 13, 13), 29.37), "posenet": ((256, 256), (1, 21, 32, 32), 60.3),
        "fst": ((480, 640), (1, 3, 480, 640), 78.0), "retinaface": ((640, 640), (1, 16800, 16), 88.6)}


@dataclass
class Exported:
    model: clnn.Model
    data: bytes          # the serialized ONNX model
    feeds: dict
    expected: np.ndarray     # onnxruntime's output (zoo models have one)


@pytest.fixture(scope="module")
def zoo():
    cache = {}

    def get(name, batch):
        if (name, batch) not in cache:
            model = clnn.models.get(name, batch=batch, size=SMALL.get(name))
            data = model.to_onnx().SerializeToString()
            rng = np.random.default_rng(zlib.crc32(f"{name}-{batch}".encode()))
            feeds = {i.name: rand(rng, i.shape) for i in model.inputs}
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
            (expected,) = session.run(None, feeds)
            cache[name, batch] = Exported(model, data, feeds, expected)
        return cache[name, batch]
    return get


def run_split(model, feeds, devices):
    """The output of ``model`` split evenly over every device."""
    session = clnn.InferenceSession(model, devices=devices, plan=[1.0 / len(devices)] * len(devices))
    (output,) = session.run(None, feeds)
    return output


@pytest.mark.parametrize("name", clnn.models.ZOO)
def test_export_is_valid_onnx(name, zoo):
    exported = zoo(name, 1)
    onnx.checker.check_model(exported.data, full_check=True)
    graph = onnx.load_model_from_string(exported.data).graph
    for infos, wanted in ((graph.input, exported.model.inputs), (graph.output, exported.model.outputs)):
        shapes = [(i.name, tuple(d.dim_value for d in i.type.tensor_type.shape.dim)) for i in infos]
        assert shapes == [(t.name, t.shape) for t in wanted]


@pytest.mark.parametrize("name,batch", CASES, ids=IDS)
def test_clnn_matches_onnxruntime(name, batch, zoo, devices):
    exported = zoo(name, batch)
    assert rel_err(run_split(exported.model, exported.feeds, devices), exported.expected) < TOL


@pytest.mark.parametrize("name,batch", CASES, ids=IDS)
def test_reference_matches_onnxruntime(name, batch, zoo):
    exported = zoo(name, batch)
    (reference,) = exported.model.reference(exported.feeds)
    assert rel_err(reference, exported.expected) < TOL


@pytest.mark.parametrize("name,batch", CASES, ids=IDS)
def test_export_loads_back(name, batch, zoo, devices):
    """The export reloads into as many layers of the same kinds and shapes
    (BatchNorm folding and fusions included), computing the same outputs."""
    exported = zoo(name, batch)
    reloaded = clnn.load(exported.data, batch=batch)
    original = exported.model
    assert [(layer.describe(), layer.out_shape) for layer in reloaded.layers] == \
        [(layer.describe(), layer.out_shape) for layer in original.layers]
    assert reloaded.outputs == original.outputs
    assert rel_err(run_split(reloaded, exported.feeds, devices), exported.expected) < TOL


@pytest.mark.parametrize("name", FULL)
def test_full_size_shapes(name):
    """The networks tested at SMALL sizes, built at their full sizes: input
    and output shapes and FLOPs as published (torchvision: ResNet-50 4.09,
    MobileNetV2 0.30 GMACs; RetinaFace: 16800 anchors of 2 per pixel at
    strides 8, 16, 32 of 640x640)."""
    (hw, output, gflop) = FULL[name]
    model = clnn.models.get(name)
    assert [i.shape for i in model.inputs] == [(1, 3, *hw)]
    assert [o.shape for o in model.outputs] == [output]
    assert model.flops() / 1e9 == pytest.approx(gflop, rel=5e-3)


def test_sizes_are_checked():
    assert clnn.models.get("fst", size=(8, 12)).inputs[0].shape == (1, 3, 8, 12)
    with pytest.raises(clnn.ModelError, match="size 100 must be one or two positive multiples of 32"):
        clnn.models.get("yolov2", size=100)
    with pytest.raises(clnn.ModelError, match="'vgg16' has a fixed input size"):
        clnn.models.get("vgg16", size=224)
