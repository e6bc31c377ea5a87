"""clnn.ray: the Ray Data predictor and the Ray Serve deployment, checked in
this process and on a small local Ray instance (HTTP on 127.0.0.1 only).

tox -e ray sets CLNN_TEST_RAY=1, where a missing Ray fails instead of
skipping these tests.
"""

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CLNN_TEST_RAY"):
    import ray
else:
    ray = pytest.importorskip("ray", reason="needs the ray extra (tox -e ray)")

import clnn  # noqa: E402
import clnn.ray as clnn_ray  # noqa: E402

from helpers import rand, rel_err  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED = 3


def _expected(x):
    """LeNet-5's outputs for the rows ``x`` by the layers' numpy references."""
    return clnn.models.lenet5(batch=len(x), seed=SEED).reference({"input": x})[0]


def _symbolic_lenet():
    """The zoo's LeNet-5 as ONNX bytes whose batch dimension is symbolic."""
    proto = clnn.models.lenet5(seed=SEED).to_onnx()
    for info in [*proto.graph.input, *proto.graph.output]:
        info.type.tensor_type.shape.dim[0].dim_param = "N"
    return proto.SerializeToString()


# ---- in this process: the predictor and the server's batching, no cluster


def test_predictor_runs_rows_in_padded_chunks(rng):
    predictor = clnn_ray.Predictor("lenet5", input_column="image", output_columns="logits", batch_size=8,
                                   seed=SEED)
    x = rand(rng, (19, 1, 28, 28))  # two full chunks of 8 and one of 3 padded to 8
    out = predictor({"image": x, "id": np.arange(19)})
    assert sorted(out) == ["id", "logits"]  # the input column dropped, the others kept
    assert out["logits"].shape == (19, 10)
    assert rel_err(out["logits"], _expected(x)) < 1e-4
    assert (out["id"] == np.arange(19)).all()
    kept = clnn_ray.Predictor("lenet5", input_column="image", batch_size=8, seed=SEED, keep_input=True)
    out = kept({"image": x[:5]})
    assert sorted(out) == ["fc3", "image"] and rel_err(out["fc3"], _expected(x[:5])) < 1e-4


@pytest.mark.parametrize("source", ["bytes", "path"])
def test_predictor_loads_onnx_with_a_symbolic_batch_at_its_batch_size(source, rng, tmp_path):
    model = _symbolic_lenet()
    if source == "path":
        (tmp_path / "lenet.onnx").write_bytes(model)
        model = str(tmp_path / "lenet.onnx")
    predictor = clnn_ray.Predictor(model, input_column="pixels", output_columns=["scores"], batch_size=4)
    assert predictor._runner.batch == 4
    x = rand(rng, (6, 1, 28, 28))
    assert rel_err(predictor({"pixels": x})["scores"], _expected(x)) < 1e-4


def test_predictor_takes_a_model_of_fixed_batch_as_it_is(rng):
    model = clnn.models.lenet5(batch=5, seed=SEED)
    predictor = clnn_ray.Predictor(model)
    x = rand(rng, (7, 1, 28, 28))
    assert rel_err(predictor({"input": x})["fc3"], _expected(x)) < 1e-4
    with pytest.raises(clnn.ModelError, match="fixed batch of 5; batch_size=8"):
        clnn_ray.Predictor(model, batch_size=8)


def _ragged():
    """A column of rows of different shapes, as Ray Data hands it out."""
    rows = np.empty(2, dtype=object)
    rows[0], rows[1] = np.zeros((1, 28, 28), np.float32), np.zeros((1, 2, 2), np.float32)
    return rows


@pytest.fixture(scope="module")
def predictor():
    return clnn_ray.Predictor("lenet5", input_column="image", output_columns="logits", batch_size=4)


@pytest.mark.parametrize("batch, message", [
    ({"pixels": np.zeros((2, 1, 28, 28), np.float32)},
     r"column 'image' \(model input 'input'\) is missing; the batch has \['pixels'\]"),
    ({"image": np.zeros((2, 1, 28, 28), np.float64)}, "column 'image' has dtype float64; .* expects float32"),
    ({"image": np.zeros((2, 784), np.float32)},
     r"column 'image' has shape \[2, 784\]; .* expects rows of shape \[1, 28, 28\]"),
    ({"image": np.zeros((0, 1, 28, 28), np.float32)}, r"has shape \[0, 1, 28, 28\]"),
    ({"image": _ragged()}, "column 'image' has dtype object"),
    ({"image": np.zeros((2, 1, 28, 28), np.float32), "logits": np.zeros(2)},
     "output column 'logits' .* is already a column"),
])
def test_predictor_names_what_is_wrong_with_a_batch(predictor, batch, message):
    with pytest.raises(clnn.InputError, match=message):
        predictor(batch)


def test_predictor_refuses_what_is_not_a_numpy_batch(predictor):
    with pytest.raises(clnn.InputError, match="numpy batches .* batch_format"):
        predictor([np.zeros((1, 1, 28, 28), np.float32)])


def test_predictor_checks_its_arguments():
    with pytest.raises(clnn.ModelError, match="1 outputs .* 2 column names"):
        clnn_ray.Predictor("lenet5", output_columns=["a", "b"])
    with pytest.raises(clnn.ModelError, match="no zoo model 'lenet7'"):
        clnn_ray.Predictor("lenet7")


def test_sessions_are_built_one_at_a_time_per_node(tmp_path, monkeypatch):
    monkeypatch.setenv("CLNN_CACHE_DIR", str(tmp_path))
    entered = threading.Event()

    def build():
        with clnn_ray._one_build_per_node():
            entered.set()

    with clnn_ray._one_build_per_node():
        waiting = threading.Thread(target=build)
        waiting.start()
        assert not entered.wait(0.5), "a second build went ahead while the node's lock was held"
    waiting.join(10)
    assert entered.is_set()
    assert (tmp_path / "ray-session.lock").exists()


def test_server_runs_queued_requests_together_and_answers_each(rng):
    server = clnn_ray.Server("lenet5", 4, None, "auto", SEED, None, 0.01)
    requests = [rand(rng, (n, 1, 28, 28)) for n in (1, 3, 5, 2)]  # 11 rows: chunks of 4, 4 and 3 padded
    answers = asyncio.run(server._run_requests([{"input": x} for x in requests]))
    assert [sorted(a) for a in answers] == [["fc3"]] * 4
    for x, answer in zip(requests, answers):
        assert rel_err(answer["fc3"], _expected(x)) < 1e-4


def test_server_checks_each_request_alone():
    server = clnn_ray.Server("lenet5", 4, None, "auto", SEED, None, 0.01)
    ones = np.ones((2, 1, 28, 28)).tolist()
    assert server._feeds({"input": ones})["input"].dtype == np.float32  # JSON lists become float32
    for request, message in [({"image": ones}, "unknown input 'image'"), ({}, "lacks input 'input'"),
                             ([ones], "an object of input name to rows, not list"),
                             ({"input": [[1, 2], [3]]}, "not an array of numbers"),
                             ({"input": np.ones((2, 1, 28, 28))}, "dtype float64")]:
        with pytest.raises(clnn.InputError, match=message):
            server._feeds(request)


# ---- on a local Ray instance


@pytest.fixture(scope="module")
def cluster():
    context = ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
                       log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield context
    ray.shutdown()


def test_map_batches_over_two_actors_matches_the_references(cluster, rng):
    x = rand(rng, (50, 1, 28, 28))
    ds = ray.data.from_items([{"id": i, "image": x[i]} for i in range(len(x))], override_num_blocks=3)
    ds = ds.map_batches(clnn_ray.Predictor, batch_size=8, compute=ray.data.ActorPoolStrategy(size=2),
                        fn_constructor_kwargs=dict(model="lenet5", input_column="image", output_columns="logits",
                                                   batch_size=8, seed=SEED))
    rows = sorted(ds.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(len(x)))
    assert set(rows[0]) == {"id", "logits"}
    assert rel_err(np.stack([r["logits"] for r in rows]), _expected(x)) < 1e-4


def test_map_batches_reports_a_missing_column_as_clnn_does(cluster):
    ds = ray.data.from_items([{"pixels": np.zeros((1, 28, 28), np.float32)}] * 4, override_num_blocks=1)
    ds = ds.map_batches(clnn_ray.Predictor, batch_size=4, compute=ray.data.ActorPoolStrategy(size=1),
                        fn_constructor_kwargs=dict(model="lenet5", input_column="image", batch_size=4))
    # Ray Data wraps the actor's exception in its UserCodeException, naming it
    with pytest.raises(Exception, match=r"clnn.errors.InputError: column 'image' \(model input 'input'\) is "
                                        r"missing; the batch has \['pixels'\]"):
        ds.take_all()


def test_the_digits_example_joins_a_cluster_and_classifies(cluster):
    path = [str(Path(clnn.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "ray_digits.py"), "--address",
                           cluster.address_info["address"], "--repeat", "2", "--actors", "2"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on 720 digits (360 held out x 2), 2 actors" in done.stdout
    assert float(re.search(r"accuracy: ([\d.]+)%", done.stdout).group(1)) >= 95.0
    assert re.search(r"throughput: \d+ digits/s", done.stdout)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(cluster):
    from ray import serve
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    # requests wait up to 0.5 s for others, so that concurrent ones share runs
    app = clnn_ray.deployment("lenet5", batch_size=4, seed=SEED, batch_wait_timeout_s=0.5, name="lenet")
    handle = serve.run(app, name="digits", route_prefix="/digits")
    yield f"http://127.0.0.1:{port}/digits", handle
    serve.shutdown()


def _post(url, body):
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_answers_concurrent_http_requests(served, rng):
    url, _ = served
    requests = [rand(rng, (n, 1, 28, 28)) for n in (1, 2, 3, 1, 4, 2)]
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda x: _post(url, json.dumps({"input": x.tolist()})), requests))
    for x, (status, body) in zip(requests, answers):
        assert status == 200 and list(body) == ["fc3"]
        assert rel_err(np.array(body["fc3"], np.float32), _expected(x)) < 1e-4


def test_serve_answers_a_bad_http_request_with_400(served):
    url, _ = served
    for body, message in [("not json", "Expecting value"), ('{"image": [[1.0]]}', "unknown input 'image'"),
                          ('{"input": [[1.0, 2.0]]}', r"has shape \[1, 2\]; model input 'input' expects rows")]:
        status, answer = _post(url, body)
        assert status == 400 and re.search(message, answer["error"]), answer


def test_serve_handle_takes_and_returns_numpy(served, rng):
    _, handle = served
    x = rand(rng, (3, 1, 28, 28))
    answer = handle.remote({"input": x}).result(timeout_s=60)
    assert rel_err(answer["fc3"], _expected(x)) < 1e-4
    with pytest.raises(Exception, match="dtype float64; model input 'input' expects float32") as caught:
        handle.remote({"input": x.astype(np.float64)}).result(timeout_s=60)
    assert isinstance(caught.value, clnn.InputError) or isinstance(caught.value.__cause__, clnn.InputError)
