"""A device that fails in the middle of a run: run() raises a DeviceError
naming the device and the layer, leaves no enqueued work behind, and the
session goes on with the remaining devices with a warning (or, with
on_device_failure="raise", refuses to run again). The faults are injected
into the backend, on two PoCL devices in one context and in two: an enqueue
that fails (the driver's out-of-resources error) and a queue that cannot
finish (a lost device)."""

import numpy as np
import pyopencl as cl
import pytest

import clnn

from helpers import rand, rel_err

FAULTS = ("enqueue", "finish")


def _inject(session, victim, fault, monkeypatch):
    """Make the backend fail on ``victim``: its third kernel launch raises,
    or its queue cannot finish."""
    (context,) = [c for c in session._executor.contexts if victim in c.devices]
    if fault == "enqueue":
        launched = []
        launch = context.launch

        def failing_launch(queue, bound, global_size, local_size, wait_for):
            if queue is context.queue(victim):
                launched.append(bound)
                if len(launched) == 3:
                    raise cl.Error("clEnqueueNDRangeKernel failed: OUT_OF_RESOURCES (injected)")
            return launch(queue, bound, global_size, local_size, wait_for)

        monkeypatch.setattr(context, "launch", failing_launch)
    else:
        finish = context.finish

        def failing_finish(device):
            finish(device)  # what was enqueued has run; the device then reports itself lost
            if device == victim:
                raise cl.Error("clFinish failed: DEVICE_NOT_AVAILABLE (injected)")

        monkeypatch.setattr(context, "finish", failing_finish)


def _session(pair, grouping, **kw):
    model = clnn.models.lenet5(batch=3)
    return model, clnn.InferenceSession(model, devices=list(pair), plan=[0.5, 0.5], contexts=grouping, **kw)


@pytest.mark.parametrize("grouping", ["platform", "device"])
@pytest.mark.parametrize("fault", FAULTS)
def test_the_session_goes_on_with_the_remaining_devices(pair, grouping, fault, monkeypatch, rng):
    if pair[0] == pair[1]:
        pytest.skip("needs two devices")
    model, session = _session(pair, grouping)
    x = rand(rng, (3, 1, 28, 28))
    expected = model.reference({"input": x})[0]
    assert rel_err(session.run(None, {"input": x})[0], expected) < 1e-4
    survivor, victim = pair
    failed_executor = session._executor
    _inject(session, victim, fault, monkeypatch)
    with pytest.raises(clnn.DeviceError) as caught:
        session.run(None, {"input": x})
    error = caught.value
    assert error.device == victim.id and victim.id in str(error)
    assert error.layer in {layer.name for layer in model.layers} and error.layer in str(error)
    # nothing of the failed run is left running: every command enqueued has completed
    statuses = [e.command_execution_status for e in failed_executor.last_events if e is not None]
    assert statuses and all(s == cl.command_execution_status.COMPLETE for s in statuses)
    assert session.plan.used_devices() == {survivor.id}
    with pytest.warns(UserWarning, match=f"{victim.id} failed in an earlier run.*running on {survivor.id}"):
        (y,) = session.run(None, {"input": x})
    assert rel_err(y, expected) < 1e-4
    (again,) = session.run(None, {"input": x})  # the warning is given once
    np.testing.assert_array_equal(again, y)


def test_on_device_failure_raise_makes_the_fallback_an_error(pair, monkeypatch, rng):
    if pair[0] == pair[1]:
        pytest.skip("needs two devices")
    _, session = _session(pair, "platform", on_device_failure="raise")
    x = rand(rng, (3, 1, 28, 28))
    session.run(None, {"input": x})
    _inject(session, pair[1], "enqueue", monkeypatch)
    with pytest.raises(clnn.DeviceError, match=pair[1].id):
        session.run(None, {"input": x})
    with pytest.raises(clnn.DeviceError, match="runs no more: on_device_failure='raise'"):
        session.run(None, {"input": x})


def test_on_device_failure_takes_two_values(pair):
    with pytest.raises(clnn.InputError, match="on_device_failure"):
        _session(pair, "platform", on_device_failure="ignore")
