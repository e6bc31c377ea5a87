"""onnxruntime users feel at home: a script written for onnxruntime runs with
clnn after changing its import, and gives what onnxruntime gives."""

import json
import os

import numpy as np
import onnx
import onnxruntime
import pytest

import clnn

from helpers import rand, rel_err

SCRIPT = """
so = ort.SessionOptions()
so.enable_profiling = True
so.profile_file_prefix = prefix
so.log_severity_level = 3
so.intra_op_num_threads = 2
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.add_session_config_entry("session.load_model_format", "ONNX")
sess = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
ro = ort.RunOptions()
ro.log_severity_level = 3
ro.logid = "first"
ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
first = sess.run([out.name], {inp.name: x}, ro)[0]
every = sess.run(None, {inp.name: x})
meta = sess.get_modelmeta()
result = {
    "y": first, "every": len(every), "input": (inp.name, inp.shape, inp.type), "output": (out.name, out.shape),
    "providers": sess.get_providers(), "provider_options": list(sess.get_provider_options()),
    "profiling": sess.get_session_options().enable_profiling,
    "meta": (meta.producer_name, meta.graph_name, meta.domain, meta.description, meta.version,
             meta.custom_metadata_map),
    "available": "CPUExecutionProvider" in ort.get_available_providers(),
    "profile": sess.end_profiling(),
}
"""


def _all_on_one(selector):
    """Shares that put everything on the first of the devices ``selector`` picks."""
    return [1.0] + [0.0] * (len(clnn.select(selector)) - 1)


def _model_file(tmp_path):
    proto = clnn.models.lenet5(batch=2, seed=3).to_onnx()
    proto.producer_name, proto.domain, proto.doc_string, proto.model_version = "tests", "org.example", "LeNet", 7
    onnx.helper.set_model_props(proto, {"author": "clnn tests", "task": "digits"})
    path = tmp_path / "lenet.onnx"
    path.write_bytes(proto.SerializeToString())
    return str(path)


def _run_script(module, path, x, prefix):
    scope = {"ort": module, "path": path, "x": x, "prefix": prefix}
    exec(SCRIPT, scope)
    return scope["result"]


def test_an_onnxruntime_script_runs_unchanged_but_for_the_import(tmp_path, rng, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, x = _model_file(tmp_path), rand(rng, (2, 1, 28, 28))
    theirs = _run_script(onnxruntime, path, x, "ort_profile")
    ours = _run_script(clnn, path, x, "clnn_profile")
    assert rel_err(ours["y"], theirs["y"]) < 1e-4
    for key in ("every", "input", "output", "providers", "provider_options", "profiling", "meta", "available"):
        assert ours[key] == theirs[key], key
    assert ours["profile"].startswith("clnn_profile_") and os.path.isfile(ours["profile"])
    events = json.loads(open(ours["profile"]).read())["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    layers = [e["args"]["layer"] for e in kernels]
    assert {"conv1", "conv2", "fc3"} <= {name.split("/")[0] for name in layers}
    runs = [e for e in events if e.get("cat") == "host" and e["name"] == "enqueue"]
    assert len(runs) == 2 and layers.count("fc3") >= 2  # both runs are in it


def test_providers_select_devices(devices):
    model = clnn.models.lenet5()
    cpu = clnn.InferenceSession(model, providers=["CPUExecutionProvider"], plan=_all_on_one("cpu"))
    assert all(d.kind == "cpu" for d in cpu.devices) and cpu.get_providers() == ["CPUExecutionProvider"]
    by_selector = clnn.InferenceSession(model, providers=[devices[0].id], plan=[1.0])
    assert by_selector.devices == [devices[0]]
    with pytest.raises(clnn.DeviceError, match="cuda"):
        clnn.InferenceSession(model, providers=[("CUDAExecutionProvider", {"device_id": 7})])
    with pytest.raises(clnn.InputError, match="not both"):
        clnn.InferenceSession(model, providers=["CPUExecutionProvider"], devices=devices)
    with pytest.raises(clnn.InputError, match="keywords"):
        clnn.InferenceSession(model, "portable")


def test_what_clnn_does_not_do_says_so(devices):
    session = clnn.InferenceSession(clnn.models.lenet5(), devices=devices[:1], plan=[1.0])
    for call in (session.io_binding, lambda: session.run_with_ort_values(None, {}),
                 lambda: session.run_with_iobinding(None)):
        with pytest.raises(clnn.ClnnError, match="IOBinding and OrtValue"):
            call()
    assert session.end_profiling() == ""  # profiling was off, as onnxruntime answers


def test_disabling_graph_optimisation_keeps_every_node(tmp_path, devices, rng):
    path = _model_file(tmp_path)
    options = clnn.SessionOptions()
    options.graph_optimization_level = clnn.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = clnn.InferenceSession(path, options, devices=devices[:1], plan=[1.0])
    fused = clnn.InferenceSession(path, devices=devices[:1], plan=[1.0])
    assert len(plain.model.layers) > len(fused.model.layers)
    x = rand(rng, (2, 1, 28, 28))
    assert rel_err(plain.run(None, {"input": x})[0], fused.run(None, {"input": x})[0]) < 1e-5


def test_zoo_models_describe_themselves():
    meta = clnn.InferenceSession(clnn.models.fcnn(), plan=_all_on_one(None)).get_modelmeta()
    assert (meta.producer_name, meta.graph_name) == ("clnn", "fcnn")
    assert np.isscalar(meta.version)
