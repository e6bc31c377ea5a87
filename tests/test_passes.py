"""Graph passes: folded and fused models compute what the unfused ones do."""

import numpy as np
import pytest

import clnn
from clnn import Model
from clnn.ops import Activation, Binary, Conv2d, Dense, Reshape, ScaleShift
from clnn.plan import Plan

from helpers import rand, rel_err, run


def _graph(seed):
    """conv-BN-relu, conv-BN + shortcut add + ReLU6: the same layers for a seed."""
    rng = np.random.default_rng(seed)
    c = 6
    layers = [Conv2d("c1", "x", rand(rng, (c, 3, 3, 3), 0.3), None, pads=1),
              ScaleShift("bn1", "c1", rand(rng, (c,)), rand(rng, (c,))),
              Activation("r1", "bn1", "relu"),
              Conv2d("c2", "r1", rand(rng, (c, c, 3, 3), 0.3), rand(rng, (c,)), pads=1),
              ScaleShift("bn2", "c2", rand(rng, (c,)), rand(rng, (c,))),
              Binary("add", ("bn2", "r1"), "Add"),
              Activation("r2", "add", ("clip", 0.0, 6.0))]
    return {"x": (2, 3, 7, 5)}, layers, ["r2"]


def test_fused_model_equals_unfused(rng, device):
    plain = Model(*_graph(5), fuse=False)
    fused = Model(*_graph(5), fuse=True)
    assert [type(layer).__name__ for layer in fused.layers] == ["Conv2d", "Conv2d"]
    assert [layer.name for layer in fused.layers] == ["c1", "r2"]
    assert fused.layers[1].has_residual and fused.layers[1].activation == ("clip", 0.0, 6.0)
    x = {"x": rand(rng, (2, 3, 7, 5))}
    expected = plain.reference(x)[0]
    assert rel_err(fused.reference(x)[0], expected) < 1e-5
    (actual,) = run(fused, x, Plan.single(fused, device), [device])
    assert rel_err(actual, expected) < 1e-4


def test_a_tensor_read_twice_or_returned_is_not_fused_away(rng):
    layers = [Conv2d("c", "x", rand(rng, (4, 3, 1, 1)), None),
              Activation("r", "c", "relu"),
              Activation("t", "c", "tanh"),
              Reshape("flat", "t"),
              Dense("d", "flat", rand(rng, (3, 4)), None),
              Activation("s", "d", "sigmoid")]
    model = Model({"x": (1, 3, 1, 1)}, layers, ["r", "d", "s"])
    names = {layer.name: type(layer).__name__ for layer in model.layers}
    assert names["r"] == names["t"] == "Activation"  # c has two readers
    assert names["s"] == "Activation"  # d is a model output
    assert model.output_names == ["r", "d", "s"]


@pytest.mark.parametrize("name", ["resnet18", "squeezenet"])
def test_zoo_graphs_are_fused(name):
    model = clnn.models.get(name)
    assert not any(isinstance(layer, (ScaleShift, Activation)) for layer in model.layers)
    if name == "resnet18":
        assert sum(getattr(layer, "has_residual", False) for layer in model.layers) == 8
