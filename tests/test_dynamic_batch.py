"""ONNX models with a symbolic batch run any batch size, as in onnxruntime:
the session describes the batch by its name and answers every batch size fed
with onnxruntime's outputs."""

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper

import clnn
from clnn import session as session_module

from helpers import rand, rel_err


def _symbolic(proto, names):
    """``proto`` with the first dimension of its inputs and outputs renamed
    (a string) or made unknown (None)."""
    for info, name in zip([*proto.graph.input, *proto.graph.output], names):
        dim = info.type.tensor_type.shape.dim[0]
        dim.Clear()
        if name is not None:
            dim.dim_param = name
    return proto


@pytest.fixture(scope="module")
def lenet_onnx():
    return _symbolic(clnn.models.lenet5(seed=4).to_onnx(), ["N", "N"]).SerializeToString()


def _reference(data, feeds):
    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)


def test_every_batch_size_fed_matches_onnxruntime(lenet_onnx, pair, rng):
    distinct = list(dict.fromkeys(pair))
    session = clnn.InferenceSession(lenet_onnx, devices=distinct, plan=[1 / len(distinct)] * len(distinct))
    assert session.get_inputs()[0].shape == ["N", 1, 28, 28]
    assert session.get_outputs()[0].shape == ["N", 10]
    for batch in (3, 1, 5, 3):
        feeds = {"input": rand(rng, (batch, 1, 28, 28))}
        (actual,) = session.run(None, feeds)
        assert actual.shape == (batch, 10)
        assert rel_err(actual, _reference(lenet_onnx, feeds)[0]) < 1e-4


def test_only_a_few_batch_sizes_are_kept(lenet_onnx, devices, rng, monkeypatch):
    monkeypatch.setattr(session_module, "KEPT_BATCH_SIZES", 2)
    session = clnn.InferenceSession(lenet_onnx, devices=devices[:1], plan=[1.0])
    for batch in (2, 3, 4, 2):
        feeds = {"input": rand(rng, (batch, 1, 28, 28))}
        assert rel_err(session.run(None, feeds)[0], _reference(lenet_onnx, feeds)[0]) < 1e-4
    assert list(session._other_batches) == [4, 2]


def test_a_model_file_with_an_unnamed_batch(lenet_onnx, devices, rng, tmp_path):
    path = tmp_path / "lenet.onnx"
    path.write_bytes(_symbolic(clnn.models.lenet5(seed=4).to_onnx(), [None, None]).SerializeToString())
    session = clnn.InferenceSession(str(path), devices=devices[:1], plan=[1.0])
    assert session.get_inputs()[0].shape == [None, 1, 28, 28]
    feeds = {"input": rand(rng, (2, 1, 28, 28))}
    assert rel_err(session.run(None, feeds)[0], _reference(lenet_onnx, feeds)[0]) < 1e-4


def test_inputs_that_disagree_or_do_not_fit_are_refused(devices, rng):
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3, 5, 5]) for n in ("a", "b")]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 5, 5])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "add", inputs, [output])
    # the oldest IR version that has opset 17, which every onnxruntime that runs opset 17 reads
    # (onnx 1.23 writes IR 14 by default, which onnxruntime 1.30 refuses)
    opsets = [helper.make_opsetid("", 17)]
    data = helper.make_model(graph, opset_imports=opsets,
                             ir_version=helper.find_min_ir_version_for(opsets)).SerializeToString()
    session = clnn.InferenceSession(data, devices=devices[:1], plan=[1.0])
    feeds = {"a": rand(rng, (2, 3, 5, 5)), "b": rand(rng, (2, 3, 5, 5))}
    assert rel_err(session.run(None, feeds)[0], _reference(data, feeds)[0]) < 1e-4
    with pytest.raises(clnn.InputError, match=r"batch sizes differ \({'a': 2, 'b': 3}\)"):
        session.run(None, {"a": rand(rng, (2, 3, 5, 5)), "b": rand(rng, (3, 3, 5, 5))})
    with pytest.raises(clnn.InputError, match=r"'a' has shape \[2, 3, 5, 4\]; expected \['N', 3, 5, 5\]"):
        session.run(None, {"a": rand(rng, (2, 3, 5, 4)), "b": rand(rng, (2, 3, 5, 4))})
    with pytest.raises(clnn.InputError, match=r"'b' has shape \[0, 3, 5, 5\]"):
        session.run(None, {"a": rand(rng, (2, 3, 5, 5)), "b": np.ones((0, 3, 5, 5), np.float32)})
    with pytest.raises(clnn.InputError, match="dtype"):
        session.run(None, {"a": np.ones((2, 3, 5, 5)), "b": np.ones((2, 3, 5, 5))})
    assert list(session._other_batches) == [2]


def test_an_explicit_plan_fits_every_batch(lenet_onnx, devices, rng, tmp_path):
    """Shares of a layer do not depend on the batch: a plan made (and saved)
    at batch 1 runs every batch; before, it was refused as made for another
    model."""
    model = clnn.load(lenet_onnx)
    plan = clnn.Plan.static(model, devices, [1 / len(devices)] * len(devices))
    plan.save(tmp_path / "plan.json")
    session = clnn.InferenceSession(lenet_onnx, devices=devices, plan=str(tmp_path / "plan.json"))
    for batch in (1, 2, 5):
        feeds = {"input": rand(rng, (batch, 1, 28, 28))}
        assert rel_err(session.run(None, feeds)[0], _reference(lenet_onnx, feeds)[0]) < 1e-4
    at_four = clnn.InferenceSession(clnn.load(lenet_onnx, batch=4), devices=devices, plan=str(tmp_path / "plan.json"))
    assert at_four.plan.placements == plan.placements


def test_models_with_a_fixed_batch_keep_it(devices, rng):
    session = clnn.InferenceSession(clnn.models.lenet5(), devices=devices[:1], plan=[1.0])
    assert session.get_inputs()[0].shape == [1, 1, 28, 28]  # a list, as onnxruntime gives
    with pytest.raises(clnn.InputError, match=r"expected \[1, 1, 28, 28\]"):
        session.run(None, {"input": rand(rng, (2, 1, 28, 28))})


def test_a_free_dimension_override_fixes_the_batch(lenet_onnx, devices, rng):
    """SessionOptions.add_free_dimension_override_by_name builds the session
    at that batch (the model read at batch 1 first is let go)."""
    options = clnn.SessionOptions()
    options.add_free_dimension_override_by_name("N", 3)
    session = clnn.InferenceSession(lenet_onnx, options, devices=devices[:1], plan=[1.0])
    assert session.model.inputs[0].shape[0] == 3
    feeds = {"input": rand(rng, (3, 1, 28, 28))}
    assert rel_err(session.run(None, feeds)[0], _reference(lenet_onnx, feeds)[0]) < 1e-4
    assert not session._other_batches
