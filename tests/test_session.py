"""InferenceSession: onnxruntime's API, bad feeds, repeated and concurrent
runs, NaN and Inf propagation, plans given in every accepted form."""

import threading

import numpy as np
import pytest

import clnn
from clnn import Model
from clnn.ops import Conv2d, Dense, Pool, Reshape

from helpers import rand, rel_err


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.default_rng(7)
    layers = [Conv2d("conv", "image", rand(rng, (4, 2, 3, 3), 0.3), rand(rng, (4,)), pads=1, activation="relu"),
              Pool("pool", "conv", "max", kernel=2, stride=2),
              Reshape("flat", "pool"),
              Dense("logits", "flat", rand(rng, (5, 4 * 3 * 2), 0.3), rand(rng, (5,)))]
    return Model({"image": (2, 2, 7, 5)}, layers, ["logits"], name="small")


@pytest.fixture(scope="module")
def session(small_model, devices):
    return clnn.InferenceSession(small_model, devices=devices, plan=[1.0] + [0.0] * (len(devices) - 1))


def test_inputs_and_outputs_describe_the_model(session):
    (i,) = session.get_inputs()
    (o,) = session.get_outputs()
    assert (i.name, list(i.shape), i.type) == ("image", [2, 2, 7, 5], "tensor(float)")
    assert (o.name, list(o.shape), o.type) == ("logits", [2, 5], "tensor(float)")


def test_run_returns_numpy_arrays_matching_the_reference(session, small_model, rng):
    x = rand(rng, (2, 2, 7, 5))
    (y,) = session.run(None, {"image": x})
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == (2, 5)
    assert rel_err(y, small_model.reference({"image": x})[0]) < 1e-4
    (by_name,) = session.run(["logits"], {"image": x})
    np.testing.assert_array_equal(by_name, y)


@pytest.mark.parametrize("feeds, message", [
    ({"picture": np.zeros((2, 2, 7, 5), np.float32)}, "unknown input 'picture'"),
    ({}, "missing input 'image'"),
    ({"image": np.ones((2, 2, 7), np.float32)}, "expected [2, 2, 7, 5]"),
    ({"image": np.ones((1, 2, 7, 5), np.float32)}, "has shape [1, 2, 7, 5]"),
    ({"image": np.ones((2, 2, 7, 5), np.float64)}, "dtype float64; expected float32"),
    ({"image": np.ones((2, 2, 7, 5), np.int32)}, "dtype int32"),
    ({"image": [[1.0, 2.0]]}, "must be a numpy array, got list"),
    ({"image": None}, "got NoneType"),
])
def test_bad_feeds_say_what_was_expected(session, feeds, message):
    with pytest.raises(clnn.InputError) as info:
        session.run(None, feeds)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_output_names_and_feed_containers(session):
    x = np.ones((2, 2, 7, 5), np.float32)
    with pytest.raises(clnn.InputError, match="unknown output 'nope'"):
        session.run(["nope"], {"image": x})
    with pytest.raises(clnn.InputError, match="list of names"):
        session.run("logits", {"image": x})
    with pytest.raises(clnn.InputError, match="must be a dict"):
        session.run(None, [x])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_propagate_like_the_reference(session, small_model, rng, bad):
    x = rand(rng, (2, 2, 7, 5))
    x[0, 0, 1, 1] = bad  # the second batch item stays finite
    (y,) = session.run(None, {"image": x})
    expected = small_model.reference({"image": x})[0]
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(expected))
    assert not np.isfinite(expected[0]).all() and np.isfinite(expected[1]).all()
    assert rel_err(y[1], expected[1]) < 1e-4


def test_runs_again_and_again_on_the_same_memory(session, rng):
    executor = session._executor
    homes = {k: id(s.home) for k, s in executor.storages.items()}
    x = rand(rng, (2, 2, 7, 5))
    first = session.run(None, {"image": x})[0]
    for _ in range(5):
        np.testing.assert_array_equal(session.run(None, {"image": x})[0], first)
    assert homes == {k: id(s.home) for k, s in executor.storages.items()}


def test_two_sessions_side_by_side(small_model, devices, rng):
    other = clnn.models.lenet5(batch=2, seed=3)
    a = clnn.InferenceSession(small_model, devices=devices[:1], plan=[1.0])
    b = clnn.InferenceSession(other, devices=devices[-1:], plan=[1.0])
    xa, xb = rand(rng, (2, 2, 7, 5)), rand(rng, (2, 1, 28, 28))
    for _ in range(3):
        ya = a.run(None, {"image": xa})[0]
        yb = b.run(None, {"input": xb})[0]
        assert rel_err(ya, small_model.reference({"image": xa})[0]) < 1e-4
        assert rel_err(yb, other.reference({"input": xb})[0]) < 1e-4


def test_one_session_from_several_threads(session, small_model, rng):
    inputs = [rand(rng, (2, 2, 7, 5)) for _ in range(6)]
    results, errors = {}, []

    def work(k):
        try:
            for _ in range(5):
                results[k] = session.run(None, {"image": inputs[k]})[0]
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, x in enumerate(inputs):
        assert rel_err(results[k], small_model.reference({"image": x})[0]) < 1e-4


def test_plans_in_every_form(small_model, devices, tmp_path, rng):
    x = rand(rng, (2, 2, 7, 5))
    expected = small_model.reference({"image": x})[0]
    shares = [1.0 / len(devices)] * len(devices)
    static = clnn.InferenceSession(small_model, devices=devices, plan=shares)
    path = tmp_path / "plan.json"
    static.plan.save(path)
    for plan in (static.plan, str(path), path, "auto"):
        sess = clnn.InferenceSession(small_model, devices=devices, plan=plan)
        assert rel_err(sess.run(None, {"image": x})[0], expected) < 1e-4
    assert devices[0].id in str(static.plan) and "conv" in str(static.plan)


@pytest.mark.parametrize("make_plan, message", [
    (lambda n: [1.0] * (n + 1), "shares for"),
    (lambda n: [], "gives 0 shares for"),
    (lambda n: [-1.0] * n, ">= 0"),
    (lambda n: [0.5, 0.7] + [0.0] * (n - 2) if n >= 2 else [1.2], r"sum to 1, got \[.*\] \(sum 1.2\)"),
    (lambda n: "not-a-plan-file.json", "is none of these"),
    (lambda n: 3, "plan must be"),
])
def test_bad_plans_are_refused(small_model, devices, make_plan, message):
    with pytest.raises(clnn.PlanError, match=message):
        clnn.InferenceSession(small_model, devices=devices, plan=make_plan(len(devices)))


def test_a_plan_for_another_model_is_refused(small_model, devices):
    other = clnn.models.lenet5(batch=2)
    plan = clnn.Plan.single(other, devices[0])
    with pytest.raises(clnn.PlanError, match="another model"):
        clnn.InferenceSession(small_model, devices=devices, plan=plan)


def test_a_plan_for_other_devices_is_refused(small_model, devices):
    plan = clnn.Plan.single(small_model, "opencl:elsewhere:9")
    with pytest.raises(clnn.PlanError, match="does not have"):
        clnn.InferenceSession(small_model, devices=devices, plan=plan)
